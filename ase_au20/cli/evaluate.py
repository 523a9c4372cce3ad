"""`au20-workflow evaluate`: a model on a split, or on any structures against the reference."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    build_calculator,
    confidence_option,
    db_option,
    default_out,
    device_option,
    out_options,
    quiet_option,
    reference_option,
    staged_out,
)


@click.command("evaluate")
@click.argument("model")
@click.argument("structures", nargs=-1)
@db_option("Isomer database with the split to score (without STRUCTURES).", required=False)
@click.option(
    "--split",
    default="test",
    show_default=True,
    type=click.Choice(["train", "val", "calib", "test"]),
    help="Rows to score (without STRUCTURES).",
)
@reference_option(
    "Score MODEL on STRUCTURES against this calculator instead of the database's labels "
    "(dftb by default with STRUCTURES)",
    name="reference",
)
@device_option
@out_options("evaluate", "MODEL")
@confidence_option
@quiet_option
def evaluate(
    model: str,
    structures: tuple[str, ...],
    db_path: str | None,
    split: str,
    reference: str | None,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Score MODEL (a registered name: schnet, krr, xtb-delta, committee, dftb; or a model
    directory): metrics.json, parity.png, residuals_by_bucket.png, intervals.png.

    Rows the model was trained or calibrated on (the ids in its card) are left out and
    counted, so the figures are those of structures it never saw.

    With STRUCTURES (files, file@index such as md.traj@:, folders, db.db@selection), each
    one a family, MODEL (any --calc spec) is scored against --reference (DFTB1 by default)
    on them instead: energy and force errors, interval coverage and width, in-domain
    share per family (reference_metrics.json, parity_reference.png).
    """
    out = default_out(out_dir, "evaluate", Path(model).name)
    if structures or reference is not None:
        _evaluate_against_reference(
            model, structures, reference or "dftb", device, out, overwrite, quiet
        )
        return
    if db_path is None:
        raise click.UsageError("give --db (a split of its labels) or STRUCTURES to score on")
    from ase_au20.models import model_directory
    from ase_au20.models.evaluate import evaluate_model, format_table

    try:
        directory = model_directory(model)
        if not directory.is_dir():
            raise ValueError(f"{model!r} is neither a registered model nor a model directory")
        with staged_out(out, overwrite) as stage:
            metrics = evaluate_model(directory, db_path, stage, split=split)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_table(metrics))
    click.echo(f"wrote metrics.json and plots to {out}")


def _evaluate_against_reference(
    model: str,
    structures: tuple[str, ...],
    reference: str,
    device: str,
    out: Path,
    overwrite: bool,
    quiet: bool,
) -> None:
    """``evaluate MODEL STRUCTURES… --reference SPEC``: one scored family per source."""
    from ase_au20.workflows.reference_check import (
        format_families,
        score_against_reference,
        write_report,
    )

    if not structures:
        raise click.UsageError("--reference scores MODEL on STRUCTURES: name at least one")
    calc = build_calculator(model, device)
    truth = build_calculator(reference, "cpu")
    try:
        with staged_out(out, overwrite) as stage:
            families = score_against_reference(calc, truth, structures, progress=not quiet)
            metrics = write_report(families, stage, {"model": model, "reference": reference})
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_families(metrics))
    click.echo(f"wrote reference_metrics.json and parity_reference.png to {out}")
