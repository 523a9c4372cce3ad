"""SchNet training on the synthetic EMT database: learning, zero-force term, seeds, CLI."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ase_au20.cli import main
from ase_au20.database import load_rows
from ase_au20.models.card import read_card
from ase_au20.models.schnet.config import SchNetConfig, shipped_config
from ase_au20.models.schnet.network import SchNet, SchNetModel
from ase_au20.models.schnet.training import train_schnet, training_device

TINY = {
    "hidden": 16,
    "blocks": 2,
    "rbf": 16,
    "cutoff": 5.0,
    "batch_size": 8,
    "zero_force_weight": 0.0,
}


def tiny_config(**changes: object) -> SchNetConfig:
    """A network small enough to train for a few epochs in about a second."""
    return SchNetConfig(**{**TINY, "epochs": 3, "lr": 5e-3, "device": "cpu", **changes})


@pytest.fixture(scope="module")
def splits(synthetic_db: Path):
    return load_rows(synthetic_db, "train"), load_rows(synthetic_db, "val")


def mae(model: SchNetModel, rows) -> float:
    return float(np.abs(model.predict(rows.atoms)["energy"] - rows.energies).mean())


def test_three_epochs_lower_the_error(splits) -> None:
    train, val = splits
    model = train_schnet(train, val, tiny_config(), progress=False)
    torch.manual_seed(0)  # the same initial weights train_schnet starts from
    untrained = SchNetModel([SchNet(tiny_config().architecture())], model.atom_mean, model.atom_std)
    assert mae(model, train) < mae(untrained, train)
    history = model.card["training"]["members"][0]
    assert history["epochs_run"] == 3 and history["s_per_epoch"] > 0
    assert history["train_mae_history"][-1] < history["train_mae_history"][0]
    assert history["val_mae_history"][-1] < history["val_mae_history"][0]


def test_zero_force_term_reduces_forces_at_training_geometries(splits) -> None:
    train, val = splits

    def mean_force(model: SchNetModel) -> float:
        return float(
            np.linalg.norm(model.predict(train.atoms, forces=True)["forces"], axis=-1).mean()
        )

    plain = train_schnet(train, val, tiny_config(epochs=4), progress=False)
    flat = train_schnet(train, val, tiny_config(epochs=4, zero_force_weight=1e5), progress=False)
    assert mean_force(flat) < 0.7 * mean_force(plain)


def test_same_seed_same_weights_other_seed_other_weights(splits) -> None:
    train, val = splits
    a, b = (train_schnet(train, val, tiny_config(epochs=2), progress=False) for _ in range(2))
    c = train_schnet(train, val, tiny_config(epochs=2, seed=1), progress=False)
    state_a, state_b = a.networks[0].state_dict(), b.networks[0].state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    state_c = c.networks[0].state_dict()
    assert not torch.equal(state_a["embedding"], state_c["embedding"])


def test_distillation_with_a_teacher_and_ensemble(splits, tiny_krr) -> None:
    train, val = splits
    config = tiny_config(epochs=2, kd_lambda=0.5, vkd=16, ensemble=2, outlier_weight=0.5)
    model = train_schnet(train, val, config, teacher=tiny_krr.model, progress=False)
    assert len(model) == 2 and model.card["training"]["n_vicinal"] == 16
    assert [m["seed"] for m in model.card["training"]["members"]] == [0, 1]
    teacher = model.card["training"]["teacher"]
    assert teacher["type"] == "KRRModel" and teacher["files"] == tiny_krr.model.card["files"]
    out = model.predict(val.atoms)
    assert np.all(out["energy_std"] > 0)


def test_per_atom_distillation_pulls_atom_energies_towards_the_teacher(splits, tiny_krr):
    train, val = splits
    local = tiny_krr.model.predict(train.atoms)["energies"]

    def atom_gap(model: SchNetModel) -> float:
        return float(np.abs(model.predict(train.atoms)["energies"] - local).mean())

    config = tiny_config(epochs=6, kd_lambda=0.5, vkd=32)
    plain = train_schnet(train, val, config, teacher=tiny_krr.model, progress=False)
    config = replace(config, kd_atom_weight=1000.0)
    atomwise = train_schnet(train, val, config, teacher=tiny_krr.model, progress=False)
    assert atom_gap(atomwise) < 0.8 * atom_gap(plain)


def test_force_distillation_pulls_forces_towards_the_teacher(splits, tiny_krr) -> None:
    from ase_au20.models.schnet.training import _vicinal_pool

    train, val = splits
    config = tiny_config(epochs=12, kd_lambda=0.5, vkd=32, kd_force_subset=8)
    positions, _, _, teacher_forces = _vicinal_pool(
        train, replace(config, kd_force_weight=1.0), tiny_krr.model
    )
    expected = tiny_krr.model.predict(list(positions_to_atoms(positions)), forces=True)
    np.testing.assert_allclose(teacher_forces, expected["forces"], atol=1e-12)

    def force_gap(model: SchNetModel) -> float:
        predicted = model.predict(list(positions), forces=True)["forces"]
        return float(np.linalg.norm(predicted - teacher_forces, axis=-1).mean())

    plain = train_schnet(train, val, config, teacher=tiny_krr.model, progress=False)
    config = replace(config, kd_force_weight=100.0)
    matched = train_schnet(train, val, config, teacher=tiny_krr.model, progress=False)
    assert force_gap(matched) < 0.8 * force_gap(plain)


def positions_to_atoms(positions: np.ndarray):
    from ase import Atoms

    return [Atoms(f"Au{len(p)}", positions=p) for p in positions]


def test_bad_training_options_are_value_errors(splits) -> None:
    train, val = splits
    with pytest.raises(ValueError, match="needs a teacher"):
        train_schnet(train, val, tiny_config(vkd=4), progress=False)
    with pytest.raises(ValueError, match="needs a teacher"):
        train_schnet(train, val, shipped_config(**TINY), progress=False)  # recipe distils
    with pytest.raises(ValueError, match="kd_lambda"):
        SchNetConfig(kd_lambda=1.5)
    with pytest.raises(ValueError, match="kd_atom_weight > 0 needs a teacher"):
        train_schnet(train, val, tiny_config(kd_atom_weight=1.0), progress=False)
    with pytest.raises(ValueError, match="kd_atom_weight must not be negative"):
        SchNetConfig(kd_atom_weight=-1.0)
    with pytest.raises(ValueError, match="kd_force_weight must not be negative"):
        SchNetConfig(kd_force_weight=-1.0)
    with pytest.raises(ValueError, match="kd_force_subset must be at least 1"):
        SchNetConfig(kd_force_subset=0)
    with pytest.raises(ValueError, match="needs vicinal rows"):
        train_schnet(train, val, tiny_config(kd_force_weight=1.0), progress=False)
    with pytest.raises(ValueError, match="unknown SchNet hyper-parameter"):
        SchNetConfig.from_dict({"hidden": 8, "colour": "red"})
    with pytest.raises(ValueError, match="one cluster size"):
        mixed = train.subset(np.arange(4))
        mixed.atoms[0] = mixed.atoms[0][:13]
        train_schnet(mixed, val, tiny_config(), progress=False)


def test_cli_trains_calibrates_and_saves_a_loadable_model(synthetic_db: Path, tmp_path: Path):
    out = tmp_path / "schnet"
    args = ["train", "schnet", "--db", str(synthetic_db), "--out", str(out)]
    args += ["--epochs", "2", "--hidden", "16", "--blocks", "2", "--rbf", "16"]
    args += ["--cutoff", "5", "--batch-size", "8", "--ensemble", "2", "--device", "cpu"]
    args += ["--zero-force-weight", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "test" in result.output and "mean |F|" in result.output
    card = read_card(out)
    assert card["model_type"] == "schnet" and card["architecture"]["ensemble_size"] == 2
    assert card["conformal"]["normalised"] is True
    assert card["metrics"]["test"]["n"] == len(load_rows(synthetic_db, "test"))
    assert SchNetConfig.from_dict(card["hyperparameters"]).hidden == 16
    model = SchNetModel.load(out)
    assert model.predict(load_rows(synthetic_db, "test").atoms)["energy"].shape == (
        card["metrics"]["test"]["n"],
    )
    assert json.loads((out / "card.json").read_text())["files"].keys() == {
        "member_0.pt",
        "member_1.pt",
        "frozen.npz",
        "domain.npz",
    }


def test_cli_shipped_recipe_with_overrides(synthetic_db: Path, tiny_krr, tmp_path: Path) -> None:
    """--recipe shipped starts from shipped_config(); options on the command line win."""
    out = tmp_path / "schnet"
    args = ["train", "schnet", "--db", str(synthetic_db), "--out", str(out), "--quiet"]
    args += ["--recipe", "shipped", "--teacher", str(tiny_krr.directory)]
    args += ["--epochs", "1", "--hidden", "8", "--blocks", "1", "--rbf", "8", "--cutoff", "5"]
    args += ["--vkd", "8", "--batch-size", "8", "--workers", "1", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    used = SchNetConfig.from_dict(read_card(out)["hyperparameters"])
    expected = shipped_config(
        epochs=1, hidden=8, blocks=1, rbf=8, cutoff=5.0, vkd=8, batch_size=8, workers=1
    )
    assert used == replace(expected, device="cpu")
    assert used.repulsion_radius == 2.2 and used.kd_force_weight == 50.0


def test_every_shipped_recipe_setting_is_a_cli_option() -> None:
    """--help lists the shipped recipe as options: each of them must exist."""
    from ase_au20.cli.train.schnet import schnet
    from ase_au20.models.schnet.config import SHIPPED_RECIPE

    options = {p.name for p in schnet.params}
    assert set(SHIPPED_RECIPE) <= options


def test_cli_rejects_distillation_without_teacher(synthetic_db: Path, tmp_path: Path) -> None:
    args = ["train", "schnet", "--db", str(synthetic_db), "--out", str(tmp_path / "x")]
    result = CliRunner().invoke(main, [*args, "--kd-lambda", "0.5", "--quiet"])
    assert result.exit_code != 0 and "--teacher" in result.output
    result = CliRunner().invoke(main, [*args, "--recipe", "shipped", "--quiet"])
    assert result.exit_code != 0 and "--recipe shipped) need --teacher" in result.output


def test_vicinal_rattles_stay_outside_the_repulsion_radius(splits) -> None:
    from scipy.spatial.distance import pdist

    from ase_au20.models.schnet.training import _vicinal_pool

    class Teacher:
        def predict(self, structures, forces=False):
            return {"energy": np.zeros(len(structures))}

    train, _ = splits
    closest = min(pdist(a.positions).min() for a in train.atoms)
    radius = closest - 0.05
    wide = tiny_config(vkd=64, vkd_sigma=0.1)
    free, _, _, _ = _vicinal_pool(train, wide, Teacher())
    assert min(pdist(p).min() for p in free) < radius  # without the prior some come closer
    guarded = tiny_config(vkd=64, vkd_sigma=0.1, repulsion_radius=radius, repulsion_strength=1.0)
    kept, labels, local, forces = _vicinal_pool(train, guarded, Teacher())
    assert len(kept) == 64 and labels.shape == (64,)
    assert local.shape == (64, len(train.atoms[0])) and np.isnan(local).all()  # no energies
    assert forces.shape == (64, len(train.atoms[0]), 3) and np.isnan(forces).all()  # not asked
    assert min(pdist(p).min() for p in kept) >= radius
    with pytest.raises(ValueError, match="smaller vkd_sigma"):
        _vicinal_pool(train, tiny_config(vkd=4, vkd_sigma=1.0, repulsion_radius=4.0), Teacher())


needs_two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")


@needs_two_cpus
def test_two_workers_train_the_same_network_as_one(splits) -> None:
    """Data parallelism only splits each batch: the summed gradient is the whole batch's."""
    train, val = splits
    batch = len(train) - 1  # the second batch holds one row: one worker's share is empty
    config = tiny_config(epochs=2, zero_force_weight=1.0, zero_force_subset=3, batch_size=batch)
    one = train_schnet(train, val, config, progress=False)
    two = train_schnet(train, val, replace(config, workers=2), progress=False)
    assert two.card["training"]["workers"] == 2
    state_one, state_two = one.networks[0].state_dict(), two.networks[0].state_dict()
    for key, value in state_one.items():
        assert torch.allclose(value, state_two[key], rtol=1e-4, atol=1e-6), key
    assert one.card["training"]["device"] == two.card["training"]["device"] == "cpu"
    histories = [m.card["training"]["members"][0] for m in (one, two)]
    for key in ("train_mae_history", "val_mae_history"):
        assert np.allclose(histories[0][key], histories[1][key], rtol=1e-4)
    untrained = SchNet(config.architecture())
    assert not torch.allclose(state_one["embedding"], untrained.embedding)


def test_bad_worker_counts_are_value_errors(splits, monkeypatch) -> None:
    train, val = splits
    with pytest.raises(ValueError, match="workers must be at least 1"):
        SchNetConfig(workers=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match="CPU data parallelism"):
        train_schnet(train, val, tiny_config(workers=2, device="cuda"), progress=False)
    with pytest.raises(ValueError, match="exceeds the"):
        train_schnet(train, val, tiny_config(workers=(os.cpu_count() or 1) + 1), progress=False)


def test_auto_device_with_workers_trains_on_cpu_even_where_cuda_is(monkeypatch) -> None:
    """The shipped recipe (auto, 2 workers) reproduces on a GPU machine; one worker uses it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device(tiny_config(workers=2, device="auto")).type == "cpu"
    assert training_device(tiny_config(workers=1, device="auto")).type == "cuda"
    assert shipped_config().workers == 2 and shipped_config().device == "auto"
    assert shipped_config(device="cuda").workers == 1
    assert shipped_config(device="cuda", workers=2).workers == 2  # explicit: then an error
    with pytest.raises(ValueError, match="CPU data parallelism"):
        training_device(shipped_config(device="cuda", workers=2))
