"""`au20-workflow train krr`: SOAP + KRR with a group-aware CV over a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ase_au20.cli.dataclass_options import FLOATS, INTS
from ase_au20.cli.recipes import given_on_command_line, recipe_option
from ase_au20.cli.train.common import format_cv_table, print_scores
from ase_au20.cli.workflow_options import (
    FINITE,
    db_option,
    model_out_option,
    quiet_option,
    staged_out,
)


def _shipped_grid() -> str:
    """The shipped KRR's CV grid as the command-line options it sets, for --help."""
    from dataclasses import fields

    from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH

    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return ",".join(f"{v:g}" for v in value)
        return value if isinstance(value, str) else f"{value:g}"

    flags = {f.name: "--" + f.name.replace("_", "-") for f in fields(SHIPPED_KRR_SEARCH)}
    flags.update(lam="--lambda")
    del flags["gamma_scale"]  # an RBF-kernel axis; the shipped kernel is the average one
    return " ".join(
        f"{flag} {text(getattr(SHIPPED_KRR_SEARCH, name))}" for name, flag in flags.items()
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
@click.option(
    "--kernel",
    type=click.Choice(["average", "rbf"]),
    default="average",
    show_default=True,
    help="average: local-environment kernel; rbf: pooled SOAP.",
)
@click.option("--r-cut", type=FLOATS, default="7.0", show_default=True, help="SOAP cutoffs (Å).")
@click.option("--n-max", type=INTS, default="6", show_default=True, help="Radial basis sizes.")
@click.option("--l-max", type=INTS, default="4", show_default=True, help="Angular basis sizes.")
@click.option(
    "--sigma", type=FLOATS, default="0.3,0.5", show_default=True, help="Gaussian widths (Å)."
)
@click.option(
    "--zeta",
    type=INTS,
    default="2",
    show_default=True,
    help="Average-kernel powers (2 stores a tiny F×F matrix and is fastest).",
)
@click.option(
    "--gamma-scale",
    type=FLOATS,
    default="0.3,1,3",
    show_default=True,
    help="RBF γ in units of 1/median squared descriptor distance.",
)
@click.option(
    "--lambda",
    "lam",
    type=FLOATS,
    default="1e-4,3e-5,1e-5,3e-6,1e-6",
    show_default=True,
    help="Ridge regularisation (per-atom energy scale).",
)
@click.option(
    "--outlier-weight",
    type=FLOATS,
    default="1.0",
    show_default=True,
    help="Sample weight(s) of rows flagged is_outlier (1 = no down-weighting).",
)
@click.option(
    "--n-sparse",
    type=int,
    default=0,
    show_default=True,
    help="Sparse environments for ζ ≠ 2 (0: use all training environments).",
)
@click.option(
    "--zero-force-weight",
    type=FLOATS,
    default="0",
    show_default=True,
    help="μ of the zero-force term (sparse models): DFTB1 minima have F ≈ 0.",
)
@click.option(
    "--force-tolerance",
    type=FINITE,
    default=None,
    help="Pick the best CV MAE among rows with held-out mean |F| ≤ this (eV/Å).",
)
@quiet_option
def train_krr_cmd(
    db_path: str, out: Path, overwrite: bool, recipe: str, quiet: bool, **grid: Any
) -> None:
    """SOAP+KRR: group-aware 5-fold CV over the grid, refit, conformal calibration, test score."""
    from dataclasses import replace

    from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH, KRRSearch
    from ase_au20.models.krr.training import train_krr

    if recipe == "shipped":
        search = replace(SHIPPED_KRR_SEARCH, **given_on_command_line(grid))
    else:
        search = KRRSearch(**grid)
    click.echo(f"grid: {search.size()} CV fits")
    try:
        with staged_out(out, overwrite) as stage:
            result = train_krr(db_path, stage, search, progress=not quiet)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_cv_table(result.cv_table))
    print_scores(result.metrics)
    click.echo(f"model written to {out}")
