"""Screening streams structures into prediction rows, resumes after a kill, never writes a
chunk twice and names the structures of a failing chunk (issue 20, items 1-2)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import write
from click.testing import CliRunner
from screen_calculators import FAR

from ase_au20 import SchNetAu20
from ase_au20.cli import main
from ase_au20.compute.engine import inside_worker, open_engine
from ase_au20.database import connect
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.any_calculator import ModelIdentity
from ase_au20.workflows.screen import LEDGER, ScreenSettings, screen
from ase_au20.workflows.structure_stream import stream_frames

TESTS = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "ase_au20"]


def _structures(n: int, seed: int = 0) -> list:
    frames = []
    for k in range(n):
        atoms = au20_ground_state()
        atoms.rattle(0.05, seed=seed * 1000 + k)
        frames.append(atoms)
    return frames


def _input(tmp_path: Path, n: int, name: str = "in.extxyz", seed: int = 0) -> Path:
    path = tmp_path / name
    write(path, _structures(n, seed))
    return path


def _rows(db: Path) -> list:
    return list(connect(db).select())


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(TESTS), **extra}


def test_screen_writes_prediction_rows_never_labels_and_reruns_as_a_no_op(tmp_path):
    src = _input(tmp_path, 10)
    db = tmp_path / "out.db"
    args = ["screen", str(src), "--out", str(db), "--scheduler", "none", "--chunk-size", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "10 structures screened" in result.output
    assert re.search(r"after \d+\.\d s building the calculator", result.output)
    assert "outside the model's domain: 0 (0.0%)" in result.output
    assert "lowest predictions" in result.output and "time: reading" in result.output
    assert "s of it waiting for the writer lock" in result.output
    rows = sorted(_rows(db), key=lambda r: r.screen_index)
    assert len(rows) == 10 and all(row.get("energy") is None for row in rows)
    assert connect(db).count("energy") == 0  # `ase db 'energy<…'` sees no prediction
    calc = SchNetAu20()
    want = calc.predict(_structures(10), properties=("energy", "energy_uncertainty"))
    got = np.array([row.pred_energy for row in rows])
    np.testing.assert_allclose(got, want["energy"], atol=1e-6)
    # the ensemble's spread scales the interval: float32 chunks of 4 and of 10 differ ~1e-6
    np.testing.assert_allclose(
        [r.pred_uncertainty for r in rows], want["energy_uncertainty"], rtol=1e-5
    )
    assert all(r.in_domain for r in rows)
    has_spread = "energy_std" in calc.implemented_properties  # a spread is stored if given
    assert all(("pred_std" in r.key_value_pairs) == has_spread for r in rows)
    assert {r.model for r in rows} == {"schnet"}
    assert {r.model_card_sha256 for r in rows} == {calc.card["sha256"]}
    assert [r.source for r in rows] == [f"{src}@{k}" for k in range(10)]
    (entry,) = connect(db).metadata[LEDGER].values()
    assert entry["done"] == 10 and entry["rows"] == 10 and entry["sources"] == [str(src)]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "resumed run" in again.output and "0 structures screened" in again.output
    assert len(_rows(db)) == 10


def test_out_of_domain_and_invalid_structures_are_reported_not_fatal(tmp_path):
    frames = _structures(5)
    frames[1].positions *= 0.7  # pairs near 1.9 Å: a collapsed cluster, outside the domain
    frames[3].positions[1] = frames[3].positions[0] + 0.1  # not a valid cluster at all
    write(tmp_path / "mixed.extxyz", frames)
    db = tmp_path / "out.db"
    args = ["screen", str(tmp_path / "mixed.extxyz"), "--out", str(db), "--scheduler", "none"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "4 structures screened" in result.output
    assert "outside the model's domain: 1 (25.0%)" in result.output
    assert "1 not evaluated (first: " in result.output and "mixed.extxyz@3" in result.output
    by_index = {row.screen_index: row for row in _rows(db)}
    assert sorted(by_index) == [0, 1, 2, 4]
    assert by_index[1].in_domain is False and by_index[0].in_domain is True
    assert by_index[1].pred_uncertainty > 2 * by_index[0].pred_uncertainty


def _done(db: Path) -> int:
    try:
        return sum(e["done"] for e in connect(db).metadata.get(LEDGER, {}).values())
    except (sqlite3.OperationalError, ValueError):  # not created yet, or being written
        return 0


def _slow_screen(src: Path, db: Path, sleep: str) -> list[str]:
    calc = "screen_calculators:slow_emt"
    return [*CLI, "screen", str(src), "--calc", calc, "--out", str(db), "--chunk-size", "4"] + [
        "--scheduler",
        "none",
        "-q",
    ]


def test_killed_screen_resumes_without_duplicates(tmp_path):
    src = _input(tmp_path, 24)
    db = tmp_path / "out.db"
    command = _slow_screen(src, db, "0.05")
    child = subprocess.Popen(command, env=_env(SCREEN_SLEEP="0.05"))
    deadline = time.monotonic() + 120
    while _done(db) < 8 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at = _done(db)
    assert 8 <= killed_at < 24 and len(_rows(db)) == killed_at
    subprocess.run(command, env=_env(SCREEN_SLEEP="0"), check=True, timeout=120)
    rows = _rows(db)
    assert sorted(r.screen_index for r in rows) == list(range(24))
    assert len({r.source for r in rows}) == 24
    emt = [EMT().get_potential_energy(a) for a in _structures(24)]
    by_index = sorted(rows, key=lambda r: r.screen_index)
    np.testing.assert_allclose([r.pred_energy for r in by_index], emt, atol=1e-9)


def test_two_screens_of_the_same_run_write_each_chunk_once(tmp_path):
    src = _input(tmp_path, 24)
    db = tmp_path / "out.db"
    command = _slow_screen(src, db, "0.01")
    children = [subprocess.Popen(command, env=_env(SCREEN_SLEEP="0.01")) for _ in range(2)]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    rows = _rows(db)
    assert sorted(r.screen_index for r in rows) == list(range(24))


def _input_failing_at_5(tmp_path: Path) -> Path:
    """``in.extxyz`` of 8 structures; FailingEMT raises on the sixth (shifted beyond FAR)."""
    frames = _structures(8)
    frames[5].positions[:, 0] += FAR + 100
    path = tmp_path / "in.extxyz"
    write(path, frames)
    return path


def test_a_failing_chunk_names_its_structures_and_keeps_the_chunks_before(tmp_path):
    _input_failing_at_5(tmp_path)
    db = tmp_path / "out.db"
    calc = "screen_calculators:failing_emt"
    args = ["screen", str(tmp_path / "in.extxyz"), "--calc", calc, "--out", str(db)]
    result = CliRunner().invoke(main, [*args, "--scheduler", "none", "--chunk-size", "4"])
    assert result.exit_code == 1
    assert "structures 4–7 (" in result.stderr and "in.extxyz@4 … " in result.stderr
    assert "RuntimeError: boom (raised at tests/screen_calculators.py:28 in calculate)" in (
        result.stderr
    )
    assert "Traceback" not in result.output
    assert sorted(r.screen_index for r in _rows(db)) == [0, 1, 2, 3]


def test_a_chunk_failing_on_a_worker_is_one_error_line_below_the_closed_bar(tmp_path):
    # the worker's own "Compute Failed" report repeated the error through the progress bar,
    # and the bar, left open, had the error appended to its line
    _input_failing_at_5(tmp_path)
    args = [*CLI, "screen", str(tmp_path / "in.extxyz"), "--calc", "screen_calculators:failing_emt"]
    args += ["--out", str(tmp_path / "out.db"), "--workers", "1", "--chunk-size", "4"]
    result = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.replace("\r", "\n").splitlines()
    errors = [line for line in lines if "RuntimeError: boom" in line]
    assert errors == [
        f"Error: structures 4–7 ({tmp_path / 'in.extxyz'}@4 … {tmp_path / 'in.extxyz'}@7): "
        "RuntimeError: boom (raised at tests/screen_calculators.py:28 in calculate)"
    ], result.stderr
    assert "Compute Failed" not in result.stderr


def test_dask_workers_build_the_calculator_once_each(tmp_path, monkeypatch):
    builds = tmp_path / "builds.txt"
    monkeypatch.setenv("SCREEN_BUILDS", str(builds))
    src = _input(tmp_path, 16)
    db = tmp_path / "out.db"
    ticks = []
    with open_engine("local", workers=2) as engine:
        report = screen(
            [src],
            "screen_calculators:counting_emt",
            db,
            ScreenSettings(chunk_size=2),
            engine,
            model=ModelIdentity("counting-emt"),
        )
        engine_ticks = list(
            engine.map(lambda calc, item, progress: item, None, range(3), on_progress=ticks.append)
        )
        where = list(engine.map(lambda calc, item, progress: inside_worker(), None, range(2)))
    assert where == [True, True] and not inside_worker()  # xtb-delta: no cluster in a worker
    pids = builds.read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2  # 8 tasks: one build per worker, before them
    assert str(os.getpid()) not in pids
    assert report.screened == 16 and engine_ticks == [0, 1, 2]
    rows = sorted(_rows(db), key=lambda r: r.screen_index)
    emt = [EMT().get_potential_energy(a) for a in _structures(16)]
    np.testing.assert_allclose([r.pred_energy for r in rows], emt, atol=1e-9)
    assert {r.model for r in rows} == {"counting-emt"}


def test_streams_read_folders_files_at_an_index_and_database_selections(tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "a.extxyz", _structures(3))
    write(folder / "b.traj", _structures(2, seed=1))
    (folder / "notes.txt").write_text("not a structure")
    db = tmp_path / "rows.db"
    for atoms in _structures(4, seed=2):
        connect(db).write(atoms, kind="x" if len(_rows(db)) % 2 else "y")
    labels = [
        label for label, _ in stream_frames([folder, f"{folder}/a.extxyz@1:", f"{db}@kind=x"])
    ]
    assert labels[:5] == [f"{folder}/a.extxyz@{k}" for k in range(3)] + [
        f"{folder}/b.traj@{k}" for k in range(2)
    ]
    assert labels[5:7] == [f"{folder}/a.extxyz@1:#0", f"{folder}/a.extxyz@1:#1"]
    assert labels[7:] == [f"{db}@id=2", f"{db}@id=4"]
    with pytest.raises(ValueError, match="no such file, folder or database"):
        list(stream_frames([tmp_path / "missing.xyz"]))


def test_relax_screens_the_relaxed_structure(tmp_path):
    frames = _structures(2)
    for atoms in frames:
        atoms.rattle(0.1, seed=7)
    write(tmp_path / "in.extxyz", frames)
    db = tmp_path / "out.db"
    args = ["screen", str(tmp_path / "in.extxyz"), "--calc", "emt", "--out", str(db), "--relax"]
    result = CliRunner().invoke(main, [*args, "--fmax", "0.05", "--scheduler", "none"])
    assert result.exit_code == 0, result.output
    for row in sorted(_rows(db), key=lambda r: r.screen_index):
        relaxed = row.toatoms()
        relaxed.calc = EMT()
        assert row.converged and np.abs(relaxed.get_forces()).max() < 0.05
        assert row.pred_energy == pytest.approx(relaxed.get_potential_energy(), abs=1e-9)
        assert row.pred_energy < EMT().get_potential_energy(frames[row.screen_index]) - 0.01


@pytest.mark.parametrize("digest", ["1234567890123456", "12345e6789012345"])
def test_a_run_whose_hash_reads_as_a_number_still_screens(tmp_path, monkeypatch, digest):
    import hashlib

    sha256 = hashlib.sha256

    class Hash:
        def __init__(self, text: bytes) -> None:
            self.tail = sha256(text).hexdigest()[16:]

        def hexdigest(self) -> str:
            return digest + self.tail  # ASE refuses a string value that reads as a number

    monkeypatch.setattr(hashlib, "sha256", Hash)
    db = tmp_path / "out.db"
    report = screen([_input(tmp_path, 3)], EMT(), db, engine=None)
    assert report.screened == 3 and report.run == "r" + digest[:15]
    assert {row.screen_run for row in _rows(db)} == {report.run}
    assert not screen([tmp_path / "in.extxyz"], EMT(), db).screened  # resumes the same run


def test_a_model_folder_whose_name_reads_as_a_number_screens(tmp_path, monkeypatch):
    import shutil

    from ase_au20.paths import PRETRAINED_DIR

    shutil.copytree(PRETRAINED_DIR / "schnet", tmp_path / "2024")  # a model folder "2024"
    monkeypatch.chdir(tmp_path)
    _input(tmp_path, 3)
    args = ["screen", "in.extxyz", "--calc", "2024", "--out", "out.db", "--scheduler", "none"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output  # ASE refused "2024" as the rows' model
    assert {row.model for row in _rows(tmp_path / "out.db")} == {"./2024"}
    assert ModelIdentity("1e5").name == "./1e5" and ModelIdentity("schnet").name == "schnet"


def test_chunks_written_out_of_order_advance_the_ledger_once_the_gap_closes(tmp_path):
    from ase_au20.workflows.screen import open_run, write_chunk

    db = str(tmp_path / "out.db")
    assert open_run(db, "r", {"sources": []}) == (0, set())
    row = [(au20_ground_state(), {"pred_energy": 1.0, "screen_run": "r"})]
    assert write_chunk(db, "r", 4, 4, row * 4).written  # a later chunk finishes first
    assert open_run(db, "r", {}) == (0, {4})  # a resume skips it and redoes 0-3
    assert write_chunk(db, "r", 0, 4, row * 4).written
    assert open_run(db, "r", {}) == (8, set())
    assert not write_chunk(db, "r", 4, 4, row * 4).written  # never twice
    assert len(_rows(tmp_path / "out.db")) == 8


def test_plain_and_extended_xyz_frames_parse_as_ase_reads_them(tmp_path):
    from ase.io import read

    from ase_au20.workflows.structure_stream import parse_frames

    frames = _structures(2)
    frames[1].set_cell([30.0, 30.0, 30.0])
    frames[1].pbc = True  # a cell: left to ASE's reader
    write(tmp_path / "a.extxyz", frames)
    (tmp_path / "b.xyz").write_text("2\n-1.5\nAu 0 0 0\nAu 0 0 2.8\n\n")
    texts = [frame for _, frame in stream_frames([tmp_path / "a.extxyz", tmp_path / "b.xyz"])]
    parsed, failed = parse_frames(texts)
    assert not failed
    want = [*read(tmp_path / "a.extxyz", ":"), read(tmp_path / "b.xyz")]
    assert len(parsed) == 3
    for got, ref in zip(parsed, want, strict=True):
        np.testing.assert_array_equal(got.numbers, ref.numbers)
        np.testing.assert_allclose(got.positions, ref.positions)
        assert got.pbc.tolist() == ref.pbc.tolist()
    (tmp_path / "bad.xyz").write_text("2\ncomment\nAu 0 0 0\n")
    (label, frame), *rest = stream_frames([tmp_path / "bad.xyz"])
    assert label.endswith("bad.xyz@0") and not rest
    assert frame.reason == "ends early (2 atoms announced)"


def test_energies_in_the_input_never_become_labels_of_screened_rows(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = _structures(2)
    for atoms in frames:
        atoms.set_cell([30.0, 30.0, 30.0])  # a cell: read by ASE, which keeps the energy
        atoms.calc = SinglePointCalculator(atoms, energy=-1557.0)
    write(tmp_path / "labelled.extxyz", frames)
    db = tmp_path / "out.db"
    args = ["screen", str(tmp_path / "labelled.extxyz"), "--calc", "emt", "--out", str(db)]
    result = CliRunner().invoke(main, [*args, "--scheduler", "none"])
    assert result.exit_code == 0, result.output
    assert len(_rows(db)) == 2 and connect(db).count("energy") == 0


@pytest.mark.parametrize("selection", ["", "@id>0", "@pred_energy"])
def test_a_screen_into_its_own_input_database_is_refused(synthetic_db, tmp_path, selection):
    """`screen db@id>0 --out db` re-screened its own predictions (red-team finding 6)."""
    db = tmp_path / "own.db"
    db.write_bytes(synthetic_db.read_bytes())
    before = len(connect(db))
    with pytest.raises(ValueError, match="both an input and the output of the screen"):
        screen([f"{db}{selection}"], EMT(), db)
    result = CliRunner().invoke(
        main, ["screen", f"{db}{selection}", "--calc", "emt", "--out", str(db)]
    )
    assert result.exit_code == 1 and "both an input and the output" in result.output
    assert len(connect(db)) == before


def test_a_changed_input_is_a_new_run_not_a_resumed_one(tmp_path):
    """An input rewritten after a finished screen was "resumed" with 0 screened and its
    stale predictions kept (red-team finding 7)."""
    db = tmp_path / "out.db"
    src = _input(tmp_path, 6)
    first = screen([src], EMT(), db, ScreenSettings(chunk_size=4), model=ModelIdentity("emt"))
    assert first.screened == 6
    os.utime(src, ns=(time.time_ns(), time.time_ns()))  # the same size, written anew
    write(src, _structures(6, seed=1))
    second = screen([src], EMT(), db, ScreenSettings(chunk_size=4), model=ModelIdentity("emt"))
    assert second.screened == 6 and second.resumed_from == 0 and second.run != first.run
    assert len(connect(db).metadata[LEDGER]) == 2
    third = screen([src], EMT(), db, ScreenSettings(chunk_size=4), model=ModelIdentity("emt"))
    assert third.screened == 0 and third.run == second.run  # unchanged: resumed as done


def test_bad_files_and_frames_are_skipped_and_named_and_the_stream_goes_on(tmp_path):
    """A malformed frame mid-file, a binary file, a dangling link, a folder named *.xyz and
    a FIFO stopped or hung a screen (red-team finding 8)."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    good = _structures(4)
    write(folder / "a.extxyz", good[:2])
    text = (folder / "a.extxyz").read_text()
    first = text.split("\n", 22)  # 20 atoms: frame 0 is lines 0-21
    broken = "\n".join(first[:22]) + "\nthis is not a count\nnor this\n" + first[22]
    (folder / "b.extxyz").write_text(broken)  # frame 0 fine, frame 1 bad, frame 2 fine
    (folder / "c.xyz").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
    (folder / "d.xyz").mkdir()
    (folder / "e.xyz").symlink_to(folder / "gone.xyz")
    os.mkfifo(folder / "f.xyz")
    write(folder / "g.traj", good[2:])
    db = tmp_path / "out.db"
    done = subprocess.run(
        [*CLI, "screen", str(folder), "--calc", "emt", "--out", str(db), "--scheduler", "none"],
        capture_output=True,
        text=True,
        timeout=120,  # a FIFO opened for reading would block here for ever
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "6 structures screened" in done.stdout
    assert "5 not evaluated" in done.stdout
    sources = {row.source for row in _rows(db)}
    assert f"{folder}/b.extxyz@0" in sources and f"{folder}/b.extxyz@2" in sources
    assert len(sources) == 6


def test_every_bad_input_has_its_reason(tmp_path):
    from ase_au20.workflows.structure_stream import Unreadable

    (tmp_path / "d.xyz").mkdir()
    os.mkfifo(tmp_path / "f.xyz")
    (tmp_path / "c.xyz").write_bytes(b"\xff\xfe\x00 binary")
    frames = dict(stream_frames([tmp_path]))
    reasons = {Path(k).name: v.reason for k, v in frames.items() if isinstance(v, Unreadable)}
    assert reasons == {
        "c.xyz@0": "not a text file (undecodable bytes)",
        "d.xyz": "a directory, not a file",
        "f.xyz": "a FIFO (named pipe), not a regular file",
    }
