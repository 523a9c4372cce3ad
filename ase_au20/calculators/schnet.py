"""``SchNetAu20``: the SchNet (ensemble) model as an ASE calculator; forces by autograd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ase import Atoms

from ase_au20.calculators.base import Au20Calculator
from ase_au20.paths import PRETRAINED_DIR

DTYPES = ("float32", "float64")


def _torch_dtype(dtype: Any) -> Any:
    """``"float32"``/``"float64"`` or a torch dtype -> the torch dtype."""
    import torch

    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return getattr(torch, dtype)
    raise ValueError(f"dtype must be one of {DTYPES} (or the torch dtype), got {dtype!r}")


class SchNetAu20(Au20Calculator):
    """SchNet energies, autograd forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped pretrained model, a trained model directory, or a
    loaded ``SchNetModel``. ``device="auto"`` picks CUDA when available. ``dtype="float64"``
    makes finite-difference and NVE energy-conservation checks exact to round-off.
    """

    def __init__(
        self,
        model: str | os.PathLike | Any | None = None,
        device: str = "auto",
        confidence: float = 0.9,
        mondrian: bool = True,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        from ase_au20.models.schnet import SchNetModel

        torch_dtype = _torch_dtype(dtype)
        if isinstance(model, SchNetModel):
            network = SchNetModel(
                model.networks,
                model.atom_mean,
                model.atom_std,
                card=model.card,
                device=device,
                dtype=torch_dtype,
            )
        else:
            path = Path(model) if model is not None else PRETRAINED_DIR / "schnet"
            if model is None and not (path / "card.json").is_file():
                raise ValueError(
                    f"no shipped pretrained SchNet model in {path}: run `make reproduce` "
                    "or pass model=<trained model directory>"
                )
            network = SchNetModel.load(path, device=device, dtype=torch_dtype)
        super().__init__(network, network.card, confidence, mondrian, **kwargs)

    def _has_spread(self) -> bool:
        """Only an ensemble (several networks) has a spread."""
        return len(self.model) > 1

    def _model_predict(self, structures: list[Atoms], forces: bool) -> dict[str, Any]:
        """One batched SchNet call; padded per-atom arrays are cut back to each size."""
        out = self.model.predict(structures, forces=forces)
        sizes = [len(a) for a in structures]
        raw: dict[str, Any] = {
            "energy": out["energy"],
            "energies": [out["energies"][i, :n] for i, n in enumerate(sizes)],
            "spread": out.get("energy_std"),
        }
        if forces:
            raw["forces"] = [out["forces"][i, :n] for i, n in enumerate(sizes)]
        return raw
