"""`au20-workflow train xtb-delta`: GFN1-xTB plus a KRR on its residual."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.train.common import format_cv_table, print_scores
from ase_au20.cli.workflow_options import (
    db_option,
    model_out_option,
    quiet_option,
    staged_out,
)


@click.command("xtb-delta")
@db_option("Isomer database built by `au20-workflow db build`.")
@model_out_option("Model directory to write (card.json, weights.npz, cv_table.csv).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the GFN1-xTB single points [default: the usable cores].",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="GFN1 results cache [default: $AU20_CACHE/xtb or ~/.cache/ase-au20/xtb].",
)
@quiet_option
def train_xtb_delta_cmd(
    db_path: str,
    out: Path,
    overwrite: bool,
    workers: int | None,
    cache_dir: Path | None,
    quiet: bool,
) -> None:
    """GFN1-xTB + Δ-KRR: GFN1 single points of every row (cached), group-aware CV of the Δ
    over the shipped grid (zero-force term on the GFN1 forces), refit, calibration, test."""
    from ase_au20.models.xtb_delta.cache import BaselineCache
    from ase_au20.models.xtb_delta.training import SHIPPED_DELTA_SEARCH, train_xtb_delta

    try:
        with staged_out(out, overwrite) as stage:
            result = train_xtb_delta(
                db_path,
                stage,
                SHIPPED_DELTA_SEARCH,
                cache=BaselineCache(cache_dir),
                workers=workers,
                progress=not quiet,
            )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_cv_table(result.cv_table))
    print_scores(result.metrics)
    click.echo(f"model written to {out}")
