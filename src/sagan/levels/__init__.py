"""CESAGAN: conditional self-attention GAN levels for GVGAI Zelda, with bootstrapping
(Torrado et al., CoG 2020). Uses the shared core; does not import :mod:`sagan.images`."""
