"""Saving matplotlib figures the same way everywhere (PNG, 120 dpi, tight, memory freed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` and release it from pyplot's figure registry."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
