"""``SchNetAu20``: the SchNet (ensemble) model as an ASE calculator; forces by autograd."""

from __future__ import annotations

import os
from typing import Any

from ase_au20.calculators.base import DeviceCalculator


class SchNetAu20(DeviceCalculator):
    """SchNet energies, autograd forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped model, a trained model directory, or a loaded
    ``SchNetModel`` (copied to ``device``/``dtype``). ``dtype="float64"`` makes
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
        if hasattr(model, "networks"):  # a loaded SchNetModel: re-wrap for device and dtype
            model = model.to(device, dtype)
        super().__init__(model, device, confidence, mondrian, dtype, **kwargs)
