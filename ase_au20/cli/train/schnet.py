"""`au20-workflow train schnet`: train, calibrate and save a SchNet model (or ensemble)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ase_au20.cli.recipes import given_on_command_line, recipe_option
from ase_au20.cli.workflow_options import (
    FINITE,
    db_option,
    device_option,
    model_out_option,
    quiet_option,
    staged_out,
)


def _default(name: str) -> object:
    """Default of a SchNetConfig field (the plain recipe), read without importing torch."""
    import dataclasses

    from ase_au20.models.schnet.config import SchNetConfig

    return {f.name: f.default for f in dataclasses.fields(SchNetConfig)}[name]


def _shipped_changes() -> str:
    """The shipped recipe as the command-line options it sets, for --help."""
    from ase_au20.models.schnet.config import SHIPPED_RECIPE

    return " ".join(
        f"--{name.replace('_', '-')} {value:g}" for name, value in SHIPPED_RECIPE.items()
    )


@click.command("schnet")
@db_option("Isomer database built by `au20-workflow db build`.")
@model_out_option("Model directory to write (card.json, member_<k>.pt).")
@recipe_option(
    "Starting hyper-parameters: the defaults shown here (plain), or those of the shipped "
    f"model ({_shipped_changes()}; needs --teacher). Options given on the command line "
    "override either."
)
@click.option(
    "--epochs",
    type=int,
    default=_default("epochs"),
    show_default=True,
    help="Most passes over the training rows (early stopping may end sooner).",
)
@click.option(
    "--batch-size",
    type=int,
    default=_default("batch_size"),
    show_default=True,
    help="Structures per optimiser step.",
)
@click.option(
    "--lr", type=FINITE, default=_default("lr"), show_default=True, help="AdamW learning rate."
)
@click.option(
    "--hidden",
    type=int,
    default=_default("hidden"),
    show_default=True,
    help="Features per atom in every interaction block.",
)
@click.option(
    "--blocks",
    type=int,
    default=_default("blocks"),
    show_default=True,
    help="Interaction blocks (message-passing steps).",
)
@click.option(
    "--rbf",
    type=int,
    default=_default("rbf"),
    show_default=True,
    help="Gaussian radial basis functions between 0 and --cutoff.",
)
@click.option(
    "--cutoff",
    type=FINITE,
    default=_default("cutoff"),
    show_default=True,
    help="Interaction cutoff (Å): atoms farther apart do not interact.",
)
@click.option(
    "--gamma",
    type=FINITE,
    default=_default("gamma"),
    show_default=True,
    help="Gaussian RBF exponent (Å⁻²): exp(-gamma (d - mu)²).",
)
@click.option(
    "--repulsion-radius",
    type=FINITE,
    default=_default("repulsion_radius"),
    show_default=True,
    help="Å; fixed pair prior k·(r − d)³ below this distance (0: none).",
)
@click.option(
    "--repulsion-strength",
    type=FINITE,
    default=_default("repulsion_strength"),
    show_default=True,
    help="k of the repulsion prior (eV/Å³).",
)
@click.option(
    "--kd-lambda",
    type=FINITE,
    default=_default("kd_lambda"),
    show_default=True,
    help="Weight of the teacher's energies vs the DFTB1 labels on training rows (0..1).",
)
@click.option(
    "--kd-atom-weight",
    type=FINITE,
    default=_default("kd_atom_weight"),
    show_default=True,
    help="Weight of the teacher's per-atom energies (mean squared error per atom).",
)
@click.option(
    "--kd-force-weight",
    type=FINITE,
    default=_default("kd_force_weight"),
    show_default=True,
    help="Weight of the teacher's forces on the vicinal rows (mean |F - F_teacher|², eV²/Å²).",
)
@click.option(
    "--kd-force-subset",
    type=int,
    default=_default("kd_force_subset"),
    show_default=True,
    help="Vicinal rows per batch that get the force term (each costs a double backward).",
)
@click.option(
    "--teacher",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Trained KRR model directory used as distillation teacher.",
)
@click.option(
    "--vkd",
    type=int,
    default=_default("vkd"),
    show_default=True,
    help="Number of rattled training geometries labelled by the teacher.",
)
@click.option(
    "--vkd-sigma",
    type=FINITE,
    default=_default("vkd_sigma"),
    show_default=True,
    help="Gaussian rattle (Å) of the vicinal geometries.",
)
@click.option(
    "--vkd-weight",
    type=FINITE,
    default=_default("vkd_weight"),
    show_default=True,
    help="Loss weight of a vicinal row relative to a labelled one.",
)
@click.option(
    "--zero-force-weight",
    type=FINITE,
    default=_default("zero_force_weight"),
    show_default=True,
    help="Weight of mean |F|² at the relaxed training geometries.",
)
@click.option(
    "--zero-force-subset",
    type=int,
    default=_default("zero_force_subset"),
    show_default=True,
    help="Labelled rows per batch that get the zero-force term (each costs a double backward).",
)
@click.option(
    "--patience",
    type=int,
    default=_default("patience"),
    show_default=True,
    help="Early stopping: epochs without a better validation MAE.",
)
@click.option(
    "--ensemble",
    type=int,
    default=_default("ensemble"),
    show_default=True,
    help="Networks trained with seeds --seed, --seed+1, …; more than one gives energy_std.",
)
@click.option(
    "--outlier-weight",
    type=FINITE,
    default=_default("outlier_weight"),
    show_default=True,
    help="Loss weight of rows flagged is_outlier (1 = no down-weighting).",
)
@click.option(
    "--seed",
    type=int,
    default=_default("seed"),
    show_default=True,
    help="Seed of weights, data order and rattles: the same seed gives the same model.",
)
@device_option
@click.option(
    "--threads",
    type=int,
    default=_default("threads"),
    show_default=True,
    help="Torch CPU threads during training (per process with --workers).",
)
@click.option(
    "--workers",
    type=int,
    default=_default("workers"),
    show_default=True,
    help="CPU processes training each network data-parallel (e.g. 2 on a 2-core machine).",
)
@quiet_option
def schnet(
    db_path: str,
    out: Path,
    overwrite: bool,
    recipe: str,
    teacher: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """SchNet: early stopping on val, conformal calibration on calib, test score, model card."""
    from ase_au20.models.schnet.config import SchNetConfig, shipped_config
    from ase_au20.models.schnet.fit import fit_schnet

    try:
        if recipe == "shipped":
            config = shipped_config(**given_on_command_line(options))
        else:
            config = SchNetConfig(**options)
        teacher_model = None
        if teacher is not None:
            from ase_au20.models.krr.model import KRRModel

            teacher_model = KRRModel.load(teacher)
        elif config.kd_lambda > 0 or config.vkd > 0 or config.kd_atom_weight > 0:
            raise ValueError(
                "--kd-lambda, --kd-atom-weight, --kd-force-weight and --vkd (all set by "
                "--recipe shipped) need --teacher KRR_MODEL_DIR"
            )
        with staged_out(out, overwrite) as stage:
            model = fit_schnet(db_path, stage, config, teacher_model, progress=not quiet)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    test = model.card["metrics"].get("test")
    click.echo(f"SchNet ({len(model)} member(s)) saved to {out}")
    click.echo(f"{'split':<8}{'n':>6}{'MAE':>9}{'RMSE':>9}{'R2':>8}")
    for name in ("calib", "test"):
        m = model.card["metrics"].get(name)
        if m:
            click.echo(f"{name:<8}{m['n']:>6}{m['mae']:>9.3f}{m['rmse']:>9.3f}{m['r2']:>8.3f}")
    if test:
        click.echo(f"mean |F| at test geometries: {test['mean_abs_force']:.3f} eV/Å")
