"""`python -m ase_au20.models.reproduce`: both model folders, deterministic, loadable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ase_au20.models import load_model
from ase_au20.models.reproduce import main, reproduce
from ase_au20.models.schnet.training import SchNetConfig
from ase_au20.structures import au20_ground_state

TINY_SCHNET = SchNetConfig(
    hidden=8,
    blocks=1,
    rbf=8,
    cutoff=5.0,
    epochs=2,
    batch_size=16,
    kd_lambda=0.5,
    vkd=8,
    ensemble=2,
    device="cpu",
    threads=1,
)


def test_reproduce_is_deterministic_and_teaches_schnet(
    synthetic_db: Path, tiny_search, tiny_delta_search, tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("tblite")
    monkeypatch.setenv("AU20_CACHE", str(tmp_path / "cache"))
    runs = [
        reproduce(
            synthetic_db,
            tmp_path / name,
            progress=False,
            search=tiny_search,
            config=TINY_SCHNET,
            delta_search=tiny_delta_search,
        )
        for name in ("a", "b")
    ]
    assert set(runs[0]) == {"krr", "xtb-delta", "schnet", "committee"}
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "krr/weights.npz").read_bytes() == (b / "krr/weights.npz").read_bytes()
    atoms = au20_ground_state()
    schnet = [load_model(d / "schnet").predict([atoms])["energy"] for d in (a, b)]
    assert np.array_equal(schnet[0], schnet[1])  # seeded training
    card = load_model(a / "schnet").card
    assert card["hyperparameters"]["kd_lambda"] == 0.5
    teacher = card["training"]["teacher"]
    assert teacher["type"] == "KRRModel"
    assert teacher["files"] == load_model(a / "krr").card["files"]  # taught by this very KRR
    delta = [load_model(d / "xtb-delta").card for d in (a, b)]
    assert delta[0]["files"] == delta[1]["files"]  # the Δ fit is deterministic too
    assert card["conformal"]["normalised"] is True  # two members: spread-normalised
    committee = [load_model(d / "committee") for d in (a, b)]
    assert committee[0].card["hyperparameters"] == committee[1].card["hyperparameters"]
    members = committee[0].card["architecture"]["members"]
    assert [m["model"] for m in members] == ["../krr", "../schnet"]  # beside it, not shipped
    assert members[0]["sha256"] == load_model(a / "krr").card["sha256"]


def _fake_delta(monkeypatch) -> None:
    """Skip the xtb-delta step of ``reproduce``."""
    from types import SimpleNamespace

    from ase_au20.models.xtb_delta import training

    result = SimpleNamespace(model=None, metrics={"cv": {"mae": 0.2}, "test": {"mae": 0.2}})
    monkeypatch.setattr(training, "train_xtb_delta", lambda *args, **kwargs: result)


def _fake_committee(monkeypatch) -> None:
    """Skip the committee step of ``reproduce`` (its members are fakes here)."""
    from types import SimpleNamespace

    from ase_au20.models.committee import training

    def fake(db, out, members):
        return SimpleNamespace(weights=np.array([0.5, 0.5]), card={"metrics": {}})

    monkeypatch.setattr(training, "fit_committee", fake)


def test_cli_refuses_missing_database(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--db", str(tmp_path / "none.db"), "--out", str(tmp_path)])


def test_reproduce_trains_the_shipped_schnet_recipe(monkeypatch, tmp_path: Path) -> None:
    """`make reproduce` trains exactly the recipe recorded in the shipped SchNet card: the
    reference energies and forces of the corpus, without a teacher."""
    from types import SimpleNamespace

    from ase_au20.models import reproduce as reproduce_module
    from ase_au20.models.schnet import fit as schnet_fit
    from ase_au20.models.schnet.config import SchNetConfig, finetune_config, force_config
    from ase_au20.paths import PRETRAINED_DIR

    teacher = object()
    krr = SimpleNamespace(model=teacher, metrics={"cv": {"mae": 0.3}, "test": {"mae": 0.3}})
    monkeypatch.setattr(reproduce_module, "train_krr", lambda *args, **kwargs: krr)
    _fake_delta(monkeypatch)
    seen = []

    def fake_fit(db, out, config, teacher=None, progress=True):
        seen.append((config, teacher))
        return SimpleNamespace(card={"metrics": {"test": {"mae": 0.4}}})

    monkeypatch.setattr(schnet_fit, "fit_schnet", fake_fit)
    _fake_committee(monkeypatch)
    reproduce(tmp_path / "db", tmp_path / "out", progress=False)
    first = str(tmp_path / "out" / "schnet")
    # the force recipe, then its continuation from the first round; neither distils
    assert seen == [(force_config(), None), (finetune_config(start_from=first), None)]
    card = json.loads((Path(PRETRAINED_DIR) / "schnet" / "card.json").read_text())
    shipped = SchNetConfig.from_dict(card["hyperparameters"])
    assert shipped.start_from and card["training"]["start_from"]["files"]  # what it continued
    assert shipped == finetune_config(start_from=shipped.start_from)
    assert card["training"]["n_corpus"] > 30000


def test_reproduce_trains_with_fewer_workers_on_fewer_cpus(monkeypatch, tmp_path, capsys):
    """A data-parallel recipe still reproduces on a machine with fewer CPUs, and says so."""
    from dataclasses import replace
    from types import SimpleNamespace

    from ase_au20.models import reproduce as reproduce_module
    from ase_au20.models.schnet import fit as schnet_fit

    krr = SimpleNamespace(model=object(), metrics={"cv": {"mae": 0.3}, "test": {"mae": 0.3}})
    monkeypatch.setattr(reproduce_module, "train_krr", lambda *args, **kwargs: krr)
    monkeypatch.setattr(reproduce_module.os, "cpu_count", lambda: 1)
    _fake_delta(monkeypatch)
    seen = {}

    def fake_fit(db, out, config, teacher=None, progress=True):
        seen["config"] = config
        return SimpleNamespace(card={"metrics": {"test": {"mae": 0.4}}})

    monkeypatch.setattr(schnet_fit, "fit_schnet", fake_fit)
    _fake_committee(monkeypatch)
    recipe = replace(TINY_SCHNET, workers=2)
    reproduce(tmp_path / "db", tmp_path / "out", progress=False, config=recipe)
    assert seen["config"] == replace(recipe, workers=1)
    assert "training with workers=1 instead of 2" in capsys.readouterr().out
