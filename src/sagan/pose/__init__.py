"""Adversarial human pose estimation with self-attention hourglasses (Hg-SAGAN; Wang et al.,
IEEE Access 2019). Uses the shared core; does not import :mod:`sagan.images` or
:mod:`sagan.levels`. So far: the joint definitions and the PCKh / PCK metrics."""
