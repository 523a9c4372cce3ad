"""``SchNetAu20``: the SchNet (ensemble) model as an ASE calculator; forces by autograd."""

from __future__ import annotations

import os
from typing import Any

from ase_au20.calculators.base import Au20Calculator


class SchNetAu20(Au20Calculator):
    """SchNet energies, autograd forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped model, a trained model directory, or a loaded
    ``SchNetModel`` (copied to ``device``/``dtype``). ``device="auto"`` picks CUDA when
    available. ``dtype="float64"`` makes finite-difference and NVE energy-conservation
    checks exact to round-off.
    """

    default_model = "schnet"

    def __init__(
        self,
        model: str | os.PathLike | Any | None = None,
        device: str = "auto",
        confidence: float = 0.9,
        mondrian: bool = True,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        if hasattr(model, "networks"):  # a loaded SchNetModel: re-wrap for device and dtype
            model = model.to(device, dtype)
        options = {"device": device, "dtype": dtype}
        super().__init__(model, confidence, mondrian, load_options=options, **kwargs)
