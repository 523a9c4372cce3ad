"""Saving matplotlib figures the same way everywhere (PNG, 120 dpi, tight, memory freed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO


def save_figure(fig: Any, path: str | os.PathLike | BinaryIO) -> Any:
    """Write ``fig`` as a PNG at ``path`` (or into a binary file object, e.g. for a web
    response) and release it from pyplot's figure registry; returns ``path`` as a Path."""
    import matplotlib.pyplot as plt

    if isinstance(path, str | os.PathLike):
        path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
