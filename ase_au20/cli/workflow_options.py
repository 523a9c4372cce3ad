"""Shared pieces of the workflow verbs: list options, calculator, output folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from ase_au20.models.registry import MODELS


def calc_option(default: str = "schnet"):
    """The ``--calc`` option of every workflow verb; its choices and help come from the
    model registry."""
    models = "; ".join(f"{e.name}: {e.summary}" for e in MODELS.values())
    return click.option(
        "--calc",
        "calc_spec",
        default=default,
        show_default=True,
        help=f"{models}; emt: ASE's EMT (quick checks); a trained model directory; or "
        "module:factory, any importable callable returning an ASE calculator "
        "(e.g. mace.calculators:mace_mp).",
    )


def parse_floats(text: str, name: str) -> tuple[float, ...]:
    """``"0.01,0.02"`` -> (0.01, 0.02); ``ValueError`` naming the option otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); ``ValueError`` naming the option otherwise."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def build_calculator(spec: str, device: str):
    """``make_calculator`` with load failures (e.g. no shipped model) turned into click errors."""
    from ase_au20.calculators.factory import make_calculator

    try:
        return make_calculator(spec, device=device)
    except (ValueError, OSError, RuntimeError, ImportError, KeyError) as exc:
        raise click.ClickException(f"cannot load calculator {spec!r}: {exc}") from exc


def check_writable(out_dir: Path) -> None:
    """Create ``out_dir`` and prove a file can be written there, before any long work."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise click.ClickException(f"--out {out_dir} is not writable: {exc}") from exc


def read_input_cluster(file: Path | None):
    """(atoms, output name, input label) of the cluster in FILE, or of the built-in Td Au20."""
    if file is None:
        from ase_au20.structures import au20_ground_state

        return au20_ground_state(), "au20-td", "built-in Td ground state"
    from ase_au20.workflows.inputs import read_cluster

    try:
        return read_cluster(file), file.stem, str(file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
