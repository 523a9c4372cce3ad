"""``XtbDeltaModel``: E = E_GFN1(x) + KRR_Δ(x); forces F_GFN1 − ∇KRR_Δ, exact.

The KRR learns the residual E_DFTB1 − E_GFN1 on SOAP (``models/krr``); its zero-force term
targets the GFN1 forces, so the total model is force-free at the DFTB1 minima. Per-atom
energies are the KRR's local terms plus E_GFN1 split equally (xTB gives no unique local
split). The spread is the KRR's predictive std. Weights: the Δ KRR's ``weights.npz``; the
card holds the SOAP and xTB settings.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ase_au20.models.card import file_sha256, open_model_card, write_card
from ase_au20.models.domain import Domain, with_domain
from ase_au20.models.krr.model import WEIGHTS_NAME, KRRModel, n_soap_features
from ase_au20.models.krr.soap import SoapSettings
from ase_au20.models.xtb_delta.baseline import XtbSettings
from ase_au20.models.xtb_delta.cache import BaselineCache, compute_baseline


class XtbDeltaModel:
    """The GFN1-xTB baseline plus a KRR on its residual; ``cache`` (optional) reuses
    baseline results of geometries seen before (training and evaluation rows)."""

    domain: Domain | None = None  # the domain of applicability: set by load / attach_domain

    def __init__(
        self,
        baseline: XtbSettings,
        delta: KRRModel,
        card: dict[str, Any] | None = None,
        cache: BaselineCache | None = None,
    ) -> None:
        self.baseline = baseline
        self.delta = delta
        self.card: dict[str, Any] = dict(card or {})
        self.cache = cache

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The Δ KRR's hyper-parameters (the card records them)."""
        return self.delta.hyperparameters

    @property
    def has_spread(self) -> bool:
        """The Δ KRR's predictive std, when it is sparse."""
        return self.delta.has_spread

    def baseline_terms(self, structures: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
        """GFN1 energies and forces (from the cache where it has them), in this process:
        batch parallelism belongs to the caller (``screen --workers``)."""
        if self.cache is not None:
            return self.cache.compute(structures, self.baseline, progress=False)
        return compute_baseline(structures, self.baseline, progress=False)

    def predict(self, structures: Sequence[Atoms], forces: bool = False) -> dict[str, Any]:
        """Energies, per-atom energies (NaN-padded), optional forces and the KRR spread."""
        out = self.delta.predict(structures, forces=forces)
        energies, baseline_forces = self.baseline_terms(structures)
        result = dict(out)
        result["energy"] = out["energy"] + energies
        sizes = np.array([len(a) for a in structures])
        result["energies"] = out["energies"] + (energies / sizes)[:, None]
        if forces:
            total = out["forces"].copy()
            for i, f in enumerate(baseline_forces):
                total[i, : len(f)] += f
            result["forces"] = total
        return result

    @property
    def architecture(self) -> str:
        """One-line description of the energy form."""
        return f"{self.baseline.method} (tblite) + Δ-KRR: {self.delta.architecture}"

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the Δ KRR's ``weights.npz`` and the sealed ``card.json``."""
        if not self.card:
            raise ValueError("model.card is empty: build it with models.card.new_card first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".weights-tmp.npz"
        np.savez_compressed(tmp, **self.delta.arrays)
        os.replace(tmp, directory / WEIGHTS_NAME)
        settings = self.delta.settings
        self.card.update(
            model_type="xtb-delta",
            architecture=self.architecture,
            hyperparameters=self.hyperparameters,
            features={
                **settings.to_dict(),
                "n_features": n_soap_features(settings),
                "baseline": self.baseline.to_dict(),
            },
            files={WEIGHTS_NAME: file_sha256(directory / WEIGHTS_NAME)},
        )
        write_card(directory, self.card)
        return directory

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], cache: BaselineCache | None = None
    ) -> XtbDeltaModel:
        """Load a model directory written by ``save`` (checked against its card)."""
        directory = Path(directory)
        card = open_model_card(directory, "xtb-delta", [WEIGHTS_NAME])
        try:
            with np.load(directory / WEIGHTS_NAME, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{directory / WEIGHTS_NAME}: unreadable weights file ({err})"
            ) from None
        try:
            baseline = XtbSettings.from_dict(card["features"]["baseline"])
            delta = KRRModel(
                SoapSettings.from_dict(card["features"]), card["hyperparameters"], arrays
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"{directory}: weights or settings do not match the card: {err}"
            ) from None
        return with_domain(cls(baseline, delta, card, cache), directory)
