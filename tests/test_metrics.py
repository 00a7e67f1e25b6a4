"""frechet_distance against closed forms and an independent scipy.linalg.sqrtm computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from sagan.metrics import frechet_distance, gaussian_stats


def test_closed_form_for_diagonal_gaussians() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # ||mu1-mu2||^2 = 1 + 0 + 4; sum (v1 + v2 - 2 sqrt(v1 v2)) = sum (sqrt v1 - sqrt v2)^2 = 1+1+4
    expected = 5.0 + 6.0
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def test_one_dimension_and_identity() -> None:
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s
    assert frechet_distance([3.0], [[4.0]], [1.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    rng = np.random.default_rng(0)
    mu, sigma = gaussian_stats(rng.normal(size=(500, 8)))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def _scipy_fd(mu1, s1, mu2, s2):  # type: ignore[no-untyped-def]
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scipy_sqrtm_on_random_feature_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 16
    a = rng.normal(size=(400, d)) @ rng.normal(size=(d, d))
    b = rng.normal(loc=0.3, size=(300, d)) @ rng.normal(size=(d, d))
    (mu1, s1), (mu2, s2) = gaussian_stats(a), gaussian_stats(b)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_scipy_fd(mu1, s1, mu2, s2), rel=1e-6)
    assert ours == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric


def test_rank_deficient_covariances_stay_finite() -> None:
    rng = np.random.default_rng(1)
    # fewer samples than dimensions: singular covariances, where sqrtm can go complex or NaN
    (mu1, s1), (mu2, s2) = (
        gaussian_stats(rng.normal(size=(10, 64))),
        gaussian_stats(rng.normal(size=(12, 64))),
    )
    value = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value) and value > 0


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="expected mu of shape"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="differ in dimension"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="must be finite"):
        frechet_distance([np.nan], [[1.0]], [0.0], [[1.0]])
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 4)))


# --- precision / recall, KID, IS -----------------------------------------------------------


def test_precision_recall_by_hand() -> None:
    from sagan.metrics import precision_recall

    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fake = np.array([[1.5], [20.0], [5.0]])
    # k=1 radii: real 1, 1, 1, 1, 7; fake 3.5, 15, 3.5
    # precision: 1.5 (within 1 of 1) yes, 20 (10 away from 10 > 7) no, 5 (5 from 10 <= 7) yes
    # recall: 0, 1, 2, 3 within 3.5 of 1.5; 10 within 15 of 20
    assert precision_recall(real, fake, k=1) == pytest.approx((2 / 3, 1.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_matches_brute_force(seed: int) -> None:
    from sagan.metrics import precision_recall

    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(300, 5)), rng.normal(0.5, 1.2, size=(250, 5))

    def brute(a: np.ndarray, b: np.ndarray, k: int) -> float:  # share of b inside a's manifold
        d_aa = np.linalg.norm(a[:, None] - a[None], axis=-1)
        radii = np.sort(d_aa, axis=1)[:, k]
        d_ba = np.linalg.norm(b[:, None] - a[None], axis=-1)
        return float((d_ba <= radii[None]).any(axis=1).mean())

    p, r = precision_recall(real, fake, k=3)
    assert p == pytest.approx(brute(real, fake, 3))
    assert r == pytest.approx(brute(fake, real, 3))


def test_kid_equals_the_unbiased_mmd_on_whole_sets() -> None:
    from sagan.metrics import kernel_inception_distance

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), rng.normal(0.3, 1.0, size=(60, 4))

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / a.shape[1] + 1) ** 3

    m = len(x)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    # subsets as large as the sets: every subset is the whole set, in some order
    mean, std = kernel_inception_distance(x, y, subsets=5, subset_size=60)
    assert mean == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
    a = kernel_inception_distance(x, y, subsets=20, subset_size=30, seed=3)
    assert a == kernel_inception_distance(x, y, subsets=20, subset_size=30, seed=3)  # seeded


def test_inception_score_limits() -> None:
    from sagan.metrics import inception_score

    assert inception_score(np.zeros((100, 7)), splits=5)[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(1000) % 10] * 50  # sure, and every class equally often
    assert inception_score(confident, splits=1) == (pytest.approx(10.0, rel=1e-6), 0.0)
    # random splits are not balanced: a little below 10 each, still a mean and a spread
    mean, std = inception_score(confident, splits=10)
    assert 9.0 < mean < 10.0 and std > 0
