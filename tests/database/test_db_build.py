"""Building the database from the synthetic EMT set: rows, metadata, atomicity, ase db CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ase_au20.database import build_database, connect, load_rows
from ase_au20.database.store import KEYS
from ase_au20.geometry.conventions import DUPLICATE_TOLERANCE


def _row_contents(db_path: Path) -> list[tuple]:
    """Everything that defines a row except ASE's bookkeeping (ctime, user, unique_id)."""
    return [
        (
            row.id,
            tuple(sorted(row.key_value_pairs.items())),
            row.energy,
            row.positions.round(10).tobytes(),
        )
        for row in connect(db_path).select()
    ]


def test_synthetic_db_rows_and_metadata(synthetic_db: Path, synthetic_xyz_dir: Path) -> None:
    db = connect(synthetic_db)
    assert db.count() == 44
    row = db.get(cluster_id=0)
    assert set(KEYS) <= set(row.key_value_pairs)
    assert row.source == "0.xyz"
    energy = float((synthetic_xyz_dir / "0.xyz").read_text().splitlines()[1])
    assert row.energy == pytest.approx(energy)
    meta = db.metadata
    energies = np.array([r.energy for r in db.select()])
    delta_e = np.array([r.delta_e for r in db.select()])
    assert meta["energy_reference"] == pytest.approx(energies.min())
    np.testing.assert_allclose(delta_e, energies - energies.min())
    assert meta["bucket_edges"] == pytest.approx(np.percentile(delta_e, [25, 75]).tolist())
    assert meta["units"] == {"energy": "eV", "length": "Å"}
    assert meta["split_scheme"] == "group"
    assert meta["duplicate_tolerance"] == DUPLICATE_TOLERANCE
    assert len(meta["dataset_hash"]) == 64


def test_synthetic_groups_and_every_split_nonempty(synthetic_db: Path) -> None:
    rows = load_rows(synthetic_db)
    group_of = dict(zip(rows.ids.tolist(), rows.groups.tolist(), strict=True))
    assert group_of[0] == group_of[40] == group_of[41]
    assert group_of[1] == group_of[42] and group_of[2] == group_of[43]
    assert len(set(rows.groups.tolist())) == 40
    for name in ("train", "val", "calib", "test"):
        assert (rows.splits == name).sum() > 0, name
    for g in np.unique(rows.groups):
        assert len(set(rows.splits[rows.groups == g])) == 1


def test_rebuild_gives_identical_rows(synthetic_xyz_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    build_database(synthetic_xyz_dir, path)
    first, meta = _row_contents(path), connect(path).metadata
    build_database(synthetic_xyz_dir, path, overwrite=True)
    assert _row_contents(path) == first
    assert connect(path).metadata == meta
    assert [p.name for p in tmp_path.iterdir() if "writer-lock" not in p.name] == ["twice.db"]


def test_interrupted_build_keeps_previous_db(
    synthetic_xyz_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keep.db"
    build_database(synthetic_xyz_dir, path)
    before = _row_contents(path)
    import ase_au20.database.build as build_module

    real_write = build_module.write_rows

    def crash_midway(db, atoms, kvps):
        real_write(db, atoms[:10], kvps[:10])
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(build_module, "write_rows", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        build_database(synthetic_xyz_dir, path, seed=5, overwrite=True)
    assert _row_contents(path) == before
    assert [p.name for p in tmp_path.iterdir() if "writer-lock" not in p.name] == ["keep.db"]


def test_unwritable_output_is_a_clear_error(synthetic_xyz_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        build_database(synthetic_xyz_dir, tmp_path / "missing" / "x.db")
    with pytest.raises(ValueError, match="is a directory"):
        build_database(synthetic_xyz_dir, tmp_path)
    with pytest.raises(ValueError, match="needs an extension"):
        build_database(synthetic_xyz_dir, tmp_path / "noext")


def test_folder_without_valid_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "1.xyz").write_text("20\n")
    with pytest.raises(ValueError, match=r"no valid Au20 xyz file .*1 \.xyz file\(s\) found"):
        build_database(tmp_path, tmp_path / "out.db")
    assert not (tmp_path / "out.db").exists()


def test_strict_refuses_bad_files(synthetic_xyz_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xyz"
    folder.mkdir()
    for path in sorted(synthetic_xyz_dir.glob("*.xyz"))[:5]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "99.xyz").write_text("")
    report = build_database(folder, tmp_path / "ok.db")
    assert report.n_rows == 5 and [b.source for b in report.bad_files] == ["99.xyz"]
    assert report.n_warnings == 1
    with pytest.raises(ValueError, match="99.xyz: empty file"):
        build_database(folder, tmp_path / "strict.db", strict=True)
    assert not (tmp_path / "strict.db").exists()


def test_bad_arguments(synthetic_xyz_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split scheme"):
        build_database(synthetic_xyz_dir, tmp_path / "a.db", split="random")
    with pytest.raises(ValueError, match="seed split file not found"):
        build_database(synthetic_xyz_dir, tmp_path / "a.db", split="seed", seed_splits=tmp_path)


def _ase_db(*args: str) -> str:
    script = Path(sys.executable).parent / "ase"  # the venv's console script
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "ase"]
    result = subprocess.run([*command, "db", *args], capture_output=True, text=True, check=True)
    return result.stdout


def test_ase_db_command_line_queries(synthetic_db: Path) -> None:
    table = _ase_db(str(synthetic_db), "-c", "cluster_id,energy,delta_e,bucket,dup_group,split")
    header = table.splitlines()[0]
    assert [h.strip() for h in header.split("|")] == [
        "cluster_id",
        "energy",
        "delta_e",
        "bucket",
        "dup_group",
        "split",
    ]
    assert "Rows: 44" in table
    rows = load_rows(synthetic_db)
    threshold = float(np.sort(rows.delta_e)[5]) + 1e-9  # six rows at or below
    out = _ase_db(str(synthetic_db), f"delta_e<{threshold}", "-c", "cluster_id", "--limit", "0")
    listed = sorted(int(line) for line in out.splitlines() if line.strip().isdigit())
    assert listed == sorted(rows.ids[rows.delta_e < threshold].tolist())
    assert len(listed) == 6


def test_a_database_with_rows_is_not_replaced_unasked(synthetic_xyz_dir: Path, tmp_path: Path):
    """`db build DIR -o existing.db` replaced 929 rows by 10 (red-team finding 6)."""
    from cli_helpers import run_cli
    from click.testing import CliRunner

    from ase_au20.cli import main

    path = tmp_path / "kept.db"
    build_database(synthetic_xyz_dir, path)
    before = _row_contents(path)
    small = tmp_path / "small"
    small.mkdir()
    for name in ("0.xyz", "1.xyz", "2.xyz"):
        (small / name).write_bytes((synthetic_xyz_dir / name).read_bytes())
    result = CliRunner().invoke(main, ["db", "build", str(small), "-o", str(path)])
    assert result.exit_code == 1
    assert f"{path} already holds 44 rows: pass --overwrite" in result.output
    assert _row_contents(path) == before
    assert "wrote 3 rows" in run_cli("db", "build", str(small), "-o", str(path), "--overwrite")
