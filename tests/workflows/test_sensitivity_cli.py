"""The sensitivity verb: structure sources, errors with clear messages, files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from ase.io import write
from click.testing import CliRunner

from ase_au20.cli import main
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.results import read_results

FAST = ["--calc", "emt", "--sigmas", "0.01,0.03", "--ks", "1,2", "--repeats", "3"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["sensitivity", *args])


def test_default_structure_is_the_relaxed_pyramid(tmp_path: Path) -> None:
    result = invoke(*FAST, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "relaxed built-in Td ground state" in result.output
    assert "log-log slope" in result.output and "wall time" in result.output
    arrays, attrs = read_results(tmp_path / "sensitivity.h5")
    assert attrs["parameters"]["relaxed"] is True
    assert attrs["parameters"]["repeats"] == 3
    assert arrays["samples/energy"].shape == (2 * 2 * 3,)
    assert arrays["structure/fmax"] <= 0.01
    for name in (
        "abs_de_by_sigma.png",
        "abs_de_vs_rmsd.png",
        "site_stiffness.png",
        "site_hessian_3d.png",
        "site_hessian.pdb",
        "site_hessian.tcl",
        "site_extremes.csv",
        "structure.xyz",
    ):
        assert (tmp_path / name).stat().st_size > 0, name


def test_structure_file_and_database_row(tmp_path: Path, synthetic_db: Path) -> None:
    path = tmp_path / "td.xyz"
    write(path, au20_ground_state())
    from_file = invoke(*FAST, str(path), "--out", str(tmp_path / "file"))
    assert from_file.exit_code == 0, from_file.output
    assert "relaxed" not in from_file.output.splitlines()[0]
    from_db = invoke(
        *FAST, "--db", str(synthetic_db), "--cluster-id", "3", "--out", str(tmp_path / "db")
    )
    assert from_db.exit_code == 0, from_db.output
    _, attrs = read_results(tmp_path / "db" / "sensitivity.h5")
    assert attrs["parameters"]["structure"].endswith("cluster_id=3")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "{db}", "--cluster-id", "99999"], "cluster_id 99999 is not in"),
        (["{tmp}/missing.xyz"], "no such file"),
        (["{tmp}/garbage.xyz"], "cannot read a structure"),
        (["--cluster-id", "3"], "--db and --cluster-id go together"),
        (["--calc", "{tmp}/no-model"], "unknown calculator"),
        (["--sigmas", "0.01,abc"], "comma-separated numbers"),
        (["--ks", "1,40"], "k must lie in 1..20"),
    ],
)
def test_errors_are_clear(tmp_path: Path, synthetic_db: Path, args, message) -> None:
    (tmp_path / "garbage.xyz").write_text("this is not\nan xyz file at all\n")
    args = [a.format(db=synthetic_db, tmp=tmp_path) for a in args]
    result = invoke("--calc", "emt", "--repeats", "2", *args, "--out", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "out" / "sensitivity.h5").exists()


def test_missing_shipped_model_is_named(tmp_path: Path, monkeypatch) -> None:
    import ase_au20.models as models

    monkeypatch.setattr(models, "PRETRAINED_DIR", tmp_path / "empty")
    result = invoke("--out", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "cannot load calculator 'schnet'" in result.output
    assert "no shipped schnet model" in result.output and "make reproduce" in result.output


def test_sensitivity_with_the_reference_prints_both_columns(tmp_path) -> None:
    """`sensitivity --reference dftb` (issue 39, item 4): the same perturbations with the
    reference on its own minimum, global K and per-site stiffness side by side."""
    import csv

    from cli_helpers import run_cli

    out = tmp_path / "s"
    args = ["sensitivity", "--calc", "emt", "--reference", "dftb", "--sigmas", "0.01"]
    text = run_cli(*args, "--ks", "1", "--repeats", "3", "--out", str(out))
    assert "meV with emt" in text and "meV with dftb" in text
    assert "rank correlation of the sites' stiffness" in text
    with open(out / "reference_sites.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert all(float(r["hessian_de_reference"]) > 0 for r in rows)
    ratio = [float(r["hessian_de_model"]) / float(r["hessian_de_reference"]) for r in rows]
    assert [float(r["ratio"]) for r in rows] == pytest.approx(ratio)
