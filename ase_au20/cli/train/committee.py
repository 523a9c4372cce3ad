"""`au20-workflow train committee`: a weighted committee of trained models."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.dataclass_options import dataclass_options, settings_from
from ase_au20.cli.workflow_options import (
    db_option,
    model_out_option,
    quiet_option,
    staged_out,
)
from ase_au20.models.committee.config import CommitteeConfig


@click.command("committee")
@db_option("Isomer database whose calib rows calibrate (and by default weight) the committee.")
@dataclass_options(CommitteeConfig)
@model_out_option("Committee directory to write (card.json; members are referenced, not copied).")
@quiet_option
def train_committee_cmd(db_path: str, out: Path, overwrite: bool, **options: object) -> None:
    """Weighted committee of trained models: weights, conformal calibration, test score."""
    from ase_au20.models.committee.training import fit_committee

    config = settings_from(CommitteeConfig, options)
    try:
        with staged_out(out, overwrite) as stage:
            committee = fit_committee(db_path, stage, config)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    metrics = committee.card["metrics"]
    names = config.members
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, committee.weights, strict=True))
    click.echo(f"weights ({config.weight_split} MAE {metrics['weights']['mae']:.3f} eV): {weights}")
    if "test" in metrics:
        t = metrics["test"]
        interval = t["intervals"]["0.9"]["mondrian"]
        width = interval["mean_width"]  # None in the card: unattainable level, infinite
        click.echo(
            f"test (n={t['n']}): MAE {t['mae']:.3f}  RMSE {t['rmse']:.3f} eV; 90% interval "
            f"coverage {interval['coverage']:.3f}, mean width "
            f"{float('inf') if width is None else width:.2f} eV"
        )
    click.echo(f"committee written to {out}")
