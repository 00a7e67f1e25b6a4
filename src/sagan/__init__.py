"""torch-sagan: Self-Attention GANs in PyTorch.

Nothing heavy happens at import; :func:`load_generator` imports the image application lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagan.errors import SaganError

__version__ = "0.3.0"
__all__ = ["SaganError", "__version__", "load_generator"]

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from sagan.images.export import LoadedGenerator


def load_generator(source: str | Path, *, device: str = "cpu") -> LoadedGenerator:
    """Load the EMA generator from a checkpoint file, a run folder or an export folder.

    Returns an ``nn.Module`` in eval mode with ``.sample(n, labels=None, generator=None)``.
    """
    from sagan.images.export import load_generator as _load

    return _load(source, device=device)
