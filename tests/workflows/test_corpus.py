"""The labelled corpus (`sample`): families, labels with forces, parent-grouped splits,
resume after a kill, and `db info`'s summary."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from ase_au20.compute.engine import open_engine
from ase_au20.database import connect, load_rows
from ase_au20.database.corpus import family_table, load_corpus
from ase_au20.workflows.corpus.plan import PARENTLESS_SPLITS, parentless_split, plan_tasks
from ase_au20.workflows.corpus.sample import sample_corpus
from ase_au20.workflows.corpus.settings import SampleSettings
from tests.cli_helpers import run_cli

TINY = SampleSettings(
    amplitudes=(0.05, 0.1),
    rattles=1,
    md_steps=4,
    md_every=2,
    temperatures=(300.0, 1500.0),
    relax_starts=2,
    relax_steps=6,
    relax_every=2,
    active_runs=2,
    active_steps=4,
    active_per_run=1,
    minima_starts=2,
)


@pytest.fixture
def small_db(synthetic_db: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic isomer database that a test may write a corpus into."""
    path = tmp_path / "corpus.db"
    shutil.copy(synthetic_db, path)
    return path


@pytest.fixture(scope="module")
def sampled(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic isomers with a tiny corpus of every family (in this process)."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.db"
    shutil.copy(synthetic_db, path)
    with open_engine("none") as engine:
        sample_corpus(connect(path), TINY, engine, model="schnet", progress=False)
    return path


def test_every_family_is_labelled_by_the_reference_with_forces(sampled: Path) -> None:
    from ase_au20.calculators.base import OutsideDomainWarning
    from ase_au20.calculators.dftb import DFTBAu20

    corpus = load_corpus(sampled)
    counts = collections.Counter(corpus.families.tolist())
    n_isomers = len(load_rows(sampled))
    assert counts["rattle"] == 2 * n_isomers  # two amplitudes, one rattle each
    assert counts["md"] == 3 * n_isomers  # steps 0, 2, 4
    assert counts["active"] == 2
    assert counts["relax"] >= 2 * 2  # a start, the last step and those between
    assert counts["minima"] == 2  # the model's minimum of each relaxation (active_per_run 1)
    reference = DFTBAu20()
    warnings.simplefilter("ignore", OutsideDomainWarning)  # exact there too
    for i in np.random.default_rng(0).choice(len(corpus), 6, replace=False):
        atoms = Atoms("Au20", positions=corpus.positions[i])
        atoms.calc = reference
        assert corpus.energies[i] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(corpus.forces[i], atoms.get_forces(), atol=1e-9)
    row = next(connect(sampled).select(family="rattle"))
    assert row.level == "dftb1-auorg-1-1" and row.amplitude in (0.05, 0.1)
    assert "cluster_id" not in row  # the isomer readers skip it
    md = np.flatnonzero(corpus.families == "md")
    assert np.abs(corpus.forces[md]).max() > 0.1  # thermal frames, not minima


def test_frames_take_their_parents_split(sampled: Path) -> None:
    isomers = load_rows(sampled)
    split_of = dict(zip(isomers.ids.tolist(), isomers.splits.tolist(), strict=True))
    corpus = load_corpus(sampled)
    with_parent = corpus.parents >= 0
    parentless = np.isin(corpus.families, ["relax", "minima"])
    assert with_parent.sum() == len(corpus) - parentless.sum()
    for parent, split in zip(corpus.parents[with_parent], corpus.splits[with_parent], strict=True):
        assert split == split_of[int(parent)]
    assert len(load_corpus(sampled, split="test")) == (corpus.splits == "test").sum() > 0


def test_parentless_splits_follow_the_isomer_shares() -> None:
    drawn = collections.Counter(parentless_split(f"relax-random-{k}-s0", 0) for k in range(4000))
    for split, share in PARENTLESS_SPLITS.items():
        assert drawn[split] / 4000 == pytest.approx(share, abs=0.03)
    assert parentless_split("relax-random-7-s0", 0) == parentless_split("relax-random-7-s0", 0)


def test_tasks_have_stable_unique_names(synthetic_db: Path) -> None:
    isomers = load_rows(synthetic_db)
    settings = SampleSettings(families=("rattle", "md", "relax"), relax_starts=10)
    first, second = plan_tasks(isomers, settings), plan_tasks(isomers, settings)
    names = [t.source for t in first]
    assert names == [t.source for t in second] and len(set(names)) == len(names)
    other_seed = {t.source for t in plan_tasks(isomers, SampleSettings(seed=1, families=("md",)))}
    assert not other_seed & set(names)


def test_settings_refuse_what_cannot_be_drawn(synthetic_db: Path) -> None:
    with pytest.raises(ValueError, match="unknown family crystal"):
        SampleSettings(families=("md", "crystal"))
    with pytest.raises(ValueError, match="amplitudes must be positive"):
        SampleSettings(amplitudes=(0.1, -0.1))
    with pytest.raises(ValueError, match="active family needs a model"):
        plan_tasks(load_rows(synthetic_db), SampleSettings(families=("active",)))


def _sources(path: Path) -> collections.Counter:
    """Frames per task (``source``) of the corpus in ``path``."""
    return collections.Counter(load_corpus(path).sources.tolist())


def test_a_killed_run_goes_on_where_it_stopped(small_db: Path) -> None:
    command = [
        *(sys.executable, "-m", "ase_au20", "sample", "--db", str(small_db)),
        *("--families", "rattle", "--amplitudes", "0.05,0.1,0.15", "--rattles", "10"),
        *("--scheduler", "none", "--quiet"),
    ]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(_sources(small_db)) >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _sources(small_db)
    assert 3 <= len(before) < len(load_rows(small_db))
    assert set(before.values()) == {30}  # a task is written whole or not at all
    output = run_cli(*command[3:-1])  # without --quiet: the summary
    assert f"({len(before)} already there)" in output
    after = _sources(small_db)
    assert len(after) == len(load_rows(small_db)) and set(after.values()) == {30}


def test_db_info_and_the_verb_summarise_the_families(sampled: Path) -> None:
    output = run_cli("db", "info", str(sampled))
    assert "corpus:" in output and "rattle" in output and "active" in output
    assert family_table(load_corpus(sampled)).splitlines()[0] in output
    again = run_cli(
        "sample",
        "--db",
        str(sampled),
        "--scheduler",
        "none",
        *("--amplitudes", "0.05,0.1", "--rattles", "1", "--md-steps", "4"),
        *("--md-every", "2", "--temperatures", "300,1500", "--relax-starts", "2"),
        *("--relax-steps", "6", "--relax-every", "2", "--active-runs", "2"),
        *("--active-steps", "4", "--active-per-run", "1", "--minima-starts", "2"),
    )
    assert "sampled 0 frames in 0 tasks" in again


def test_the_verb_explains_bad_settings(small_db: Path) -> None:
    from click.testing import CliRunner

    from ase_au20.cli import main

    result = CliRunner().invoke(main, ["sample", "--db", str(small_db), "--families", "md,x"])
    assert result.exit_code == 2 and "unknown family x" in result.output
    result = CliRunner().invoke(main, ["sample", "--db", str(small_db), "--amplitudes", "0.1,a"])
    assert result.exit_code == 2 and "not a comma-separated list of float" in result.output
