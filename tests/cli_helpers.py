"""Running ``au20-workflow`` verbs in tests, and the tiny KRR recipe they train with."""

from __future__ import annotations

from click.testing import CliRunner

from ase_au20.cli import main

TINY_KRR = ["--r-cut", "5", "--n-max", "3", "--l-max", "2", "--sigma", "0.5", "--zeta", "2"]
TINY_KRR += ["--lambda", "1e-3", "--quiet"]


def run_cli(*args: str) -> str:
    """The output of a verb that must succeed (its output is the assertion message)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output
