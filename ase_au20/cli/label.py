"""`au20-workflow label`: labels from an oracle calculator, ready for `db add`."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    default_out,
    out_options,
    quiet_option,
    staged_out,
)


@click.command("label")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--calc",
    "calc_spec",
    required=True,
    help="The oracle: dftb (DFTB1 with the auorg-1-1 tables, the level of theory of the "
    "shipped labels: exact, ~7 ms a structure), any ASE calculator as module:factory (a DFT "
    "code through ASE), or emt for quick checks; the other ase-au20 models are refused "
    "(their energies are predictions).",
)
@click.option(
    "--single-point", is_flag=True, help="Evaluate each structure as it is instead of relaxing."
)
@click.option("--fmax", default=0.05, show_default=True, type=FINITE, help="relaxation, eV/Å")
@click.option("--steps", default=200, show_default=True, type=int, help="maximum BFGS steps")
@out_options("label", "SOURCE")
@quiet_option
def label_cmd(
    sources: tuple[str, ...],
    calc_spec: str,
    single_point: bool,
    fmax: float,
    steps: int,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Label structures (e.g. a `select` folder) with an oracle calculator for `db add`.

    SOURCES are folders (their xyz/extxyz/traj files), files (FILE@INDEX) or database rows
    (URL@SELECTION). Each structure is relaxed (or evaluated with --single-point) and
    written to --out as extended xyz with energy= and forces, ready for
    `au20-workflow db add OUT --db DB`.
    """
    from ase_au20.workflows.label import label_structures

    calc = build_calculator(calc_spec, "cpu")
    out_dir = default_out(out_dir, "label", Path(sources[0].split("@")[0]).name)
    with staged_out(out_dir, overwrite) as stage:
        try:
            report = label_structures(
                list(sources),
                calc,
                stage,
                calc_spec,
                single_point=single_point,
                fmax=fmax,
                steps=steps,
                progress=not quiet,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    for name, reason in report.failed:
        click.echo(f"warning: {name}: the oracle failed ({reason})", err=True)
    for name in report.not_converged:
        click.echo(f"warning: {name}: not converged to fmax={fmax} eV/Å in {steps} steps", err=True)
    click.echo(f"labelled {len(report.files)} structure(s) into {out_dir}")
    if report.energies:
        click.echo(f"energies {min(report.energies):.6f} to {max(report.energies):.6f} eV")
    click.echo(f"next: au20-workflow db add {out_dir} --db DB")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} structure(s) could not be labelled")
