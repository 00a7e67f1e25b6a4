"""The long-range data set and its exact constraint check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagan.images.data import load_dataset
from sagan.images.data.longrange import COLOURS, SHAPES, check_longrange, render_longrange


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_every_rendered_image_satisfies_the_constraint(resolution: int) -> None:
    images, shapes, colours = render_longrange(500, resolution, seed=1)
    assert images.shape == (500, 3, resolution, resolution) and images.dtype == np.uint8
    check = check_longrange(torch.as_tensor(images).float() / 255)
    assert check.wellformed.all() and check.satisfied.all()
    # every shape and colour occurs
    assert set(shapes.tolist()) == set(range(len(SHAPES)))
    assert set(colours.tolist()) == set(range(len(COLOURS)))


def test_rendering_is_deterministic_and_objects_are_far_apart() -> None:
    a, _, _ = render_longrange(50, 32, seed=7)
    b, _, _ = render_longrange(50, 32, seed=7)
    np.testing.assert_array_equal(a, b)
    for img in a:
        cols = np.nonzero(img.max(axis=(0, 1)))[0]
        left, right = cols[cols < 16], cols[cols >= 16]
        assert left.size and right.size
        assert right.min() - left.max() >= 8  # a quarter of the image between the objects
        np.testing.assert_array_equal(img, img[:, :, ::-1])  # the mirror image


def _one(resolution: int = 32, seed: int = 3) -> torch.Tensor:
    images, _, _ = render_longrange(1, resolution, seed=seed)
    return torch.as_tensor(images).float() / 255  # (1, 3, R, R)


def test_each_kind_of_violation_is_caught() -> None:
    x = _one()
    assert check_longrange(x).satisfied[0]
    right = (slice(None), slice(None), slice(None), slice(16, None))
    # another colour on the right: swap the colour channels of the right half
    recoloured = x.clone()
    recoloured[right] = x[right][:, [1, 2, 0]]
    c = check_longrange(recoloured)
    assert c.wellformed[0] and not c.satisfied[0]
    # the right object moved down by 3 px
    moved = x.clone()
    moved[right] = x[right].roll(3, dims=2)
    c = check_longrange(moved)
    assert c.wellformed[0] and not c.satisfied[0]
    # another shape on the right: take the right half of an image with another shape
    images, shapes, colours = render_longrange(200, 32, seed=5)
    mine = render_longrange(1, 32, seed=3)
    other = next(i for i in range(200) if shapes[i] != mine[1][0] and colours[i] == mine[2][0])
    reshaped = x.clone()
    reshaped[right] = torch.as_tensor(images[other : other + 1]).float()[right] / 255
    c = check_longrange(reshaped)
    assert c.wellformed[0] and not c.satisfied[0]
    # the right object missing; a stray blob beside the left one
    missing = x.clone()
    missing[right] = 0
    assert not check_longrange(missing).wellformed[0]
    blob = x.clone()
    blob[:, :, 0:4, 0:4] = 1.0
    assert not check_longrange(blob).satisfied[0]


def test_blank_and_noise_fail_and_bad_shapes_are_rejected() -> None:
    assert not check_longrange(torch.zeros(3, 3, 32, 32)).wellformed.any()
    g = torch.Generator().manual_seed(0)
    assert not check_longrange(torch.rand(20, 3, 32, 32, generator=g)).wellformed.any()
    with pytest.raises(ValueError, match=r"expected images \(N, 3, R, R\)"):
        check_longrange(torch.zeros(2, 1, 32, 32))


def test_load_dataset_longrange() -> None:
    ds = load_dataset("longrange", 32)
    assert (len(ds), ds.channels, ds.num_classes, ds.resolution) == (10_000, 3, 0, 32)
    cond = load_dataset("LongRange", 32, conditional=True)
    assert cond.num_classes == len(SHAPES) * len(COLOURS) == 18
    _, label = cond[0]
    assert cond.class_names[label].split("-")[0] in SHAPES
    assert ds.fingerprint() == load_dataset("longrange", 32).fingerprint()
