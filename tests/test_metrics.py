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
