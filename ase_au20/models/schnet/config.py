"""SchNet sizes and training hyper-parameters as plain dataclasses (no torch import).

Kept apart from the network so the CLI can show defaults and cards can be checked
without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ase_au20.settings import setting


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

    hidden: int = setting(128, "Features per atom in every interaction block.")
    blocks: int = setting(4, "Interaction blocks (message-passing steps).")
    rbf: int = setting(64, "Gaussian radial basis functions between 0 and the cutoff.")
    cutoff: float = setting(6.0, "Interaction cutoff (Å): atoms farther apart do not interact.")
    gamma: float = setting(10.0, "Gaussian RBF exponent (Å⁻²): exp(−gamma (d − mu)²).")
    repulsion_radius: float = setting(
        0.0, "Fixed pair prior k·(r − d)³ below this distance (Å; 0: none)."
    )
    repulsion_strength: float = setting(0.0, "k of the repulsion prior (eV/Å³).")
    epochs: int = setting(
        150, "Most passes over the training rows (early stopping may end sooner)."
    )
    batch_size: int = setting(32, "Structures per optimiser step.")
    lr: float = setting(1e-3, "AdamW learning rate.")
    weight_decay: float = setting(1e-4, "AdamW weight decay.")
    lr_factor: float = setting(0.5, "Learning-rate factor when the validation score stalls.")
    lr_patience: int = setting(10, "Epochs without a better validation score before it drops.")
    min_lr: float = setting(1e-5, "Lowest learning rate.")
    patience: int = setting(
        40, "Early stopping: epochs without a better validation score (energy + force MAE)."
    )
    kd_lambda: float = setting(
        0.0, "Weight of the teacher's energies vs the reference labels on training rows (0..1)."
    )
    kd_atom_weight: float = setting(
        0.0, "Weight of the teacher's per-atom energies (mean squared error per atom)."
    )
    kd_force_weight: float = setting(
        0.0, "Weight of the teacher's forces on the vicinal rows (mean |F − F_teacher|², eV²/Å²)."
    )
    kd_force_subset: int = setting(
        4, "Vicinal rows per batch that get the teacher-force term (each a double backward)."
    )
    vkd: int = setting(0, "Rattled training geometries labelled by the teacher.")
    vkd_sigma: float = setting(0.1, "Gaussian rattle (Å) of the vicinal geometries.")
    vkd_weight: float = setting(1.0, "Loss weight of a vicinal row relative to a labelled one.")
    force_weight: float = setting(
        0.0,
        "Weight of the reference forces of the corpus (mean |F − F_ref|² per atom, eV²/Å²); "
        "needs corpus frames (au20-workflow sample).",
    )
    isomer_weight: float = setting(1.0, "Loss weight of an isomer relative to a corpus frame.")
    zero_force_weight: float = setting(
        10.0, "Weight of mean |F|² at the relaxed training isomers (eV²/Å²)."
    )
    zero_force_subset: int = setting(
        4, "Isomers per batch that get the zero-force term (each a double backward)."
    )
    outlier_weight: float = setting(
        1.0, "Loss weight of isomers flagged is_outlier (1: no down-weighting)."
    )
    ensemble: int = setting(
        1, "Networks trained with seeds seed, seed+1, …; more than one gives energy_std."
    )
    seed: int = setting(
        0, "Seed of weights, data order and rattles: the same seed gives the same model."
    )
    device: str = setting(
        "auto", "torch device of the model: auto (CUDA when available), cpu, cuda, cuda:1, …"
    )
    table_spacing: float | None = setting(
        0.01,
        "Filter-table spacing (Å) of energy-only training steps and of the saved CPU path; "
        "force training runs the exact filters; none: exact filters and no CPU path.",
    )
    threads: int | None = setting(
        1, "Torch CPU threads during training (per process with workers > 1)."
    )
    workers: int = setting(
        1, "CPU processes training each network data-parallel (e.g. 2 on a 2-core machine)."
    )
    start_from: str = setting(
        "",
        "A trained SchNet model folder whose networks start the training instead of random "
        "weights (fine-tuning after a new active round); its architecture and energy scaling "
        "are kept ('': random weights).",
    )

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
    "epochs": 45,
    "lr_patience": 3,
    "patience": 8,
    "force_weight": 10.0,
    "isomer_weight": 10.0,
    "zero_force_weight": 0.0,
    "ensemble": 3,
    "workers": 2,
}


def force_config(**changes: Any) -> SchNetConfig:
    """The recipe that learns the surface: energies and reference forces of the corpus
    (``au20-workflow sample``) and the isomers, no teacher.

    Three networks of 64 features, 3 blocks, 32 Gaussians and a 5 Å cutoff (a force step on
    a batch of 32 costs a fifth of the 128/4/64/6 Å network's), 45 epochs each over the
    34,000 training frames, data-parallel over two CPU processes: 30-40 s an epoch on 2
    cores, about 80 min for the ensemble (45 epochs against 30: test isomers 0.368 against
    0.422 eV). ``force_weight`` 10 weighs the mean |ΔF|² per
    atom (eV²/Å²) against the energy error in units of the per-atom std (0.137 eV on the
    seed split): a frame 0.05 eV off costs 0.13, one whose every force component is 0.05 eV/Å
    off 0.075, so neither term drowns the other. The 529
    training isomers weigh ten times a frame (``isomer_weight``): they are 1 % of the rows
    and decide the isomer ordering. The repulsion prior sits below 1.9 Å, under the
    corpus's shortest pair (2.0 Å, its rattles' floor). Training with forces runs the exact
    filters (the force term needs the exact forward, and one forward serves both terms);
    the 0.01 Å table serves the saved CPU path.
    """
    return SchNetConfig(**{**FORCE_RECIPE, **changes})


# What a fine-tuning round changes from the force recipe (see finetune_config).
FINETUNE_RECIPE: dict[str, Any] = {"epochs": 15, "lr": 3e-4, "lr_patience": 2, "patience": 5}


def finetune_config(**changes: Any) -> SchNetConfig:
    """The force recipe continued from a trained ensemble (``start_from``, required) on a
    corpus that grew by an active round: 15 more epochs at a third of the learning rate, so
    the networks learn the new frames without losing what they knew."""
    config = SchNetConfig(**{**FORCE_RECIPE, **FINETUNE_RECIPE, **changes})
    if not config.start_from:
        raise ValueError(
            "the finetune recipe continues a trained model: give start_from (--start-from)"
        )
    return config
