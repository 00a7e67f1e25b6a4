"""Evaluation metrics shared by the applications; all take feature arrays, not images."""

from sagan.metrics.frechet import frechet_distance, gaussian_stats
from sagan.metrics.kernel import inception_score, kernel_inception_distance
from sagan.metrics.precision_recall import precision_recall

__all__ = [
    "frechet_distance",
    "gaussian_stats",
    "inception_score",
    "kernel_inception_distance",
    "precision_recall",
]
