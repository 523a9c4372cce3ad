"""The package on a real PostgreSQL server (issue 20, item 3): db build/add, search, screen,
select and training read and write postgresql:// URLs; concurrent writers, no duplicates."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from cli_helpers import TINY_KRR, run_cli
from isomer_files import random_compact_au20, write_isomer_xyz

from ase_au20.database import build_database, connect, load_rows
from ase_au20.database.add import add_to_database
from ase_au20.structures import au20_ground_state


def test_build_search_screen_select_add_and_train_on_postgres(
    postgres_url: str, synthetic_xyz_dir: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    run_cli("db", "build", str(synthetic_xyz_dir), "-o", postgres_url)
    on_server, on_file = load_rows(postgres_url), load_rows(synthetic_db)
    np.testing.assert_array_equal(on_server.ids, on_file.ids)
    np.testing.assert_allclose(on_server.energies, on_file.energies)
    assert list(on_server.splits) == list(on_file.splits)
    assert (
        connect(postgres_url).metadata["dataset_hash"]
        == connect(synthetic_db).metadata["dataset_hash"]
    )
    search = ["--runs", "1", "--steps", "3", "--db", postgres_url, "--out", str(tmp_path / "s0")]
    run_cli("search", "--calc", "emt", *search)
    cands = [au20_ground_state() for _ in range(4)]
    for k, atoms in enumerate(cands):
        atoms.positions *= 1 + 0.03 * k  # distinct structures (select keeps one of repeats)
    write(tmp_path / "cands.extxyz", cands)
    run_cli("screen", str(tmp_path / "cands.extxyz"), "--calc", "emt", "--out", postgres_url)
    db = connect(postgres_url)
    assert db.count("model=emt") >= 4 and db.count("pred_energy") == db.count("model=emt")
    assert db.count("energy") == len(on_file)  # predictions never became labels
    run_cli(
        "select", "--db", postgres_url, "--calcs", "emt", "--n", "2", "--out", str(tmp_path / "s")
    )
    assert len(list((tmp_path / "s").glob("select_*.xyz"))) == 2
    labels = ["--single-point", "--out", str(tmp_path / "labels")]  # relaxed, both are EMT's Td
    run_cli("label", str(tmp_path / "s"), "--calc", "emt", *labels)
    added = run_cli("db", "add", str(tmp_path / "labels"), "--db", postgres_url)
    assert "added 2 rows" in added, added
    run_cli("train", "krr", "--db", postgres_url, "--out", str(tmp_path / "krr"), *TINY_KRR)
    card = json.loads((tmp_path / "krr" / "card.json").read_text())
    rows = load_rows(postgres_url)
    assert len(rows) == len(on_file) + 2
    assert set(card["training_ids"]) == set(rows.ids[np.isin(rows.splits, ("train", "val"))])


def _reporting(work, out) -> None:
    """Run ``work()`` in a child process; its result, or its error as text, goes to ``out``."""
    try:
        out.put(work())
    except Exception as exc:  # the parent's assertion shows it
        out.put(f"{type(exc).__name__}: {exc}")


def _add_when_released(folder: str, url: str, barrier, added) -> None:
    barrier.wait()
    _reporting(lambda: add_to_database(folder, url).n_added, added)


def _screen_when_released(source: str, url: str, barrier, done) -> None:
    from ase_au20.workflows.any_calculator import ModelIdentity
    from ase_au20.workflows.screen import ScreenSettings, screen

    barrier.wait()
    settings, model = ScreenSettings(chunk_size=2), ModelIdentity("emt")
    _reporting(lambda: screen([source], "emt", url, settings, model=model).screened, done)


def test_concurrent_writers_on_postgres_write_each_row_once(
    postgres_url: str, synthetic_xyz_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    for i in range(20):
        shutil.copy(synthetic_xyz_dir / f"{i}.xyz", first)
    build_database(first, postgres_url)
    energy = float(load_rows(postgres_url).energies.mean())
    new = tmp_path / "new"
    new.mkdir()
    rng = np.random.default_rng(0)
    for i in range(100, 120):
        write_isomer_xyz(new / f"{i}.xyz", random_compact_au20(rng), energy + 0.01 * i)
    frames = []
    for k in range(12):
        atoms = au20_ground_state()
        atoms.rattle(0.05, seed=k)
        frames.append(atoms)
    write(tmp_path / "cands.extxyz", frames)
    ctx = multiprocessing.get_context("fork")
    barrier, added, screened = ctx.Barrier(4), ctx.Queue(), ctx.Queue()
    writers = [
        ctx.Process(target=_add_when_released, args=(str(new), postgres_url, barrier, added))
        for _ in range(2)
    ] + [
        ctx.Process(
            target=_screen_when_released,
            args=(str(tmp_path / "cands.extxyz"), postgres_url, barrier, screened),
        )
        for _ in range(2)
    ]
    for writer in writers:
        writer.start()
    counts = sorted(added.get(timeout=120) for _ in range(2))
    screens = [screened.get(timeout=120) for _ in range(2)]
    for writer in writers:
        writer.join()
    assert counts == [0, 20]  # the second `db add` sees the first one's rows
    assert all(isinstance(n, int) for n in counts + screens), (counts, screens)
    assert sum(screens) == 12  # the same screen run twice: each chunk written once
    rows = load_rows(postgres_url)
    assert len(rows) == 40 and len(set(rows.ids.tolist())) == 40
    db = connect(postgres_url)
    indices = sorted(row.screen_index for row in db.select("pred_energy"))
    assert indices == list(range(12))


def _hold_lock(url: str, held) -> None:
    from ase_au20.database.writer_lock import writer_lock

    with writer_lock(url):
        held.set()
        time.sleep(600)


def test_killed_postgres_writer_frees_the_lock(postgres_url: str) -> None:
    from ase_au20.database.writer_lock import writer_lock

    ctx = multiprocessing.get_context("fork")
    held = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(postgres_url, held))
    holder.start()
    assert held.wait(timeout=30)
    busy = pytest.raises(TimeoutError, match="is being written by server process")
    with busy, writer_lock(postgres_url, timeout=0.3):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    start = time.monotonic()
    with writer_lock(postgres_url, timeout=30):  # the server saw the session end
        assert time.monotonic() - start < 10
