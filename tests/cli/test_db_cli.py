"""`au20-workflow db build|info|add` through click: exit codes, warnings, summary table."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from isomer_files import random_compact_au20, write_isomer_xyz

from ase_au20.cli import main
from ase_au20.database import load_rows

BadDir = tuple[Path, list[str], dict[str, str]]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_build_bad_input_folder_reports_each_file(
    runner: CliRunner, bad_xyz_dir: BadDir, tmp_path: Path
) -> None:
    folder, good, expected = bad_xyz_dir
    out = tmp_path / "bad.db"
    result = runner.invoke(main, ["db", "build", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == len(expected)
    for name, fragment in expected.items():
        assert any(
            line.startswith(f"warning: skipped {name}: ") and fragment in line for line in warnings
        ), name
    assert f"{len(expected)} warning(s)" in result.stderr
    assert f"wrote {len(good)} rows" in result.stdout
    assert re.search(rf"^isomers +{len(good)}$", result.stdout, re.M)
    assert sorted(f"{i}.xyz" for i in load_rows(out).ids) == sorted(good)


def test_build_strict_exits_one_and_writes_nothing(
    runner: CliRunner, bad_xyz_dir: BadDir, tmp_path: Path
) -> None:
    folder, _, expected = bad_xyz_dir
    out = tmp_path / "strict.db"
    result = runner.invoke(main, ["db", "build", str(folder), "-o", str(out), "--strict"])
    assert result.exit_code == 1
    assert f"{len(expected)} malformed file(s)" in result.stderr
    assert not out.exists()


def test_build_errors_exit_nonzero(
    runner: CliRunner, tmp_path: Path, synthetic_xyz_dir: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        main, ["db", "build", str(tmp_path / "empty"), "-o", str(tmp_path / "e.db")]
    )
    assert result.exit_code == 1 and "no valid Au20 xyz file" in result.stderr
    result = runner.invoke(
        main, ["db", "build", str(synthetic_xyz_dir), "-o", str(tmp_path / "no" / "x.db")]
    )
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = runner.invoke(main, ["db", "build", str(tmp_path / "absent")])
    assert result.exit_code == 2


def test_info_and_add(
    runner: CliRunner, synthetic_xyz_dir: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["db", "info", str(synthetic_db)])
    assert result.exit_code == 0
    for pattern in (
        r"^isomers +44$",
        r"^duplicate groups +40$",
        r"^split test +\d+$",
        r"^buckets low/mid/high +\d+/\d+/\d+$",
        r"^energy range \(eV\) +",
    ):
        assert re.search(pattern, result.stdout, re.M), pattern
    assert "keys:" not in result.stdout
    keys = runner.invoke(main, ["db", "info", str(synthetic_db), "--keys"]).stdout
    assert re.search(
        r"^  delta_e +DFTB1 energy above the database's energy reference .*\(eV\)$", keys, re.M
    )
    assert re.search(r"^  split +train / val / calib / test", keys, re.M)
    db = tmp_path / "copy.db"
    shutil.copy(synthetic_db, db)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(synthetic_xyz_dir / "0.xyz", new / "900.xyz")
    shutil.copy(synthetic_xyz_dir / "5.xyz", new)
    energy = load_rows(db).energies.mean()
    write_isomer_xyz(new / "901.xyz", random_compact_au20(np.random.default_rng(7)), energy)
    result = runner.invoke(main, ["db", "add", str(new), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert re.search(r"^added 1 rows to .*\(1 (train|val|calib|test)\)$", result.stdout, re.M)
    assert re.search(r"^900.xyz matches isomer 0 \(0.0000 Å", result.stdout, re.M)
    assert "1 file(s) already in the database" in result.stdout
    result = runner.invoke(main, ["db", "info", str(tmp_path / "missing.db")])
    assert result.exit_code == 1 and "database not found" in result.stderr
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.data
def test_build_seed_split_on_real_data(
    runner: CliRunner, au20_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "au20.db"
    result = runner.invoke(
        main, ["db", "build", str(au20_data_dir / "xyz"), "-o", str(out), "--split", "seed"]
    )
    assert result.exit_code == 0, result.output
    for pattern in (
        r"^isomers +899$",
        r"^split test +155$",
        r"^duplicate groups +714$",
        r"^groups with 2\+ members +103 \(largest 13\)$",
        r"^split scheme +seed$",
    ):
        assert re.search(pattern, result.stdout, re.M), pattern
    assert "warning" not in result.stderr


def test_every_option_of_every_verb_has_help() -> None:
    import click

    missing = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        missing.extend(
            (" ".join(path), p.name)
            for p in command.params
            if isinstance(p, click.Option) and not p.help
        )

    walk(main, [])
    assert not missing


def test_every_verb_has_quiet_and_quiet_prints_nothing(tmp_path: Path) -> None:
    import click

    verbs = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        verbs.append((" ".join(path), {p.name for p in command.params}))

    walk(main, [])
    assert [name for name, params in verbs if "quiet" not in params] == []
    loud = runner_invoke(["relax", "--calc", "emt", "--fmax", "0.5", "--out", str(tmp_path / "a")])
    quiet = runner_invoke(
        ["relax", "-q", "--calc", "emt", "--fmax", "0.5", "--out", str(tmp_path / "b")]
    )
    assert "E final" in loud.stdout and quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "b" / "au20-td-relax.h5").is_file()


def runner_invoke(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    return result
