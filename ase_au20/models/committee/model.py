"""``CommitteeModel``: E = Σ_k w_k E_k over member models; spread = the weighted std of E_k.

Members are any models of the protocol, stored by reference: a registered name (the
shipped model) or a directory relative to the committee's own, each with the SHA-256 of
its card, so a committee never runs on members it was not calibrated with. Per-atom
energies and forces are the same weighted sums, so forces stay the exact gradient.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ase_au20.models.card import SEAL, open_model_card, write_card
from ase_au20.models.domain import Domain, with_domain
from ase_au20.models.protocol import Model
from ase_au20.models.registry import MODEL_NAMES
from ase_au20.paths import PRETRAINED_DIR


class CommitteeModel:
    """A weighted average of member models (weights ≥ 0 summing to 1); ``sources`` are the
    members' directories or registered names, recorded by ``save``."""

    domain: Domain | None = None  # the domain of applicability: set by load / attach_domain

    def __init__(
        self,
        members: Sequence[Model],
        weights: Sequence[float],
        sources: Sequence[str | os.PathLike[str]],
        card: dict[str, Any] | None = None,
    ) -> None:
        weights = np.asarray(weights, dtype=float)
        if len(members) < 2 or weights.shape != (len(members),):
            raise ValueError(f"a committee needs ≥ 2 members and one weight each, got {weights}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or abs(weights.sum() - 1) > 1e-9:
            raise ValueError(f"committee weights must be ≥ 0 and sum to 1, got {weights.tolist()}")
        if len(sources) != len(members):
            raise ValueError(f"{len(sources)} member sources for {len(members)} members")
        self.members = list(members)
        self.sources = [Path(s) for s in sources]
        self.weights = weights
        self.card: dict[str, Any] = dict(card or {})

    @property
    def has_spread(self) -> bool:
        """The member disagreement is always there."""
        return True

    def predict(self, structures: Sequence[Atoms], forces: bool = False) -> dict[str, np.ndarray]:
        """Weighted energies, per-atom energies and forces; ``energy_std`` is
        sqrt(Σ w_k (E_k − E)²), the members' weighted disagreement (eV)."""
        outs = [member.predict(structures, forces=forces) for member in self.members]
        members = np.stack([np.asarray(o["energy"], dtype=float) for o in outs])
        energy = self.weights @ members
        out: dict[str, np.ndarray] = {
            "energy": energy,
            "energies": _weighted(self.weights, [o["energies"] for o in outs]),
            "energy_std": np.sqrt(self.weights @ (members - energy) ** 2),
        }
        if forces:
            out["forces"] = _weighted(self.weights, [o["forces"] for o in outs])
        return out

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``card.json`` naming each member (see ``member_reference``) with its seal."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.card["architecture"] = {
            "members": [
                {"model": member_reference(path, directory), "weight": float(w), SEAL: m.card[SEAL]}
                for path, m, w in zip(self.sources, self.members, self.weights, strict=True)
            ]
        }
        self.card.update(model_type="committee", files={})
        write_card(directory, self.card)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> CommitteeModel:
        """Load a committee and its members (``options``, e.g. ``device``, reach them); a
        member whose card changed since calibration is a ValueError."""
        from ase_au20.models import load_model

        directory = Path(directory)
        card = open_model_card(directory, "committee")
        try:
            entries = card["architecture"]["members"]
            specs = [(str(e["model"]), float(e["weight"]), str(e[SEAL])) for e in entries]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{directory}: invalid committee card ({err!r})") from None
        members, sources = [], []
        for reference, _, seal in specs:
            sources.append(resolve_member(reference, directory))
            member = load_model(sources[-1], **options)
            if member.card.get(SEAL) != seal:
                raise ValueError(
                    f"{directory}: member {reference!r} is not the model this committee was "
                    "calibrated with (its card SHA-256 differs): train the committee again"
                )
            members.append(member)
        return with_domain(cls(members, [w for _, w, _ in specs], sources, card), directory)


def member_reference(path: Path, committee_dir: Path) -> str:
    """A shipped model's registered name, else the path relative to the committee."""
    if str(path) in MODEL_NAMES:
        return str(path)
    path = Path(path).resolve()
    for name in MODEL_NAMES:
        if path == (PRETRAINED_DIR / name).resolve():
            return name
    return os.path.relpath(path, Path(committee_dir).resolve())


def resolve_member(reference: str, committee_dir: Path) -> Path:
    """The directory of a member reference (the inverse of ``member_reference``)."""
    if reference in MODEL_NAMES:
        return PRETRAINED_DIR / reference
    return Path(committee_dir) / reference


def _weighted(weights: np.ndarray, arrays: list[np.ndarray]) -> np.ndarray:
    """Σ_k w_k a_k of per-atom arrays of one shape (NaN padding stays NaN)."""
    return np.tensordot(weights, np.stack([np.asarray(a, dtype=float) for a in arrays]), axes=1)
