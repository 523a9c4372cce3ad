"""`au20-workflow train krr` and `au20-workflow evaluate`: files, schema, tables, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ase_au20.cli import main

TINY = [
    "--r-cut",
    "5",
    "--n-max",
    "3",
    "--l-max",
    "2",
    "--sigma",
    "0.5",
    "--zeta",
    "2,3",
    "--lambda",
    "1e-3,1e-5",
    "--quiet",
]


@pytest.fixture(scope="module")
def trained(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cli") / "krr"
    result = CliRunner().invoke(
        main,
        ["train", "krr", "--db", str(synthetic_db), "--out", str(out), *TINY[:-1]],
    )  # without --quiet, which leaves the summary out as on every verb
    assert result.exit_code == 0, result.output
    return out, result.output


def test_train_krr_writes_model_and_cv_table(trained: tuple[Path, str]) -> None:
    out, output = trained
    assert {"card.json", "weights.npz", "cv_table.csv"} <= {p.name for p in out.iterdir()}
    with open(out / "cv_table.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 4  # ζ ∈ {2, 3} × λ ∈ {1e-3, 1e-5}
    maes = [float(r["cv_mae"]) for r in table]
    assert maes == sorted(maes)  # best first
    card = json.loads((out / "card.json").read_text())
    assert card["hyperparameters"]["zeta"] == int(table[0]["zeta"])
    assert card["hyperparameters"]["lambda"] == float(table[0]["lambda"])
    assert "grid: 4 CV fits" in output
    assert "best CV MAE" in output and "test (n=" in output


def test_evaluate_writes_metrics_schema_and_plots(
    trained: tuple[Path, str], synthetic_db: Path, tmp_path: Path
) -> None:
    out, _ = trained
    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--db", str(synthetic_db), "--out", str(tmp_path / "eval")]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["model_type"] == "krr"
    overall = metrics["overall"]
    assert set(overall) == {"n", "mae", "rmse", "r2", "max_error"}
    assert 0 < overall["mae"] <= overall["rmse"] <= overall["max_error"]
    assert sum(m["n"] for m in metrics["by_bucket"].values()) == overall["n"]
    n_calib = json.loads((out / "card.json").read_text())["conformal"]["n_calib"]
    for alpha in (0.1, 0.2):
        entry = metrics["conformal"][f"alpha={alpha:g}"]["global"]
        if (n_calib + 1) * (1 - alpha) > n_calib:  # level unattainable: infinite interval
            assert entry == {"coverage": 1.0, "mean_width": None}
        else:
            assert 0.0 <= entry["coverage"] <= 1.0 and entry["mean_width"] > 0
    for name in ("parity.png", "residuals_by_bucket.png", "intervals.png"):
        assert (tmp_path / "eval" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics["mean_abs_force"] > 0
    assert "MAE" in result.output and "coverage" in result.output and "mean |F|" in result.output


def test_errors_exit_non_zero(trained: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = trained
    bad_grid = CliRunner().invoke(
        main,
        [
            "train",
            "krr",
            "--db",
            str(out / "card.json"),
            "--out",
            str(tmp_path / "x"),
            "--sigma",
            "a,b",
        ],
    )
    assert bad_grid.exit_code == 2 and "comma-separated list of float" in bad_grid.output
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    result = CliRunner().invoke(
        main, ["evaluate", str(not_a_model), "--db", str(out / "card.json")]
    )
    assert result.exit_code == 1 and "no model card" in result.output


def test_train_krr_shipped_recipe_keeps_its_grid_under_overrides(
    synthetic_db: Path, tmp_path: Path
) -> None:
    """--recipe shipped starts from the shipped grid; options given beside it replace axes."""
    from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH

    overrides = ["--r-cut", "5", "--n-max", "3", "--l-max", "2", "--sigma", "0.5"]
    overrides += ["--zeta", "3", "--lambda", "1e-3", "--outlier-weight", "1", "--n-sparse", "40"]
    args = ["train", "krr", "--db", str(synthetic_db), "--out", str(tmp_path / "krr")]
    result = CliRunner().invoke(main, [*args, "--recipe", "shipped", *overrides])
    assert result.exit_code == 0, result.output
    n_mu = len(SHIPPED_KRR_SEARCH.zero_force_weight)
    assert f"grid: {n_mu} CV fits" in result.output  # μ axis kept from the shipped grid
    with open(tmp_path / "krr" / "cv_table.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {float(r["zero_force_weight"]) for r in table} == set(
        SHIPPED_KRR_SEARCH.zero_force_weight
    )
    assert {float(r["r_cut"]) for r in table} == {5.0}  # overridden axis
    card = json.loads((tmp_path / "krr" / "card.json").read_text())
    assert card["metrics"]["cv"]["force_tolerance"] == SHIPPED_KRR_SEARCH.force_tolerance


def test_cli_import_stays_light() -> None:
    """`au20-workflow --help` imports no numerical stack: the shipped grid shown in
    `train krr --help` comes from a module without numpy, dscribe or database imports."""
    import subprocess
    import sys

    code = "import json, sys, ase_au20.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"numpy", "torch", "dscribe", "ase.db", "ase_au20.models.krr.training"}


def test_train_krr_refuses_a_bad_soap_setting_before_reading_the_database(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-database.db"
    empty.write_text("")  # click accepts the path; the SOAP check must come first
    args = ["train", "krr", "--db", str(empty), "--out", str(tmp_path / "krr")]
    result = CliRunner().invoke(main, [*args, "--r-cut", "0.5", "--quiet"])
    assert result.exit_code != 0
    assert "radial cutoff should be bigger than 1 angstrom" in result.output


def test_evaluate_takes_a_registered_name_and_writes_beside_the_user(
    synthetic_db, tmp_path, monkeypatch, shipped_model
) -> None:
    from ase_au20.paths import PRETRAINED_DIR

    shipped_model("committee")
    before = sorted(p.name for p in (PRETRAINED_DIR / "committee").iterdir())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evaluate", "committee", "--db", str(synthetic_db)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "evaluate-committee" / "metrics.json").is_file()
    assert sorted(p.name for p in (PRETRAINED_DIR / "committee").iterdir()) == before
    bad = CliRunner().invoke(main, ["evaluate", "gaussian", "--db", str(synthetic_db)])
    assert bad.exit_code == 1 and "neither a registered model nor a model directory" in bad.output


def test_evaluate_leaves_out_rows_the_model_has_seen(
    trained: tuple[Path, str], synthetic_xyz_dir: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    from ase_au20.database import build_database, load_rows

    out, _ = trained
    card = json.loads((out / "card.json").read_text())
    seen = set(card["training_ids"]) | set(card["calibration_ids"])
    reshuffled = tmp_path / "seed7.db"  # same isomers, another split: its test rows overlap
    build_database(synthetic_xyz_dir, reshuffled, seed=7)
    test_ids = set(load_rows(reshuffled, "test").ids.tolist())
    overlap = len(test_ids & seen)
    assert 0 < overlap < len(test_ids)
    result = CliRunner().invoke(
        main, ["evaluate", str(out), "--db", str(reshuffled), "--out", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["n_left_out_seen"] == overlap
    assert metrics["overall"]["n"] == len(test_ids) - overlap
    assert f"left out {overlap} row(s) the model was trained or calibrated on" in result.output
    refused = CliRunner().invoke(  # the training db's own train rows: all seen
        main,
        [
            "evaluate",
            str(out),
            "--db",
            str(synthetic_db),
            "--split",
            "train",
            "--out",
            str(tmp_path / "t"),
        ],
    )
    assert refused.exit_code == 1 and "nothing unseen to score" in refused.output
    assert not (tmp_path / "t").exists()
