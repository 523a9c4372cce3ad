"""`au20-workflow train krr`: SOAP + KRR with a group-aware CV over a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ase_au20.cli.dataclass_options import dataclass_options, settings_from
from ase_au20.cli.recipes import given_on_command_line, recipe_option
from ase_au20.cli.train.common import format_cv_table, print_scores
from ase_au20.cli.workflow_options import (
    db_option,
    model_out_option,
    quiet_option,
    staged_out,
)
from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH, KRRSearch


def _shipped_grid() -> str:
    """The shipped KRR's CV grid as the command-line options it sets, for --help."""
    from dataclasses import fields

    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return ",".join(f"{v:g}" for v in value)
        return value if isinstance(value, str) else f"{value:g}"

    return " ".join(
        f"{f.metadata.get('flag', '--' + f.name.replace('_', '-'))} "
        f"{text(getattr(SHIPPED_KRR_SEARCH, f.name))}"
        for f in fields(SHIPPED_KRR_SEARCH)
        if f.name != "gamma_scale"  # an RBF-kernel axis; the shipped kernel is the average one
    )


@click.command("krr")
@db_option("Isomer database built by `au20-workflow db build`.")
@model_out_option("Model directory to write (card.json, weights.npz, cv_table.csv).")
@recipe_option(
    "Starting grid: the defaults shown here (plain: a quick dense ζ=2 model, without the "
    "zero-force term, so with large forces at minima), or the "
    f"shipped model's ({_shipped_grid()}; about 5-9 min on 2 cores). Options given on the "
    "command line override either."
)
@dataclass_options(KRRSearch)
@quiet_option
def train_krr_cmd(
    db_path: str, out: Path, overwrite: bool, recipe: str, quiet: bool, **grid: Any
) -> None:
    """SOAP+KRR: group-aware 5-fold CV over the grid, refit, conformal calibration, test score."""
    from dataclasses import replace

    from ase_au20.models.krr.training import train_krr

    if recipe == "shipped":
        search = replace(SHIPPED_KRR_SEARCH, **given_on_command_line(grid))
    else:
        search = settings_from(KRRSearch, grid)
    click.echo(f"grid: {search.size()} CV fits")
    try:
        with staged_out(out, overwrite) as stage:
            result = train_krr(db_path, stage, search, progress=not quiet)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_cv_table(result.cv_table))
    print_scores(result.metrics)
    click.echo(f"model written to {out}")
