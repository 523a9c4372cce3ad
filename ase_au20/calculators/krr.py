"""``KRRAu20``: the SOAP kernel ridge model as an ASE calculator; forces from SOAP derivatives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ase import Atoms

from ase_au20.calculators.base import Au20Calculator
from ase_au20.paths import PRETRAINED_DIR


class KRRAu20(Au20Calculator):
    """SOAP+KRR energies, analytical forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped pretrained model, a trained model directory, or a
    loaded ``KRRModel``. The model runs with one BLAS thread: its per-structure products
    are tiny, and handing them to a second thread doubles the single-call time.
    """

    def __init__(
        self,
        model: str | os.PathLike | Any | None = None,
        confidence: float = 0.9,
        mondrian: bool = True,
        **kwargs: Any,
    ) -> None:
        from threadpoolctl import ThreadpoolController

        from ase_au20.models.krr import KRRModel

        if isinstance(model, KRRModel):
            loaded = model
        else:
            path = Path(model) if model is not None else PRETRAINED_DIR / "krr"
            if model is None and not (path / "card.json").is_file():
                raise ValueError(
                    f"no shipped pretrained KRR model in {path}: run `make reproduce` "
                    "or pass model=<trained model directory>"
                )
            loaded = KRRModel.load(path)
        super().__init__(loaded, loaded.card, confidence, mondrian, **kwargs)
        self._threadpools = ThreadpoolController()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the thread-pool controller (ctypes handles), e.g. for search workers."""
        state = self.__dict__.copy()
        del state["_threadpools"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from threadpoolctl import ThreadpoolController

        self.__dict__.update(state)
        self._threadpools = ThreadpoolController()

    def _has_spread(self) -> bool:
        """Sparse models store the Cholesky factor that gives the predictive std."""
        return "spread_factor" in self.model.arrays

    def _model_predict(self, structures: list[Atoms], forces: bool) -> dict[str, Any]:
        """One KRR call over all structures; padded per-atom arrays are cut to each size.

        ``spread`` is the predictive std when the model stores its factor (it scales the
        conformal interval of a normalised calibrator).
        """
        with self._threadpools.limit(limits=1, user_api="blas"):
            out = self.model.predict(structures, forces=forces)
        sizes = [len(a) for a in structures]
        raw: dict[str, Any] = {
            "energy": out["energy"],
            "energies": [out["energies"][i][:n] for i, n in enumerate(sizes)],
            "spread": out.get("energy_std"),
        }
        if forces:
            raw["forces"] = [out["forces"][i][:n] for i, n in enumerate(sizes)]
        return raw
