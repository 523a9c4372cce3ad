"""SchNet learning reference forces from the corpus: the force term, its gradients, the
finite-difference check of the trained model, and resuming from checkpoints."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_au20.compute.engine import open_engine
from ase_au20.database import connect, load_rows
from ase_au20.database.corpus import load_corpus
from ase_au20.models.schnet.config import SchNetConfig, finetune_config, force_config
from ase_au20.models.schnet.fit import fit_schnet
from ase_au20.models.schnet.network import SchNetModel
from ase_au20.models.schnet.training import train_schnet
from ase_au20.workflows.corpus.sample import sample_corpus
from ase_au20.workflows.corpus.settings import SampleSettings

TINY = {"hidden": 16, "blocks": 2, "rbf": 16, "cutoff": 5.0, "batch_size": 16, "lr": 5e-3}


def tiny(**changes: object) -> SchNetConfig:
    """A small network trained for a few epochs, without the zero-force term."""
    return SchNetConfig(
        **{**TINY, "epochs": 4, "zero_force_weight": 0.0, "device": "cpu", **changes}
    )


@pytest.fixture(scope="module")
def corpus_db(reference_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic isomers with rattled and 1500 K MD frames labelled by the reference."""
    path = tmp_path_factory.mktemp("force_corpus") / "corpus.db"
    shutil.copy(reference_db, path)
    settings = SampleSettings(
        families=("rattle", "md"), amplitudes=(0.05, 0.1), rattles=2, md_steps=20, md_every=4
    )
    with open_engine("none") as engine:
        sample_corpus(connect(path), settings, engine, progress=False)
    return path


def _force_mae(model: SchNetModel, path: Path) -> float:
    corpus = load_corpus(path, "val")
    structures = [corpus.atoms(i) for i in range(len(corpus))]
    forces = model.predict(structures, forces=True)["forces"]
    return float(np.abs(np.asarray(forces) - corpus.forces).mean())


def test_the_force_term_teaches_the_forces(corpus_db: Path) -> None:
    train, val = load_rows(corpus_db, "train"), load_rows(corpus_db, "val")
    corpus = (load_corpus(corpus_db, "train"), load_corpus(corpus_db, "val"))
    energy_only = train_schnet(train, val, tiny(), progress=False, corpus=corpus)
    with_forces = train_schnet(train, val, tiny(force_weight=10.0), progress=False, corpus=corpus)
    assert _force_mae(with_forces, corpus_db) < 0.8 * _force_mae(energy_only, corpus_db)
    member = with_forces.card["training"]["members"][0]
    assert np.isfinite(member["val_force_mae"]) and with_forces.card["training"]["n_corpus"] > 0
    history = member["val_force_mae_history"]
    assert history[-1] < history[0]


def test_force_training_needs_a_corpus(reference_db: Path) -> None:
    train, val = load_rows(reference_db, "train"), load_rows(reference_db, "val")
    with pytest.raises(ValueError, match="force_weight > 0 needs corpus frames"):
        train_schnet(train, val, tiny(force_weight=1.0), progress=False)


def test_a_force_trained_model_gives_the_gradient_of_its_energy(
    corpus_db: Path, tmp_path: Path
) -> None:
    config = force_config(**TINY, epochs=2, ensemble=2, workers=1, device="cpu")
    fit_schnet(corpus_db, tmp_path / "model", config, progress=False)
    model = SchNetModel.load(tmp_path / "model")
    # the calib isomers and each calib family of the corpus get quantiles of their own
    assert set(model.card["conformal"]["families"]) == {"isomer", "md", "rattle"}
    atoms = load_corpus(corpus_db, "test").atoms(0)
    forces = model.predict([atoms], forces=True)["forces"][0]
    step = 1e-4
    for atom, axis in ((0, 0), (7, 1), (19, 2)):
        energies = []
        for sign in (1, -1):
            moved = Atoms(atoms.numbers, positions=atoms.positions.copy())
            moved.positions[atom, axis] += sign * step
            energies.append(model.predict([moved])["energy"][0])
        numeric = -(energies[0] - energies[1]) / (2 * step)
        assert forces[atom, axis] == pytest.approx(numeric, abs=2e-3)


def test_a_stopped_training_goes_on_from_its_checkpoint(corpus_db: Path, tmp_path: Path) -> None:
    train, val = load_rows(corpus_db, "train"), load_rows(corpus_db, "val")
    corpus = (load_corpus(corpus_db, "train"), load_corpus(corpus_db, "val"))
    whole = train_schnet(train, val, tiny(force_weight=10.0), progress=False, corpus=corpus)
    folder = tmp_path / "ckpt"
    train_schnet(
        train,
        val,
        tiny(force_weight=10.0, epochs=2),
        progress=False,
        corpus=corpus,
        checkpoints=folder,
    )
    assert (folder / "member_0.ckpt").is_file()
    resumed = train_schnet(
        train, val, tiny(force_weight=10.0), progress=False, corpus=corpus, checkpoints=folder
    )
    assert resumed.card["training"]["members"][0]["epochs_run"] == 4
    for a, b in zip(whole.networks[0].parameters(), resumed.networks[0].parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_finetuning_starts_from_the_trained_networks(corpus_db: Path, tmp_path: Path) -> None:
    base_config = force_config(**TINY, epochs=3, ensemble=2, workers=1, device="cpu")
    base = fit_schnet(corpus_db, tmp_path / "base", base_config, progress=False)
    frames = load_corpus(corpus_db, "val")
    structures = [frames.atoms(i) for i in range(len(frames))]
    expected = base.predict(structures)["energy"]
    # a learning rate too small to move them: the networks come out as they went in
    still = finetune_config(
        **{**TINY, "lr": 1e-12},
        start_from=str(tmp_path / "base"),
        epochs=1,
        workers=1,
        ensemble=2,
        device="cpu",
    )
    continued = fit_schnet(corpus_db, tmp_path / "continued", still, progress=False)
    np.testing.assert_allclose(continued.predict(structures)["energy"], expected, atol=1e-4)
    assert continued.card["hyperparameters"]["start_from"] == str(tmp_path / "base")
    fresh = fit_schnet(corpus_db, tmp_path / "fresh", replace(still, start_from=""), progress=False)
    assert np.abs(fresh.predict(structures)["energy"] - expected).mean() > 0.1


def test_finetuning_refuses_another_architecture(corpus_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the finetune recipe continues a trained model"):
        finetune_config(**TINY)
    base_config = force_config(**TINY, epochs=1, workers=1, ensemble=1, device="cpu")
    fit_schnet(corpus_db, tmp_path / "base", base_config, progress=False)
    wider = finetune_config(
        **{**TINY, "hidden": 32}, start_from=str(tmp_path / "base"), device="cpu"
    )
    with pytest.raises(ValueError, match="has architecture"):
        fit_schnet(corpus_db, tmp_path / "out", wider, progress=False)
    more = finetune_config(**TINY, start_from=str(tmp_path / "base"), ensemble=2, device="cpu")
    with pytest.raises(ValueError, match="has 1 networks, the config asks for 2"):
        fit_schnet(corpus_db, tmp_path / "out", more, progress=False)


ORPHAN_SCRIPT = """
import os, sys, time
from ase_au20.models.schnet.data_parallel import run_data_parallel

def sleep_and_report(shard, folder):
    open(os.path.join(folder, f"worker-{shard.rank}"), "w").write(str(os.getpid()))
    time.sleep(120)

if __name__ == "__main__":
    run_data_parallel(sleep_and_report, 2, 1, sys.argv[1])
"""


def test_killing_a_training_ends_its_data_parallel_workers(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "train.py"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("worker-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in tmp_path.glob("worker-*")]
    assert len(pids) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    time.sleep(4)  # a few polls of the watchdog

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"

    assert not [pid for pid in pids if alive(pid)]
