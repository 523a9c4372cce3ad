"""`au20-workflow select`: the unlabelled structures most worth a reference calculation."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    confidence_option,
    db_option,
    default_out,
    device_option,
    out_options,
    published,
    quiet_option,
    staged_out,
)


@click.command("select")
@db_option("ASE db holding unlabelled (search) rows", name="db_url")
@click.option(
    "--n", "n_select", default=20, show_default=True, type=int, help="structures to export"
)
@click.option(
    "--calcs",
    default="schnet,krr",
    show_default=True,
    help="comma-separated calculators whose disagreement is scored",
)
@click.option(
    "--energy-window",
    default=1.0,
    show_default=True,
    type=FINITE,
    help="eV above the lowest mean prediction; negative: no window",
)
@device_option
@out_options("select", "DB")
@confidence_option
@quiet_option
def select_cmd(
    db_url: str,
    n_select: int,
    calcs: str,
    energy_window: float,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
) -> None:
    """Export the --n unlabelled structures most worth a reference calculation (DFTB1, or
    your DFT), with a CSV of scores."""
    from ase_au20.workflows.select import select_from_db

    names = [name.strip() for name in calcs.split(",") if name.strip()]
    if not names:
        raise click.ClickException("--calcs needs at least one calculator")
    calculators = {name: build_calculator(name, device) for name in names}
    window = None if energy_window < 0 else energy_window
    out_dir = default_out(out_dir, "select", Path(db_url).stem)
    with staged_out(out_dir, overwrite) as stage:
        try:
            selection, files = select_from_db(db_url, calculators, n_select, stage, window)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    files = published(files, stage, out_dir)
    click.echo(
        f"pool {selection.pool_size}  within window {len(selection)}  "
        f"exported {min(n_select, len(selection))}  left out {selection.n_left_out} "
        "(already labelled or out of domain)"
    )
    click.echo(
        f"{'rank':>4} {'row':>6} {'score':>8} {'disagree':>9} {'epist.':>8} "
        f"{'±u':>7} {'ΔE':>7}  (eV)"
    )
    for rank in range(min(n_select, len(selection), 10)):
        click.echo(
            f"{rank:>4} {selection.row_ids[rank]:>6} {selection.score[rank]:>8.3f} "
            f"{selection.disagreement[rank]:>9.3f} {selection.epistemic_std[rank]:>8.3f} "
            f"{selection.conformal_half_width[rank]:>7.3f} {selection.relative_energy[rank]:>7.3f}"
        )
    click.echo(f"csv  {files['csv']}")
