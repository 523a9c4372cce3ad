"""``SchNetAu20``: the SchNet (ensemble) model as an ASE calculator, with analytic forces."""

from __future__ import annotations

import os
from typing import Any

from ase_au20.calculators.base import DeviceCalculator


class SchNetAu20(DeviceCalculator):
    """SchNet energies, analytic forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped model, a trained model directory, or a loaded
    ``SchNetModel`` (copied to ``device``/``dtype``). On the CPU in float32 the model runs on
    its frozen NumPy arrays and torch is never imported; ``dtype="float64"`` (torch) makes
    finite-difference and NVE energy-conservation checks exact to round-off.
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
        if callable(getattr(model, "to", None)):  # a loaded model: for device and dtype
            model = model.to(device, dtype)
        super().__init__(model, device, confidence, mondrian, dtype, **kwargs)
