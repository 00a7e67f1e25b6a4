"""SAGAN for images: networks, data, training, sampling."""
