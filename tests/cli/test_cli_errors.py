"""Anything a user can type or point at ends in one `Error:` line and a non-zero exit, never
a traceback; Ctrl-C says what was kept (red-team findings 9 and 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import run_cli
from click.testing import CliRunner

from ase_au20.cli import main


def _fails_in_one_line(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), result.output
    return lines[-1]


def test_a_truncated_sqlite_database(synthetic_db: Path, tmp_path: Path):
    broken = tmp_path / "broken.db"
    broken.write_bytes(synthetic_db.read_bytes()[:40_000])
    assert "database error" in _fails_in_one_line("db", "info", str(broken))
    out = str(tmp_path / "o")
    assert "database error" in _fails_in_one_line("analyze", "--db", str(broken), "--out", out)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ann:secret@127.0.0.1:1/au20",  # no server there
        "postgresql://ann@127.0.0.1:1/none",
    ],
)
def test_a_postgresql_server_that_is_not_there(url: str):
    line = _fails_in_one_line("db", "info", url)
    assert "database error" in line and "secret" not in line


def test_an_unknown_database_on_a_running_server(postgres_server_url: str):
    line = _fails_in_one_line("db", "info", f"{postgres_server_url}/no_such_database")
    assert "no_such_database" in line and "does not exist" in line


def test_an_unwritable_out(tmp_path: Path):
    assert "not writable" in _fails_in_one_line("relax", "--calc", "emt", "--out", "/proc/au20")


def test_a_scheduler_that_is_not_there(tmp_path: Path):
    from ase.io import write

    from ase_au20.structures import au20_ground_state

    write(tmp_path / "in.xyz", au20_ground_state())
    args = ["screen", str(tmp_path / "in.xyz"), "--calc", "emt", "--out", str(tmp_path / "o.db")]
    line = _fails_in_one_line(*args, "--scheduler", "tcp://127.0.0.1:9")
    assert "127.0.0.1:9" in line


def test_a_calc_factory_that_builds_no_calculator(tmp_path: Path):
    line = _fails_in_one_line(
        "relax", "--calc", "screen_calculators:needs_arguments", "--out", str(tmp_path / "r")
    )
    assert "needs_arguments() raised TypeError" in line
    line = _fails_in_one_line("relax", "--calc", "os:getcwd", "--out", str(tmp_path / "r"))
    assert "returned str, not an ASE calculator" in line


def test_a_base_calculator_from_a_factory_is_accepted(tmp_path: Path):
    """ASE's mixing calculators are BaseCalculators, not Calculators (finding 15)."""
    out = tmp_path / "relax"
    spec = "screen_calculators:summed_emt"
    text = run_cli("relax", "--calc", spec, "--fmax", "5", "--out", str(out))
    assert "converged   True" in text and (out / "au20-td-relax.h5").is_file()


def test_sensitivity_on_a_database_without_labels(tmp_path: Path):
    from ase_au20.database import connect
    from ase_au20.structures import au20_ground_state

    db = tmp_path / "empty.db"
    connect(db).write(au20_ground_state(), pred_energy=1.0)
    out = str(tmp_path / "s")
    line = _fails_in_one_line("sensitivity", "--db", str(db), "--cluster-id", "0", "--out", out)
    assert line == f"Error: {db} holds no labelled isomers (build one with `db build`)"


def test_ctrl_c_is_one_line_saying_what_was_kept(monkeypatch, tmp_path: Path):
    import ase_au20.workflows.relax as relax_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(relax_module, "run_relax", interrupted)
    result = CliRunner().invoke(main, ["relax", "--calc", "emt", "--out", str(tmp_path / "r")])
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1].startswith("Interrupted (Ctrl-C): ")


@pytest.mark.parametrize(
    "args",
    [
        ["relax", "--calc", "emt", "--fmax", "nan"],
        ["md", "--calc", "emt", "--temperature", "nan"],
        ["md", "--calc", "emt", "--timestep", "inf"],
        ["search", "--calc", "emt", "--fmax", "nan"],
        ["sensitivity", "--calc", "emt", "--sigmas", "0.01,nan"],
    ],
)
def test_non_finite_numeric_options_are_refused(args, tmp_path: Path):
    """--fmax nan ran every step and a search exited 0 (red-team finding 14)."""
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 or "finite" in result.output, result.output
    assert "finite" in result.output and not (tmp_path / "o").exists()


def test_the_workflow_functions_refuse_nan_too():
    from ase.calculators.emt import EMT

    from ase_au20.structures import au20_ground_state
    from ase_au20.workflows.relax import relax

    with pytest.raises(ValueError, match="fmax must be positive"):
        relax(au20_ground_state(), EMT(), fmax=float("nan"))
