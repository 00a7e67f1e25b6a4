"""Evaluation metrics shared by the applications."""

from sagan.metrics.frechet import frechet_distance, gaussian_stats

__all__ = ["frechet_distance", "gaussian_stats"]
