"""The Fréchet distance between two Gaussians: the core of FID (Heusel et al. 2017).

FD = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

The usual implementation calls ``scipy.linalg.sqrtm(S1 @ S2)``, whose product is not symmetric
and whose square root can come back complex or NaN for the rank-deficient covariances of small
sample sets. Here, with S1 = A A (A = S1^(1/2) from a symmetric eigendecomposition), the trace
of (S1 S2)^(1/2) equals the trace of (A S2 A)^(1/2), and A S2 A is symmetric positive
semi-definite: its eigenvalues, clipped at 0, give the trace in float64 without complex parts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["frechet_distance", "gaussian_stats"]

ArrayLike = npt.ArrayLike


def _sym_psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def _checked(mu: ArrayLike, sigma: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(
            f"{name}: expected mu of shape (D,) and sigma of shape (D, D), got "
            f"{mu.shape} and {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name}: mu and sigma must be finite")
    return mu, (sigma + sigma.T) / 2  # symmetrise away round-off


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    Args:
        mu1: the first mean, shape (D,).
        sigma1: the first covariance, shape (D, D), symmetric positive semi-definite.
        mu2: the second mean, shape (D,).
        sigma2: the second covariance, shape (D, D), symmetric positive semi-definite.

    Returns:
        The distance (>= 0 up to round-off; tiny negative results are clipped to 0).
    """
    mu1, sigma1 = _checked(mu1, sigma1, "first Gaussian")
    mu2, sigma2 = _checked(mu2, sigma2, "second Gaussian")
    if mu1.shape != mu2.shape:
        raise ValueError(f"the Gaussians differ in dimension: {mu1.shape[0]} vs {mu2.shape[0]}")
    root1 = _sym_psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1  # symmetric PSD, same trace-sqrt as sigma1 @ sigma2
    middle = (middle + middle.T) / 2
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def gaussian_stats(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must have shape (N >= 2, D), got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)
