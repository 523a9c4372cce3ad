"""One CLI convention: the shared options have the same names, types and help on every verb
(issue 40: `--db` was typed three ways and refused a postgresql:// URL in sensitivity,
`--device` was declared eight times, three verbs had their own `--quiet`)."""

from __future__ import annotations

import click
import pytest

from ase_au20.cli import main
from ase_au20.cli.workflow_options import DatabaseURL


def _commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    """Every verb and sub-verb of ``au20-workflow``, by its full name."""
    out = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out |= _commands(command, full + " ")
        else:
            out[full] = command
    return out


def _option(command: click.Command, flag: str) -> click.Option | None:
    return next((p for p in command.params if flag in getattr(p, "opts", ())), None)


COMMANDS = _commands()


def test_every_db_option_takes_a_file_or_a_server_url() -> None:
    with_db = {name: _option(c, "--db") for name, c in COMMANDS.items() if _option(c, "--db")}
    assert {"analyze", "sensitivity", "select", "search", "db add", "web"} <= set(with_db)
    for name, option in with_db.items():
        assert isinstance(option.type, DatabaseURL), name
        assert option.type.convert("postgresql://ann@db.example/au20", option, None)


@pytest.mark.parametrize("flag", ["--device", "--quiet"])
def test_a_shared_option_is_the_same_everywhere(flag: str) -> None:
    declared = {
        name: (tuple(o.opts), tuple(o.secondary_opts), o.default, o.help, o.is_flag)
        for name, c in COMMANDS.items()
        if (o := _option(c, flag)) is not None
    }
    assert len(declared) >= (6 if flag == "--device" else 10)
    assert len(set(declared.values())) == 1, declared


def test_every_verb_that_reports_an_interval_takes_confidence() -> None:
    with_calc = {n for n, c in COMMANDS.items() if _option(c, "--calc") or n == "evaluate"}
    assert {"relax", "md", "search", "screen", "sensitivity", "analyze", "evaluate"} <= with_calc
    missing = {n for n in with_calc - {"label"} if _option(COMMANDS[n], "--confidence") is None}
    assert missing == set()
    assert _option(COMMANDS["select"], "--confidence") is not None


def test_confidence_reaches_the_calculator(tmp_path, shipped_model) -> None:
    """The interval a relaxation records is the one at --confidence (0.9 was fixed)."""
    import numpy as np
    from ase.io import read
    from cli_helpers import run_cli

    shipped_model("krr")
    widths = {}
    for level in ("0.5", "0.95"):
        out = tmp_path / level
        args = ["--confidence", level, "--fmax", "5", "--out", str(out)]
        run_cli("relax", "--calc", "krr", *args)
        frames = read(out / "au20-td-relax.traj", ":")
        widths[level] = np.mean([f.info["energy_uncertainty"] for f in frames])
    assert widths["0.5"] < 0.6 * widths["0.95"]
