"""SchNet sizes and training hyper-parameters as plain dataclasses (no torch import).

Kept apart from the network so the CLI can show defaults and cards can be checked
without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class SchNetArchitecture:
    """Network size: hidden features, blocks, Gaussian RBFs exp(-gamma (d - mu)^2), cutoff (Å).

    ``repulsion_radius`` r (Å) and ``repulsion_strength`` k (eV/Å³) add a fixed pair prior
    k·(r − d)³ for d < r (zero above, C2 at r) to the energy: the training minima never
    come that close, so without it nothing stops the network from attracting atoms into
    each other in MD. ``repulsion_radius=0`` disables it (cards written before it existed).
    """

    hidden: int = 128
    blocks: int = 4
    rbf: int = 64
    cutoff: float = 6.0
    gamma: float = 10.0  # Å^-2 (SchNet paper): Gaussians ~0.22 Å wide, smooth filters
    repulsion_radius: float = 0.0
    repulsion_strength: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hidden", "blocks", "rbf"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"architecture {name} must be a positive integer, got {value!r}")
        for name in ("cutoff", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"architecture {name} must be a positive number, got {value!r}")
        for name in ("repulsion_radius", "repulsion_strength"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"architecture {name} must not be negative, got {value!r}")
        if self.repulsion_radius >= self.cutoff:
            raise ValueError(
                f"repulsion_radius ({self.repulsion_radius} Å) must lie below the cutoff "
                f"({self.cutoff} Å)"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchNetArchitecture:
        """Rebuild from a card's ``architecture`` (extra keys such as ``ensemble_size`` ignored)."""
        missing = [k for k in ("hidden", "blocks", "rbf", "cutoff", "gamma") if k not in data]
        if missing:
            raise ValueError(f"architecture lacks {', '.join(missing)}")
        return cls(
            int(data["hidden"]),
            int(data["blocks"]),
            int(data["rbf"]),
            float(data["cutoff"]),
            float(data["gamma"]),
            float(data.get("repulsion_radius", 0.0)),
            float(data.get("repulsion_strength", 0.0)),
        )


@dataclass(frozen=True)
class SchNetCard:
    """What loading a SchNet model needs from its card, checked (``read_schnet_card``)."""

    architecture: SchNetArchitecture
    members: int
    atom_mean: float
    atom_std: float
    table_spacing: float | None  # Å; None: exact filters, no table


def read_schnet_card(card: dict[str, Any], source: Any) -> SchNetCard:
    """The architecture, ensemble size, target scaling and filter table of a SchNet ``card``;
    ValueError naming ``source`` when one is missing or malformed."""
    try:
        if not isinstance(card["architecture"], dict):
            raise TypeError("architecture must be a JSON object")
        scaling = card["target_scaling"]
        spacing = card["hyperparameters"].get("table_spacing")
        if spacing is not None and not (isinstance(spacing, int | float) and spacing > 0):
            raise ValueError(f"table_spacing must be a positive number, got {spacing!r}")
        return SchNetCard(
            SchNetArchitecture.from_dict(card["architecture"]),
            int(card["architecture"].get("ensemble_size", 1)),
            float(scaling["atom_mean"]),
            float(scaling["atom_std"]),
            None if spacing is None else float(spacing),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{source}: invalid SchNet card ({err})") from None


@dataclass
class SchNetConfig:
    """Architecture and training hyper-parameters (defaults need no teacher; see shipped_config).

    ``threads=1`` by default: on a 2-core machine shared with other work, two intra-op
    threads ran up to 10x slower than one (each waits for the other's descheduled core).
    ``workers > 1`` trains each network data-parallel over that many CPU processes (see
    ``ase_au20.models.schnet.data_parallel``); results then differ from ``workers=1`` by
    floating-point summation order only.
    """

    hidden: int = 128
    blocks: int = 4
    rbf: int = 64
    cutoff: float = 6.0
    gamma: float = 10.0
    repulsion_radius: float = 0.0
    repulsion_strength: float = 0.0
    epochs: int = 150
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-5
    patience: int = 40
    kd_lambda: float = 0.0
    kd_atom_weight: float = 0.0
    kd_force_weight: float = 0.0
    kd_force_subset: int = 4
    vkd: int = 0
    vkd_sigma: float = 0.1
    vkd_weight: float = 1.0
    force_weight: float = 0.0
    isomer_weight: float = 1.0
    zero_force_weight: float = 10.0
    zero_force_subset: int = 4
    outlier_weight: float = 1.0
    ensemble: int = 1
    seed: int = 0
    device: str = "auto"
    table_spacing: float | None = 0.01
    threads: int | None = 1
    workers: int = 1

    def __post_init__(self) -> None:
        self.architecture()  # validates hidden/blocks/rbf/cutoff
        positive = (
            "epochs",
            "batch_size",
            "ensemble",
            "patience",
            "lr_patience",
            "workers",
            "kd_force_subset",
        )
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "vkd_sigma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.kd_lambda <= 1.0:
            raise ValueError(f"kd_lambda must lie in [0, 1], got {self.kd_lambda}")
        non_negative = (
            "vkd",
            "vkd_weight",
            "zero_force_weight",
            "outlier_weight",
            "weight_decay",
            "force_weight",
            "isomer_weight",
        )
        for name in (*non_negative, "kd_atom_weight", "kd_force_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.table_spacing is not None and not 0 < self.table_spacing <= 0.05:
            raise ValueError(
                f"table_spacing must be in (0, 0.05] Å or None, got {self.table_spacing}"
            )

    def architecture(self) -> SchNetArchitecture:
        """The network size part of the config."""
        return SchNetArchitecture(
            self.hidden,
            self.blocks,
            self.rbf,
            float(self.cutoff),
            float(self.gamma),
            float(self.repulsion_radius),
            float(self.repulsion_strength),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready hyper-parameters for the model card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchNetConfig:
        """Rebuild from a card's hyper-parameters (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown SchNet hyper-parameter(s): {', '.join(unknown)}")
        return cls(**data)


# What the shipped recipe changes from the SchNetConfig defaults (see shipped_config).
SHIPPED_RECIPE: dict[str, Any] = {
    "repulsion_radius": 2.2,
    "repulsion_strength": 100.0,
    "epochs": 120,
    "ensemble": 4,
    "kd_lambda": 0.5,
    "kd_atom_weight": 50.0,
    "kd_force_weight": 50.0,
    "kd_force_subset": 8,
    "vkd": 1536,
    "vkd_sigma": 0.1,
    "zero_force_weight": 10.0,
    "workers": 2,
}


def shipped_config(**changes: Any) -> SchNetConfig:
    """The recipe of the shipped SchNet: KRR-teacher distillation of total and per-atom
    energies and of forces at rattled geometries, plus vicinal distillation.

    An ensemble of four networks (seeds 0–3: their own initial weights and batch orders) trained
    on the ``train`` split with early stopping on ``val``, each data-parallel over two CPU
    processes: ``train_schnet(train, val, shipped_config(), teacher=krr)`` or
    ``schnet_fit.fit_schnet(db, out, shipped_config(), krr)``; 120 epochs per network (one
    network of 300 epochs reached val 0.306 eV, ones of 120 epochs 0.34: four of them cost what
    480 epochs of one cost and give a spread), ~8 s/epoch on the shared 2-core machine (the
    force term adds a double backward on 8 vicinal rows per batch). The per-atom term
    (``kd_atom_weight`` 50) cut the val+calib MAE from 0.427 to 0.365 eV; the force term
    (``kd_force_weight`` 50: the KRR's exact forces on the rattled rows) to 0.338 (weight 10:
    0.358), and the mean |F| at the test minima from 0.22 to 0.17 eV/Å. The fixed repulsion
    prior 100 eV/Å³·(2.2 Å − d)³ (zero above 2.2 Å, below every DFTB1 distance, min 2.50 Å) keeps
    300-600 K MD and BFGS well behaved with zero_force_weight=10; without it that weight let
    atoms collapse below 1.5 Å.
    A non-CPU ``device`` without ``workers`` trains in one process (``workers=1``).
    """
    if changes.get("device", "auto") not in ("auto", "cpu") and "workers" not in changes:
        changes["workers"] = 1
    return SchNetConfig(**{**SHIPPED_RECIPE, **changes})


# What the force-trained recipe changes from the SchNetConfig defaults (see force_config).
FORCE_RECIPE: dict[str, Any] = {
    "hidden": 64,
    "blocks": 3,
    "rbf": 32,
    "cutoff": 5.0,
    "repulsion_radius": 1.9,
    "repulsion_strength": 100.0,
    "epochs": 40,
    "lr_patience": 3,
    "patience": 8,
    "force_weight": 10.0,
    "isomer_weight": 10.0,
    "zero_force_weight": 0.0,
    "ensemble": 4,
    "table_spacing": None,
    "workers": 2,
}


def force_config(**changes: Any) -> SchNetConfig:
    """The recipe that learns the surface: energies and reference forces of the corpus
    (``au20-workflow sample``) and the isomers, no teacher.

    Four networks of 64 features, 3 blocks, 32 Gaussians and a 5 Å cutoff (a force step on
    a batch of 32 costs a fifth of the 128/4/64/6 Å network's), each data-parallel over two
    CPU processes. ``force_weight`` 10 weighs the mean |ΔF|² per atom (eV²/Å²) against the
    energy error in units of the per-atom std (0.137 eV on the seed split): an energy
    error of 0.05 eV costs what a force error of 0.05 eV/Å per component costs. The 529
    training isomers weigh ten times a frame (``isomer_weight``): they are 1 % of the rows
    and decide the isomer ordering. The repulsion prior sits below 1.9 Å, under the
    corpus's shortest pair (2.0 Å, its rattles' floor). Exact filters (``table_spacing``
    None): the force term needs the exact forward anyway, and one forward serves both terms.
    """
    return SchNetConfig(**{**FORCE_RECIPE, **changes})
