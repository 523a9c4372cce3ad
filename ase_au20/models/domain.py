"""Domain of applicability: is a structure like the ones a model was trained on?

A structure is scored by several checks, each scaled so that 1 is its boundary, and the
domain score is the largest of them (> 1: outside). Geometry against the training isomers:
the shortest pair, the longest nearest-neighbour distance (a torn-off atom), the mean
nearest-neighbour distance (expanded or compressed), the mean coordination and the number
of pieces at the data's bond cutoff (gas-like), the extent; and a descriptor distance: how
far each atom's small SOAP environment lies from the nearest of a farthest-point sample of
the training environments (chains, flattened or otherwise unseen local structure). The
boundaries are the training extremes widened by fixed margins; the margins were chosen so
that every DFT isomer of the dataset and thermal (300 K) geometries of them stay inside.
The model's directory holds the fitted domain as ``domain.npz``, listed in its card.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from scipy.sparse.csgraph import connected_components

from ase_au20.validation import BOND_CUTOFF

DOMAIN_NAME = "domain.npz"
CHECKS = (
    "shortest_pair",
    "longest_neighbour",
    "mean_neighbour_high",
    "mean_neighbour_low",
    "coordination",
    "pieces",
    "extent",
    "descriptor",
)
# margins on the training extremes (fractions, or extra pieces): see the module docstring
PAIR_MARGIN = 0.88  # shortest pair may fall to 88 % of the training minimum (2.2 Å)
NEIGHBOUR_MARGIN = 1.25  # an atom's nearest neighbour may be 25 % farther than in training
MEAN_NEIGHBOUR_MARGIN = 0.06  # mean nearest-neighbour distance within ±6 % of the training range
COORDINATION_MARGIN = 0.6  # mean coordination down to 60 % of the training minimum
EXTENT_MARGIN = 1.25
DESCRIPTOR_MARGIN = 1.5  # times the largest leave-one-structure-out environment distance
N_ENVIRONMENTS = 1500  # farthest-point sample of the training environments
OUTSIDE_EXPONENT = 2.0  # energy_uncertainty × score² outside the domain
DESCRIPTOR_SOAP = {"r_cut": 6.0, "n_max": 4, "l_max": 3, "sigma": 0.4}


@dataclass(frozen=True)
class DomainVerdict:
    """Per structure: the domain score (> 1 outside), the verdict and the check that decided."""

    score: np.ndarray
    in_domain: np.ndarray
    worst_check: list[str]


def _geometry(atoms: Atoms) -> dict[str, float]:
    """The geometric quantities of one structure that the checks compare."""
    positions = atoms.get_positions()
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(axis=1)
    bonded = dist < BOND_CUTOFF
    pieces = connected_components(bonded, directed=False)[0]
    np.fill_diagonal(dist, 0.0)
    return {
        "shortest_pair": float(nearest.min()),
        "longest_neighbour": float(nearest.max()),
        "mean_neighbour": float(nearest.mean()),
        "coordination": float(bonded.sum(axis=1).mean()),
        "pieces": float(pieces),
        "extent": float(dist.max()),
    }


class Domain:
    """The fitted boundaries and environment sample of one model's training structures."""

    def __init__(self, limits: dict[str, float], environments: np.ndarray) -> None:
        self.limits = {k: float(v) for k, v in limits.items()}
        self.environments = np.asarray(environments, dtype=np.float32)
        self._featurizer: Any = None

    @property
    def featurizer(self):
        """The small SOAP of the descriptor check (built on first use)."""
        if self._featurizer is None:
            from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings

            self._featurizer = SoapFeaturizer(SoapSettings(**DESCRIPTOR_SOAP))
        return self._featurizer

    @classmethod
    def fit(cls, structures: Sequence[Atoms]) -> Domain:
        """Boundaries from the training ``structures`` widened by the module's margins."""
        from ase_au20.models.krr.kernels import farthest_point_sample

        if len(structures) < 2:
            raise ValueError(
                "a domain needs at least two training structures (its descriptor check is "
                "calibrated leaving one out)"
            )
        geo = [_geometry(a) for a in structures]

        def column(key: str) -> np.ndarray:
            return np.array([g[key] for g in geo])

        neighbour = column("mean_neighbour")
        domain = cls({}, np.zeros((1, 1)))
        units = domain.featurizer.normalised_many(structures)
        envs = np.concatenate(units)
        owner = np.repeat(np.arange(len(units)), [len(u) for u in units])
        picked = farthest_point_sample(envs, N_ENVIRONMENTS)
        sample, sample_owner = envs[picked], owner[picked]
        # leave-one-structure-out: how far a training structure lies from the others' sample
        held_out = max(
            float(np.sqrt(_nearest_sq(u, sample[sample_owner != k]).max()))
            for k, u in enumerate(units)
        )
        limits = {
            "shortest_pair": PAIR_MARGIN * column("shortest_pair").min(),
            "longest_neighbour": NEIGHBOUR_MARGIN * column("longest_neighbour").max(),
            "mean_neighbour_high": (1.0 + MEAN_NEIGHBOUR_MARGIN) * neighbour.max(),
            "mean_neighbour_low": (1.0 - MEAN_NEIGHBOUR_MARGIN) * neighbour.min(),
            "coordination": COORDINATION_MARGIN * column("coordination").min(),
            "pieces": column("pieces").max() + 0.5,  # one piece more than any isomer is out
            "extent": EXTENT_MARGIN * column("extent").max(),
            "descriptor": DESCRIPTOR_MARGIN * max(held_out, 1e-6),
        }
        return cls(limits, sample)

    def scores(self, structures: Sequence[Atoms]) -> tuple[np.ndarray, list[str]]:
        """Domain score (largest scaled check, > 1 outside) and its check, per structure."""
        out, worst = np.empty(len(structures)), []
        for k, atoms in enumerate(structures):
            checks = self.checks(atoms)
            name = max(checks, key=checks.get)
            out[k] = checks[name]
            worst.append(name)
        return out, worst

    def checks(self, atoms: Atoms) -> dict[str, float]:
        """Every check of one structure, each scaled so that 1 is its boundary."""
        g, lim = _geometry(atoms), self.limits
        env = self.featurizer.normalised(atoms).astype(np.float32)
        far = float(np.sqrt(_nearest_sq(env, self.environments).max()))
        return {
            "shortest_pair": lim["shortest_pair"] / max(g["shortest_pair"], 1e-6),
            "longest_neighbour": g["longest_neighbour"] / lim["longest_neighbour"],
            "mean_neighbour_high": g["mean_neighbour"] / lim["mean_neighbour_high"],
            "mean_neighbour_low": lim["mean_neighbour_low"] / g["mean_neighbour"],
            "coordination": lim["coordination"] / max(g["coordination"], 0.1),
            "pieces": g["pieces"] / lim["pieces"],
            "extent": g["extent"] / lim["extent"],
            "descriptor": far / lim["descriptor"],
        }

    def verdict(self, structures: Sequence[Atoms]) -> DomainVerdict:
        """Scores, in/out verdicts and the deciding check of ``structures``."""
        score, worst = self.scores(structures)
        return DomainVerdict(score, score <= 1.0, worst)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``domain.npz`` (limits in a fixed order, the environment sample)."""
        path = Path(directory) / DOMAIN_NAME
        tmp = Path(directory) / ".domain-tmp.npz"
        limits = np.array([self.limits[k] for k in CHECKS])
        np.savez_compressed(tmp, limits=limits, environments=self.environments)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Domain:
        """Read ``domain.npz``; ValueError naming the file when it is missing or malformed."""
        path = Path(directory) / DOMAIN_NAME
        if not path.is_file():
            raise ValueError(
                f"{directory}: no {DOMAIN_NAME} (domain of applicability); models trained with "
                "this version have one, older ones need `ase_au20.models.domain.attach_domain`"
            )
        with np.load(path, allow_pickle=False) as data:
            limits, envs = data["limits"], data["environments"]
        if limits.shape != (len(CHECKS),) or envs.ndim != 2 or not np.isfinite(limits).all():
            raise ValueError(f"{path}: malformed domain file")
        return cls(dict(zip(CHECKS, limits.tolist(), strict=True)), envs)


def with_domain(model: Any, directory: str | os.PathLike[str]) -> Any:
    """``model`` with the domain of ``directory`` (every model class's ``load`` ends so)."""
    model.domain = Domain.load(directory)
    return model


def _nearest_sq(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Squared distance of each unit row of ``x`` to its nearest row of ``bank`` (unit rows)."""
    return np.maximum(2.0 - 2.0 * (x @ bank.T).max(axis=1), 0.0)


def outside_uncertainty(half_width: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The interval half-width, grown by score² where the structure is outside the domain."""
    score = np.asarray(score, dtype=float)
    grow = np.where(score > 1.0, score**OUTSIDE_EXPONENT, 1.0)
    return np.asarray(half_width, dtype=float) * grow


def attach_domain(
    directory: str | os.PathLike[str], structures: Sequence[Atoms], model: Any = None
) -> Domain:
    """Fit the domain of the model in ``directory`` on its training ``structures``, write
    ``domain.npz`` and list it in the card (which is sealed again); a ``model`` saved there
    gets the new card and the domain."""
    from ase_au20.models.card import file_sha256, read_card, write_card

    domain = Domain.fit(structures)
    path = domain.save(directory)
    card = read_card(directory)
    card.setdefault("files", {})[DOMAIN_NAME] = file_sha256(path)
    card["domain"] = {
        "checks": list(CHECKS),
        "limits": domain.limits,
        "n_training_structures": len(structures),
        "descriptor_soap": DESCRIPTOR_SOAP,
        "n_environments": int(len(domain.environments)),
        "outside_uncertainty": f"half-width × score^{OUTSIDE_EXPONENT:g}",
    }
    write_card(directory, card)
    if model is not None:
        model.card, model.domain = read_card(directory), domain
    return domain
