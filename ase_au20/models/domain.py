"""Domain of applicability: is a structure like the ones a model was trained on?

A structure is scored by several checks, each scaled so that 1 is its boundary, and the
domain score is the largest of them (> 1: outside). Geometry against the training isomers:
the shortest pair, the longest nearest-neighbour distance (a torn-off atom), the mean
nearest-neighbour distance (expanded or compressed), the mean coordination and the number
of pieces at the data's bond cutoff (gas-like), the extent; and a descriptor distance: how
far each atom's environment (its sorted distances to its 12 nearest neighbours, capped at
twice the bond cutoff) lies from the nearest of a farthest-point sample of the training
environments. The boundaries are the training extremes widened by fixed margins (the
descriptor's: its largest leave-one-structure-out distance plus the sample's covering
radius), chosen so that every DFTB1 isomer of the dataset and thermal (300 K) geometries of
them stay inside. Corpus frames (rattles, MD, relaxation paths) widen the boundaries only
with their central share: a frame beyond the FRAME_QUANTILE of any geometric quantity (a
relaxation start still spread out, a hot frame losing an atom) does not define the domain,
so a few such frames cannot open it to torn or expanded clusters. Everything is NumPy on
stacked positions, so a batch costs little more than one call. The model's directory
holds the fitted domain as ``domain.npz``, listed in its card.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ase_au20.geometry.conventions import BOND_CUTOFF

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
DESCRIPTOR_MARGIN = 1.5  # times the leave-one-structure-out distance (see Domain.fit)
N_NEIGHBOURS = 12  # distances per atom in the environment descriptor
ENVIRONMENT_CUTOFF = 2 * BOND_CUTOFF  # Å; farther neighbours count as at the cutoff, so
# an isomer of two distant pieces does not make every environment look "near"
N_ENVIRONMENTS = 1500  # farthest-point sample of the training environments
OUTSIDE_EXPONENT = 2.0  # energy_uncertainty × score² outside the domain
FRAME_QUANTILE = 0.97  # corpus frames beyond this quantile of a geometric quantity are left out
# which tail of each quantity is unusual (the side its check bounds)
TAILS = {
    "shortest_pair": "low",
    "longest_neighbour": "high",
    "mean_neighbour": "both",
    "coordination": "low",
    "pieces": "high",
    "extent": "high",
}


@dataclass(frozen=True)
class DomainVerdict:
    """Per structure: the domain score (> 1 outside), the verdict and the check that decided."""

    score: np.ndarray
    in_domain: np.ndarray
    worst_check: list[str]


def _pieces(bonded: np.ndarray) -> np.ndarray:
    """Connected pieces of each bond graph in a (B, N, N) stack: reachability by repeated
    squaring of the bond matrix (⌈log2 N⌉ small products, about half the cost of label
    propagation at 20 atoms), then one piece per atom that reaches no lower index."""
    n = bonded.shape[1]
    reach = (bonded | np.eye(n, dtype=bool)[None]).astype(np.float32)
    for _ in range(max(1, math.ceil(math.log2(n)))):
        reach = np.minimum(reach @ reach, 1.0)  # paths of up to twice the length
    lowest = (reach > 0).argmax(axis=2)  # each atom's smallest reachable index
    return (lowest == np.arange(n)).sum(axis=1)


def _stack_quantities(positions: np.ndarray) -> dict[str, np.ndarray]:
    """The checked quantities of a (B, N, 3) stack of equal-size structures, and the
    (B, N, K) environment descriptors."""
    diff = positions[:, :, None, :] - positions[:, None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    n = positions.shape[1]
    eye = np.eye(n, dtype=bool)[None]
    apart = np.where(eye, np.inf, dist)
    ordered = np.sort(apart, axis=2)
    nearest = ordered[:, :, 0]
    bonded = apart < BOND_CUTOFF
    k = min(N_NEIGHBOURS, n - 1)
    return {
        "shortest_pair": nearest.min(axis=1),
        "longest_neighbour": nearest.max(axis=1),
        "mean_neighbour": nearest.mean(axis=1),
        "coordination": bonded.sum(axis=2).mean(axis=1),
        "pieces": _pieces(bonded).astype(float),
        "extent": dist.max(axis=(1, 2)),
        "environments": np.minimum(ordered[:, :, :k], ENVIRONMENT_CUTOFF),
    }


def _quantities(structures: Sequence[Atoms]) -> list[dict[str, Any]]:
    """Per-structure quantities, computed on stacks of equal-size structures."""
    out: list[dict[str, Any] | None] = [None] * len(structures)
    sizes = np.array([len(a) for a in structures])
    for size in np.unique(sizes):
        index = np.flatnonzero(sizes == size)
        stack = np.stack([structures[i].get_positions() for i in index])
        values = _stack_quantities(stack)
        for row, i in enumerate(index):
            out[i] = {key: v[row] for key, v in values.items()}
    return out  # type: ignore[return-value]


def _nearest(x: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Euclidean distance (Å) of each row of ``x`` to its nearest row of ``bank``."""
    bank_sq = (bank**2).sum(1)
    closest = (bank_sq[None, :] - 2.0 * (x @ bank.T)).min(axis=1)
    return np.sqrt(np.maximum(closest + (x**2).sum(1), 0.0))


class Domain:
    """The fitted boundaries and environment sample of one model's training structures."""

    def __init__(self, limits: dict[str, float], environments: np.ndarray) -> None:
        self.limits = {k: float(v) for k, v in limits.items()}
        self.environments = np.asarray(environments, dtype=float).reshape(-1, N_NEIGHBOURS)
        # a k-d tree: 3x faster than the distance matrix on 256 structures, 82 against 68 µs
        # on one; none when the descriptor check is off (an infinite limit)
        self._tree = cKDTree(self.environments) if self.uses_descriptor else None

    @property
    def uses_descriptor(self) -> bool:
        """Whether the environment-descriptor check is on (a geometric-only domain, as a
        reference method's, has an infinite limit and no environments)."""
        return math.isfinite(self.limits["descriptor"])

    @classmethod
    def fit_geometry(cls, structures: Sequence[Atoms]) -> Domain:
        """The geometric checks of ``fit`` alone: for a method that does not learn from its
        training structures, where only a physically sensible geometry matters."""
        if not structures:
            raise ValueError("a domain needs at least one structure")
        geo = _quantities(structures)

        def column(key: str) -> np.ndarray:
            return np.array([g[key] for g in geo])

        limits = _geometric_limits(column)
        limits["descriptor"] = math.inf
        return cls(limits, np.empty((0, N_NEIGHBOURS)))

    @classmethod
    def fit(cls, structures: Sequence[Atoms], frames: Sequence[Atoms] = ()) -> Domain:
        """Boundaries from the training ``structures`` (isomers: every one inside) and the
        central share of the training ``frames`` (corpus frames, see ``central_frames``),
        widened by the module's margins."""
        from ase_au20.models.krr.kernels import farthest_point_sample

        if len(structures) < 2:
            raise ValueError(
                "a domain needs at least two training structures (its descriptor check is "
                "calibrated leaving one out)"
            )
        geo = _quantities(structures)
        if len(frames):
            framed = _quantities(frames)
            geo += [framed[i] for i in np.flatnonzero(central_frames(framed))]

        def column(key: str) -> np.ndarray:
            return np.array([g[key] for g in geo])

        units = [g["environments"] for g in geo]
        envs = np.concatenate(units)
        owner = np.repeat(np.arange(len(units)), [len(u) for u in units])
        sample = envs[farthest_point_sample(envs, N_ENVIRONMENTS)]
        # leave-one-structure-out: how far a training structure lies from the others, plus
        # how far any training environment lies from the sample the check compares with
        held_out = max(float(_nearest(u, envs[owner != k]).max()) for k, u in enumerate(units))
        held_out += float(_nearest(envs, sample).max())
        limits = _geometric_limits(column)
        limits["descriptor"] = DESCRIPTOR_MARGIN * max(held_out, 1e-6)
        return cls(limits, sample)

    def all_checks(self, structures: Sequence[Atoms]) -> list[dict[str, float]]:
        """Every check of every structure, each scaled so that 1 is its boundary."""
        lim, out = self.limits, []
        geo = _quantities(structures)
        width = self.environments.shape[1]
        units = [g["environments"] for g in geo]
        if self._tree is None:
            nearest = np.zeros(sum(len(u) for u in units))
        else:
            for g in geo:
                if g["environments"].shape[1] != width:
                    raise ValueError(
                        f"a structure of {len(g['environments'])} atoms has no {width} "
                        "neighbours per atom to compare with the training environments"
                    )
            nearest, _ = self._tree.query(np.concatenate(units), k=1)
        ends = np.cumsum([len(u) for u in units])
        for g, part in zip(geo, np.split(nearest, ends[:-1]), strict=True):
            out.append(
                {
                    "shortest_pair": lim["shortest_pair"] / max(g["shortest_pair"], 1e-6),
                    "longest_neighbour": g["longest_neighbour"] / lim["longest_neighbour"],
                    "mean_neighbour_high": g["mean_neighbour"] / lim["mean_neighbour_high"],
                    "mean_neighbour_low": lim["mean_neighbour_low"] / g["mean_neighbour"],
                    "coordination": lim["coordination"] / max(g["coordination"], 0.1),
                    "pieces": g["pieces"] / lim["pieces"],
                    "extent": g["extent"] / lim["extent"],
                    "descriptor": float(part.max()) / lim["descriptor"],
                }
            )
        return out

    def checks(self, atoms: Atoms) -> dict[str, float]:
        """Every check of one structure, each scaled so that 1 is its boundary."""
        return self.all_checks([atoms])[0]

    def scores(self, structures: Sequence[Atoms]) -> tuple[np.ndarray, list[str]]:
        """Domain score (largest scaled check, > 1 outside) and its check, per structure."""
        every = self.all_checks(structures)
        worst = [max(c, key=c.get) for c in every]
        return np.array([c[w] for c, w in zip(every, worst, strict=True)]), worst

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
        finite = np.isfinite(limits[:-1]).all() and limits[-1] > 0  # the descriptor's may be inf
        if limits.shape != (len(CHECKS),) or envs.ndim != 2 or not finite:
            raise ValueError(f"{path}: malformed domain file")
        return cls(dict(zip(CHECKS, limits.tolist(), strict=True)), envs)


def central_frames(quantities: list[dict[str, Any]]) -> np.ndarray:
    """Mask of the frames inside the FRAME_QUANTILE of every geometric quantity, on the
    tail (or tails) its check bounds: the frames allowed to widen a domain."""
    keep = np.ones(len(quantities), dtype=bool)
    for key, tail in TAILS.items():
        values = np.array([q[key] for q in quantities], dtype=float)
        if tail in ("high", "both"):
            keep &= values <= np.quantile(values, FRAME_QUANTILE)
        if tail in ("low", "both"):
            keep &= values >= np.quantile(values, 1.0 - FRAME_QUANTILE)
    return keep


def _geometric_limits(column: Any) -> dict[str, float]:
    """The geometric boundaries from ``column(key)``, the training values of each quantity,
    widened by the module's margins."""
    neighbour = column("mean_neighbour")
    return {
        "shortest_pair": PAIR_MARGIN * column("shortest_pair").min(),
        "longest_neighbour": NEIGHBOUR_MARGIN * column("longest_neighbour").max(),
        "mean_neighbour_high": (1.0 + MEAN_NEIGHBOUR_MARGIN) * neighbour.max(),
        "mean_neighbour_low": (1.0 - MEAN_NEIGHBOUR_MARGIN) * neighbour.min(),
        "coordination": COORDINATION_MARGIN * column("coordination").min(),
        "pieces": column("pieces").max() + 0.5,  # one piece more than any isomer is out
        "extent": EXTENT_MARGIN * column("extent").max(),
    }


def with_domain(model: Any, directory: str | os.PathLike[str]) -> Any:
    """``model`` with the domain of ``directory`` (every model class's ``load`` ends so)."""
    model.domain = Domain.load(directory)
    return model


def _growth(score: np.ndarray) -> np.ndarray:
    """The factor an interval grows by: score² outside the domain, 1 inside."""
    score = np.asarray(score, dtype=float)
    return np.where(score > 1.0, score**OUTSIDE_EXPONENT, 1.0)


def outside_uncertainty(half_width: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The interval half-width, grown by score² where the structure is outside the domain."""
    return np.asarray(half_width, dtype=float) * _growth(score)


def inside_uncertainty(half_width: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The calibrated half-width behind ``outside_uncertainty``'s: the interval a structure
    would get were it inside, against which the verdict itself is judged."""
    return np.asarray(half_width, dtype=float) / _growth(score)


def attach_domain(
    directory: str | os.PathLike[str],
    structures: Sequence[Atoms],
    model: Any = None,
    geometric_only: bool = False,
    frames: Sequence[Atoms] = (),
) -> Domain:
    """Fit the domain of the model in ``directory`` on its training ``structures`` and
    corpus ``frames`` (``Domain.fit``; with ``geometric_only``, the structures' geometric
    checks alone: ``Domain.fit_geometry``), write ``domain.npz`` and list it in the card
    (which is sealed again); a ``model`` saved there gets the new card and the domain."""
    from ase_au20.models.card import file_sha256, read_card, write_card

    domain = Domain.fit_geometry(structures) if geometric_only else Domain.fit(structures, frames)
    path = domain.save(directory)
    card = read_card(directory)
    card.setdefault("files", {})[DOMAIN_NAME] = file_sha256(path)
    descriptor = (
        f"sorted distances to the {N_NEIGHBOURS} nearest neighbours, capped at "
        f"{ENVIRONMENT_CUTOFF:.2f} Å"
        if domain.uses_descriptor
        else "off (geometric checks only)"
    )
    card["domain"] = {
        "checks": list(CHECKS),
        "limits": domain.limits,
        "n_training_structures": len(structures),
        "n_training_frames": len(frames),
        "frames_quantile": FRAME_QUANTILE,
        "descriptor": descriptor,
        "n_environments": int(len(domain.environments)),
        "outside_uncertainty": f"half-width × score^{OUTSIDE_EXPONENT:g}",
    }
    write_card(directory, card)
    if model is not None:
        model.card, model.domain = read_card(directory), domain
    return domain
