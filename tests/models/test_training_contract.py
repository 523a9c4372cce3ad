"""The training contract: a model type registered with a config dataclass and a fit trains
through a generated `train` verb, ends with the shared finishing step and loads back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ase_au20.cli.train.generated import training_command
from ase_au20.database import load_rows
from ase_au20.models import load_model
from ase_au20.models.card import open_model_card, write_card
from ase_au20.models.finishing import CardParts, finish
from ase_au20.models.registry import MODELS, ModelEntry
from ase_au20.settings import setting


@dataclass(frozen=True)
class ShiftConfig:
    """The toy model's one setting."""

    shift: float = setting(0.0, "Added to the mean energy per atom (eV).")


class MeanModel:
    """Every atom has the training rows' mean energy per atom: the smallest model type."""

    has_spread = False

    def __init__(self, per_atom: float, card: dict[str, Any] | None = None) -> None:
        self.per_atom, self.card, self.domain = per_atom, card or {}, None

    def predict(self, structures, forces=False) -> dict[str, np.ndarray]:
        n = np.array([len(a) for a in structures])
        out = {"energy": n * self.per_atom, "energies": np.full((len(n), n.max()), self.per_atom)}
        if forces:
            out["forces"] = np.zeros((len(n), n.max(), 3))
        return out

    def save(self, directory: str | os.PathLike[str]) -> Path:
        self.card.update(model_type="mean", files={})
        self.card["architecture"] = {"per_atom": self.per_atom}
        write_card(directory, self.card)
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> MeanModel:
        card = open_model_card(directory, "mean")
        return cls(float(card["architecture"]["per_atom"]), card)


def fit_mean(db: str, out: str | os.PathLike[str], config: ShiftConfig, progress: bool = True):
    """Train, then the shared finishing step."""
    train = load_rows(db, ("train", "val"))
    per_atom = float(np.mean(train.energies / 20)) + config.shift
    model = MeanModel(per_atom)
    parts = CardParts("mean", {}, {"shift": config.shift}, {}, train.ids)
    finish(model, db, out, parts, train.atoms)
    return model


@pytest.fixture
def mean_type(monkeypatch: pytest.MonkeyPatch) -> ModelEntry:
    entry = ModelEntry(
        "mean",
        f"{__name__}:MeanModel",
        "ase_au20.calculators.krr:KRRAu20",
        "mean energy per atom",
        config=f"{__name__}:ShiftConfig",
        fit=f"{__name__}:fit_mean",
    )
    monkeypatch.setitem(MODELS, "mean", entry)
    return entry


def test_a_registered_type_trains_through_its_generated_verb(
    mean_type: ModelEntry, synthetic_db: Path, tmp_path: Path
) -> None:
    command = training_command(mean_type)
    assert "--shift" in [o for p in command.params for o in p.opts]
    args = ["--db", str(synthetic_db), "--out", str(tmp_path / "mean"), "--shift", "0.25"]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    assert "test (n=" in result.output
    model = load_model(tmp_path / "mean")
    train = load_rows(synthetic_db, ("train", "val"))
    assert model.per_atom == pytest.approx(np.mean(train.energies / 20) + 0.25)
    card = model.card
    assert card["hyperparameters"] == {"shift": 0.25} and card["conformal"]["n_calib"] > 0
    assert "domain.npz" in card["files"]  # the shared step fitted the domain
    bad = CliRunner().invoke(command, [*args[:4], "--shift", "x", "--overwrite"])
    assert bad.exit_code == 2 and "is not a valid" in bad.output
