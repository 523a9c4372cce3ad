"""Ctrl-C keeps finished work: a search's minima so far, an MD run's streamed trajectory
(red-team finding 10)."""

from __future__ import annotations

from pathlib import Path

from ase.io import read
from click.testing import CliRunner

from ase_au20.cli import main

SPEC = "screen_calculators:interrupting_emt"


def _interrupted(args: list[str], monkeypatch, at: int) -> str:
    monkeypatch.setenv("INTERRUPT_AT", str(at))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Interrupted (Ctrl-C): "), result.output
    return last


def test_an_interrupted_search_keeps_the_minima_it_found(tmp_path: Path, monkeypatch):
    out = tmp_path / "search"
    args = ["search", "--calc", SPEC, "--method", "multistart", "--runs", "1", "--steps", "50"]
    last = _interrupted([*args, "--out", str(out), "--scheduler", "none"], monkeypatch, 400)
    kept = tmp_path / "search.interrupted"
    assert str(kept) in last and not out.exists()
    minima = read(kept / "minima-interrupted.xyz", ":")
    assert 1 <= len(minima) < 50
    assert all(m.info["predicted_by"] for m in minima)


def test_an_interrupted_md_run_keeps_its_trajectory(tmp_path: Path, monkeypatch):
    out = tmp_path / "md"
    args = ["md", "--calc", SPEC, "--steps", "200", "--out", str(out)]
    last = _interrupted(args, monkeypatch, 60)
    kept = tmp_path / "md.interrupted"
    assert str(kept) in last
    (traj,) = kept.glob("*.traj")
    assert 10 < len(read(traj, ":")) < 200
