"""The SchNet model for CPU inference from its frozen NumPy arrays, without torch.

``SchNetModel.save`` writes, beside the members' state dicts, the arrays of the NumPy path
(filter tables, stacked weights) as ``frozen.npz``, listed and hashed in the card. Loading
a model for the CPU in float32 builds ``FrozenSchNetModel`` from that file alone: the same
predictions as ``SchNetModel`` on the CPU (the same arrays run the same code), and no torch
import, which costs a screening worker about 200 MB and each process a second or two.
Everything else (CUDA, float64, training, models without a filter table) loads the torch
``SchNetModel``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ase_au20.models.card import CARD_NAME, open_model_card
from ase_au20.models.domain import DOMAIN_NAME, Domain, with_domain
from ase_au20.models.schnet.batching import Structure, predict_in_batches
from ase_au20.models.schnet.config import SchNetCard, read_schnet_card
from ase_au20.models.schnet.numpy_path import CPU_CHUNK, FROZEN_NAME, NumpySchNet


def cuda_may_be_present() -> bool:
    """Whether a CUDA device could exist here, judged without importing torch: CUDA needs
    the NVIDIA kernel driver, and ``CUDA_VISIBLE_DEVICES=""`` hides every device."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def runs_frozen(device: Any = "auto", dtype: Any = "float32") -> bool:
    """Whether a model loaded for ``device`` in ``dtype`` runs on the frozen arrays: the
    CPU (``auto`` without a GPU) in float32."""
    if str(dtype) not in ("float32", "torch.float32"):
        return False
    if str(device) == "cpu":
        return True
    if str(device) != "auto":
        return False
    if not cuda_may_be_present():
        return True
    import torch

    return not torch.cuda.is_available()


class FrozenSchNetModel:
    """A SchNet (ensemble) model on its frozen NumPy arrays: CPU inference, no torch."""

    domain: Domain | None = None  # set by load

    def __init__(
        self, network: NumpySchNet, card: dict[str, Any], directory: Path | None = None
    ) -> None:
        self.numpy_path = network
        self.card = card
        self.directory = directory
        source = CARD_NAME if directory is None else directory / CARD_NAME
        settings = _check_against_card(network, card, source)
        self.atom_mean, self.atom_std = settings.atom_mean, settings.atom_std
        self.device = "cpu"

    def __len__(self) -> int:
        return self.numpy_path.members

    @property
    def has_spread(self) -> bool:
        """Only an ensemble (several networks) has a spread."""
        return self.numpy_path.members > 1

    @property
    def ensemble_size(self) -> int:
        """How many networks ``predict`` averages."""
        return self.numpy_path.members

    @property
    def cutoff(self) -> float:
        """Interaction cutoff (Å)."""
        return self.numpy_path.cutoff

    def predict(
        self, structures: Sequence[Structure], forces: bool = False, batch_size: int | None = None
    ) -> dict[str, np.ndarray]:
        """Energies (eV), per-atom energies, optional forces (eV/Å) and ensemble spread, as
        ``SchNetModel.predict`` gives them on the CPU."""
        return predict_in_batches(
            structures,
            self._evaluate_all,
            self.numpy_path.members,
            (self.atom_mean, self.atom_std),
            forces,
            batch_size or CPU_CHUNK,
        )

    def _evaluate_all(
        self, batches: list[np.ndarray], forces: bool
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        return [self.numpy_path(batch, forces) for batch in batches]

    def to(self, device: Any = "auto", dtype: Any = "float32") -> Any:
        """This model where it runs frozen, else the torch ``SchNetModel`` of its directory."""
        if runs_frozen(device, dtype):
            return self
        if self.directory is None:
            raise ValueError("a frozen SchNet model without its directory cannot leave the CPU")
        from ase_au20.models.schnet.network import SchNetModel

        return SchNetModel.load(self.directory, device=device, dtype=dtype)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Copy the model's files (card, weights, frozen arrays, domain) into ``directory``."""
        if self.directory is None:
            raise ValueError("a frozen SchNet model is saved from the directory it was loaded from")
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        if target.resolve() != self.directory.resolve():
            for name in [*self.card.get("files", {}), CARD_NAME, DOMAIN_NAME]:
                if (self.directory / name).is_file():
                    shutil.copy2(self.directory / name, target / name)
        return target

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], device: Any = "auto", dtype: Any = "float32"
    ) -> Any:
        """The SchNet model of ``directory`` for ``device`` and ``dtype``: this frozen model
        on the CPU in float32 when the card lists ``frozen.npz``, else the torch
        ``SchNetModel`` (which checks the same card)."""
        directory = Path(directory)
        if runs_frozen(device, dtype):
            card = open_model_card(directory, "schnet")
            if FROZEN_NAME in card.get("files", {}):
                network = NumpySchNet.load(directory / FROZEN_NAME)
                return with_domain(cls(network, card, directory), directory)
        from ase_au20.models.schnet.network import SchNetModel

        return SchNetModel.load(directory, device=device, dtype=dtype)


def _check_against_card(network: NumpySchNet, card: dict[str, Any], source: Any) -> SchNetCard:
    """The card's checked settings; ValueError unless the frozen arrays have the card's
    architecture and table."""
    settings = read_schnet_card(card, source)
    arch = settings.architecture
    expected = {
        "members": settings.members,
        "hidden": arch.hidden,
        "blocks": arch.blocks,
        "cutoff": arch.cutoff,
        "spacing": settings.table_spacing,
    }
    found = {key: getattr(network, key) for key in expected}
    if found != expected:
        raise ValueError(f"{source}: {FROZEN_NAME} holds {found}, the card says {expected}")
    return settings
