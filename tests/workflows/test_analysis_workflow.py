"""The analyze workflow end to end: values, HDF5 schema, files, CLI errors, real data."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import run_cli
from click.testing import CliRunner
from scipy import stats

from ase_au20.cli import main
from ase_au20.database import load_rows
from ase_au20.workflows.analysis import delta_e_statistics, lowest_distinct, run_analysis
from ase_au20.workflows.analysis_report import write_outputs
from ase_au20.workflows.results import read_results

FILES = (
    "analysis.h5",
    "energy_distribution.png",
    "rdf.png",
    "ground_state.xyz",
    "lowest_isomers.csv",
)


@pytest.fixture(scope="module")
def analysis(synthetic_db: Path):
    isomers = load_rows(synthetic_db)
    return isomers, run_analysis(isomers, n_lowest=5, progress=False)


def test_statistics_match_scipy() -> None:
    values = np.array([0.0, 0.5, 1.0, 1.5, 4.0, 9.0])
    s = delta_e_statistics(values, np.array([0, 1, 1, 2, 3, 4]))
    assert s["count"] == 6 and s["n_distinct"] == 5
    assert s["std"] == pytest.approx(values.std(ddof=1))
    assert s["q25"] == pytest.approx(np.percentile(values, 25))
    assert s["skewness"] == pytest.approx(stats.skew(values))
    assert s["kurtosis"] == pytest.approx(stats.kurtosis(values))
    with pytest.raises(ValueError, match="at least two"):
        delta_e_statistics(values[:1], np.array([0]))


def test_lowest_distinct_keeps_one_copy_per_group() -> None:
    energies = np.array([-3.0, -2.9999, -1.0, -2.0, -2.5])
    groups = np.array([7, 7, 2, 3, 7])
    assert lowest_distinct(energies, groups, 10).tolist() == [0, 3, 2]
    assert lowest_distinct(energies, groups, 2).tolist() == [0, 3]


def test_analysis_of_synthetic_set(analysis) -> None:
    isomers, result = analysis
    assert result.statistics["count"] == len(isomers)
    assert result.statistics["n_distinct"] == len(np.unique(isomers.groups))
    lowest = result.lowest
    assert len(lowest) == 5
    assert lowest["dup_group"].is_unique
    assert np.all(np.diff(lowest["energy"]) >= 0)
    assert lowest["energy"].iloc[0] == pytest.approx(isomers.energies.min())
    assert 2.5 < result.cutoff < 3.6  # Au-Au first shell ends here for any sane cluster
    assert set(lowest["point_group"]) <= {"C1", "Cs", "C2", "Ci"}  # random EMT clusters
    assert np.all((lowest["surface_share"] > 0) & (lowest["surface_share"] <= 1))


def test_outputs_and_hdf5_schema(analysis, tmp_path: Path) -> None:
    _, result = analysis
    write_outputs(result, tmp_path, {"db": "synthetic"})
    for name in FILES:
        assert (tmp_path / name).stat().st_size > 0, name
    arrays, attrs = read_results(tmp_path / "analysis.h5")
    assert attrs["parameters"] == {"db": "synthetic"}
    assert {"model_card", "ase_au20_version", "created"} <= set(attrs)
    assert arrays["statistics/count"] == result.statistics["count"]
    np.testing.assert_array_equal(arrays["lowest/point_group"], result.lowest["point_group"])
    assert float(arrays["rdf/cutoff"]) == result.cutoff
    with h5py.File(tmp_path / "analysis.h5") as h5:
        assert h5["rdf/r"].attrs["units"] == "Å"
        assert h5["statistics/mean"].attrs["units"] == "eV"
        no_units = []
        h5.visititems(
            lambda name, obj: (
                no_units.append(name)
                if isinstance(obj, h5py.Dataset) and "units" not in obj.attrs
                else None
            )
        )
    assert no_units == []


def test_cli_writes_every_file_and_prints_a_table(synthetic_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    result = CliRunner().invoke(
        main, ["analyze", "--db", str(synthetic_db), "--out", str(out), "--n-lowest", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "ΔE statistics" in result.output and "PG" in result.output
    for name in FILES:
        assert (out / name).is_file(), name


def test_cli_errors(tmp_path: Path, synthetic_db: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        main, ["analyze", "--db", str(tmp_path / "no.db"), "--out", str(tmp_path)]
    )
    assert missing.exit_code != 0 and "database not found" in missing.output
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    unwritable = runner.invoke(
        main, ["analyze", "--db", str(synthetic_db), "--out", str(blocker / "sub")]
    )
    assert unwritable.exit_code != 0 and "not writable" in unwritable.output


@pytest.mark.data
def test_lowest_shared_isomer_is_td(real_db: Path) -> None:
    result = run_analysis(load_rows(real_db), n_lowest=2, progress=False)
    first = result.lowest.iloc[0]
    assert first["cluster_id"] == 350
    assert first["point_group"] == "Td"
    assert first["delta_e"] == pytest.approx(0.0)
    assert 2.8 < result.cutoff < 3.4


def test_analyze_asks_a_model_which_isomer_could_be_the_ground_state(
    real_db: Path, tmp_path: Path, shipped_model
) -> None:
    out = tmp_path / "an"
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "--db",
            str(real_db),
            "--n-lowest",
            "4",
            "--calc",
            str(shipped_model("krr")),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "which could be the ground state" in result.output
    with (out / "ground_state_contest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and float(rows[0]["label_gap"]) == 0.0
    assert float(rows[0]["p_lower"]) == pytest.approx(0.5, abs=0.02)
    for row in rows:
        assert float(row["gap_lo"]) <= float(row["model_gap"]) <= float(row["gap_hi"])
        assert row["in_domain"] == "True"


def test_ground_state_contest_with_a_calculator_without_pair_calibration(analysis) -> None:
    from ase.calculators.emt import EMT

    from ase_au20.workflows.analysis import ground_state_contest

    table = ground_state_contest(EMT(), analysis[1])
    assert list(table.columns) == ["cluster_id", "label_gap", "model_gap"]
    assert table["model_gap"].iloc[0] == 0.0 and table["label_gap"].iloc[0] == 0.0


@pytest.mark.data
def test_analyze_with_the_reference_agrees_with_the_labels(real_db: Path, tmp_path: Path) -> None:
    """Task 2 rechecked (issue 39, item 5): DFTB1 re-evaluates the lowest isomers to 1e-4
    eV of their labels, in the same order: the database is the reference's."""
    import csv

    out = tmp_path / "an"
    args = ["analyze", "--db", str(real_db), "--n-lowest", "5", "--reference", "dftb"]
    text = run_cli(*args, "--out", str(out))
    assert "the same order" in text
    with open(out / "reference_check.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["cluster_id"]) for r in rows][0] == 350  # the Td pyramid
    assert max(abs(float(r["difference"])) for r in rows) < 1e-4
    assert all(abs(float(r["reference_gap"]) - float(r["label_gap"])) < 1e-4 for r in rows)
