"""A database that survives concurrent writers, kills, typos and garbage (issue 19, item 4)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from click.testing import CliRunner
from isomer_files import random_compact_au20, write_isomer_xyz

from ase_au20.cli import main
from ase_au20.database import build_database, connect, load_rows
from ase_au20.database.add import add_to_database
from ase_au20.database.migrate import migrate_predictions
from ase_au20.database.writer_lock import lock_path, writer_lock


@pytest.fixture
def base_db(synthetic_xyz_dir: Path, tmp_path: Path) -> Path:
    """A db of files 0..19 of the synthetic set."""
    folder = tmp_path / "first"
    folder.mkdir()
    for i in range(20):
        shutil.copy(synthetic_xyz_dir / f"{i}.xyz", folder)
    path = tmp_path / "base.db"
    build_database(folder, path)
    return path


def _new_isomers(folder: Path, ids: range, energy: float, seed: int = 0) -> Path:
    """Distinct random compact clusters as bare <id>.xyz files with plausible energies."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in ids:
        write_isomer_xyz(folder / f"{i}.xyz", random_compact_au20(rng), energy + 0.01 * i)
    return folder


def _add_when_released(folder: str, db: str, barrier, added) -> None:
    """Wait at the barrier, then add (run in a child process); report how many rows."""
    barrier.wait()
    added.put(add_to_database(folder, db).n_added)


def test_concurrent_adds_write_each_isomer_once(base_db: Path, tmp_path: Path) -> None:
    energy = float(load_rows(base_db).energies.mean())
    new = _new_isomers(tmp_path / "new", range(100, 130), energy)
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    writers = [
        ctx.Process(target=_add_when_released, args=(str(new), str(base_db), barrier, queue))
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    added = sorted(queue.get(timeout=120) for _ in writers)
    for writer in writers:
        writer.join()
    assert added == [0, 30]  # the second writer sees the first one's rows
    rows = load_rows(base_db)
    assert len(rows) == 50 and len(set(rows.ids.tolist())) == 50
    new_groups = rows.groups[rows.ids >= 100]
    assert len(set(new_groups.tolist())) == 30  # no false duplicate groups
    assert connect(base_db).metadata["n_added"] == 30


def _hold_lock(db: str) -> None:
    with writer_lock(db):
        time.sleep(600)


def _hold_lock_briefly(db: str, held, seconds: float) -> None:
    with writer_lock(db):
        held.set()
        time.sleep(seconds)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_writer_learns_how_long_it_waited_for_the_lock(backend, tmp_path, request) -> None:
    db = str(tmp_path / "w.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    with writer_lock(db) as waited:
        assert 0.0 <= waited < 0.5  # nobody held it
    ctx = multiprocessing.get_context("fork")
    held = ctx.Event()
    holder = ctx.Process(target=_hold_lock_briefly, args=(db, held, 0.4))
    holder.start()
    assert held.wait(timeout=30)
    start = time.monotonic()
    with writer_lock(db) as waited:
        elapsed = time.monotonic() - start
    holder.join()
    assert 0.2 < waited <= elapsed


def test_a_waiting_writer_polls_after_1_ms_and_doubles_up_to_a_tenth_of_a_second(
    base_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from ase_au20.database import writer_lock as module

    holder = lock_path(base_db).open("a+")  # another open file: its flock excludes ours
    fcntl.flock(holder, fcntl.LOCK_EX)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 9:
            fcntl.flock(holder, fcntl.LOCK_UN)

    monkeypatch.setattr(module.time, "sleep", sleep)
    with writer_lock(base_db):
        pass
    holder.close()
    assert sleeps == pytest.approx([0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.1, 0.1])


def test_killed_writer_leaves_no_lock_behind(base_db: Path, tmp_path: Path) -> None:
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(str(base_db),))
    holder.start()
    deadline = time.monotonic() + 10
    while lock_path(base_db).read_text().strip() != str(holder.pid):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    busy = pytest.raises(TimeoutError, match=f"being written by process {holder.pid}")
    with busy, writer_lock(base_db, timeout=0.3):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    # ASE's lock file, as a killed `db add` of older versions left it: no longer waited on
    Path(f"{base_db}.lock").write_text("")
    energy = float(load_rows(base_db).energies.mean())
    new = _new_isomers(tmp_path / "new", range(200, 203), energy)
    start = time.monotonic()
    with pytest.warns(UserWarning, match="left by a killed ASE writer"):
        report = add_to_database(new, base_db)
    assert report.n_added == 3 and time.monotonic() - start < 10


def test_cli_add_after_sigkill_does_not_hang(base_db: Path, tmp_path: Path) -> None:
    energy = float(load_rows(base_db).energies.mean())
    new = _new_isomers(tmp_path / "new", range(300, 340), energy)
    cli = [sys.executable, "-m", "ase_au20", "db", "add", str(new), "--db", str(base_db)]
    child = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = load_rows(base_db)
    assert len(rows) == 60 and len(set(rows.ids.tolist())) == 60


def test_typo_energy_is_refused_and_never_the_reference(base_db: Path, tmp_path: Path) -> None:
    reference = connect(base_db).metadata["energy_reference"]
    energy = float(load_rows(base_db).energies.min())
    new = _new_isomers(tmp_path / "new", range(400, 402), energy)
    typo = 10 * energy - 3.0  # a misplaced decimal point, below every real energy
    write_isomer_xyz(new / "402.xyz", random_compact_au20(np.random.default_rng(9)), typo)
    report = add_to_database(new, base_db)
    assert report.n_added == 2
    assert [b.source for b in report.bad_files] == ["402.xyz"]
    assert "eV/atom from the others" in report.bad_files[0].reason
    assert connect(base_db).metadata["energy_reference"] == reference
    with pytest.raises(ValueError, match="strict mode"):
        add_to_database(new, base_db, strict=True)
    # a build refuses it too, so it cannot become the reference of a new database
    built = build_database(new, tmp_path / "typo.db")
    assert built.n_rows == 2 and [b.source for b in built.bad_files] == ["402.xyz"]
    rows = load_rows(tmp_path / "typo.db")
    assert rows.delta_e.max() < 1.0


def test_build_does_not_replace_a_good_db_with_bad_input(base_db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(tmp_path / "first" / "0.xyz", bad / "99999999999999999999.xyz")
    before = base_db.read_bytes()
    with pytest.raises(ValueError, match="no valid Au20 xyz file"):
        build_database(bad, base_db, overwrite=True)
    assert base_db.read_bytes() == before and len(load_rows(base_db)) == 20


def test_garbage_database_and_missing_driver_are_one_line_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    runner = CliRunner()
    for args in (
        ["db", "info", str(garbage)],
        ["db", "add", str(tmp_path), "--db", str(garbage)],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 1
        assert "is not an SQLite database" in result.stderr
        assert "Traceback" not in result.output
    try:
        import ase_db_backends  # noqa: F401
    except ModuleNotFoundError:
        result = runner.invoke(main, ["db", "info", "postgresql://user@localhost:1/au20"])
        assert result.exit_code == 1 and "ase-au20[postgres]" in result.stderr


def test_old_prediction_rows_are_refused_then_migrated(base_db: Path, tmp_path: Path) -> None:
    db = connect(base_db)
    stale = load_rows(db).atoms[0].copy()
    stale.rattle(0.2, seed=3)
    stale.calc = SinglePointCalculator(stale, energy=-1.5)  # how `search --db` stored them
    db.write(stale, source="search", predicted_energy=-1.5, energy_uncertainty=0.3)
    energy = float(load_rows(base_db).energies.mean())
    new = _new_isomers(tmp_path / "new", range(500, 501), energy)
    with pytest.raises(ValueError, match=f"au20-workflow db migrate {base_db}"):
        add_to_database(new, base_db)
    assert migrate_predictions(connect(base_db)) == 1
    assert migrate_predictions(connect(base_db)) == 0
    (row,) = connect(base_db).select(source="search")
    assert row.get("energy") is None and row.pred_energy == -1.5
    assert row.pred_uncertainty == 0.3 and "predicted_energy" not in row
    assert not [r for r in connect(base_db).select("energy<1e9") if "cluster_id" not in r]
    assert add_to_database(new, base_db).n_added == 1


def test_db_add_keeps_metadata_another_writer_wrote_meanwhile(
    base_db: Path, tmp_path: Path, monkeypatch
) -> None:
    from ase_au20.database import add as add_module
    from ase_au20.workflows.screen import LEDGER, open_run

    new = _new_isomers(tmp_path / "new", range(100, 103), float(load_rows(base_db).energies.mean()))
    read_labelled = add_module.read_labelled

    def read_while_a_screen_starts(*args, **kwargs):
        found = read_labelled(*args, **kwargs)
        open_run(str(base_db), "a-screen", {"sources": []})  # another writer, meanwhile
        return found

    monkeypatch.setattr(add_module, "read_labelled", read_while_a_screen_starts)
    assert add_to_database(new, base_db).n_added == 3
    metadata = connect(base_db).metadata
    assert metadata[LEDGER]["a-screen"]["done"] == 0 and metadata["n_added"] == 3
