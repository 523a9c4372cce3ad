"""`au20-workflow train committee`: a weighted committee of trained models."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    db_option,
    model_out_option,
    quiet_option,
    staged_out,
)


@click.command("committee")
@db_option("Isomer database whose calib rows calibrate (and by default weight) the committee.")
@click.option(
    "--members",
    default="krr,schnet",
    show_default=True,
    help="Comma-separated members: registered model names (the shipped models) or trained "
    "model directories.",
)
@click.option(
    "--weight-split",
    type=click.Choice(["val", "calib"]),
    default="calib",
    show_default=True,
    help="Rows whose MAE picks the weights (val is in-sample for a KRR trained on train+val).",
)
@model_out_option("Committee directory to write (card.json; members are referenced, not copied).")
@quiet_option
def train_committee_cmd(
    db_path: str, members: str, weight_split: str, out: Path, overwrite: bool
) -> None:
    """Weighted committee of trained models: weights, conformal calibration, test score."""
    from ase_au20.models.committee.training import fit_committee

    names = [m.strip() for m in members.split(",") if m.strip()]
    try:
        with staged_out(out, overwrite) as stage:
            committee = fit_committee(db_path, stage, names, weight_split=weight_split)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    metrics = committee.card["metrics"]
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, committee.weights, strict=True))
    click.echo(f"weights ({weight_split} MAE {metrics['weights']['mae']:.3f} eV): {weights}")
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
