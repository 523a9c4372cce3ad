"""`au20-workflow train schnet`: train, calibrate and save a SchNet model (or ensemble)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ase_au20.cli.dataclass_options import dataclass_options, settings_from
from ase_au20.cli.recipes import given_on_command_line
from ase_au20.cli.workflow_options import db_option, model_out_option, quiet_option, staged_out
from ase_au20.models.schnet.config import SchNetConfig


def _recipe_changes(table: str) -> str:
    """A recipe as the command-line options it sets, for --help."""
    from ase_au20.models.schnet import config

    return " ".join(
        f"--{name.replace('_', '-')} {value}"
        for name, value in getattr(config, table).items()
        if name != "table_spacing"  # not an option: the recipe's own choice
    )


@click.command("schnet")
@db_option("Isomer database built by `au20-workflow db build` (and its corpus: `sample`).")
@model_out_option("Model directory to write (card.json, member_<k>.pt).")
@click.option(
    "--recipe",
    type=click.Choice(["plain", "shipped", "force", "finetune"]),
    default="plain",
    show_default=True,
    help="Starting hyper-parameters: the defaults shown here (plain); the KRR-distilled "
    f"recipe of the energies-only model (shipped: {_recipe_changes('SHIPPED_RECIPE')}; needs "
    "--teacher); or the reference energies and forces of the corpus (force: "
    f"{_recipe_changes('FORCE_RECIPE')}; needs `au20-workflow sample`); or the force recipe "
    f"continued from --start-from after an active round (finetune: "
    f"{_recipe_changes('FINETUNE_RECIPE')}). "
    "Options given on the command line override either.",
)
@dataclass_options(SchNetConfig, skip=("table_spacing",))
@click.option(
    "--teacher",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Trained KRR model directory used as distillation teacher.",
)
@click.option(
    "--checkpoints",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of one checkpoint per network, written after every epoch: the same "
    "command after a stop goes on from them.",
)
@quiet_option
def schnet(
    db_path: str,
    out: Path,
    overwrite: bool,
    recipe: str,
    teacher: Path | None,
    checkpoints: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """SchNet: early stopping on val, conformal calibration on calib, test score, model card."""
    from ase_au20.models.schnet.config import finetune_config, force_config, shipped_config
    from ase_au20.models.schnet.fit import fit_schnet

    try:
        if recipe == "shipped":
            config = shipped_config(**given_on_command_line(options))
        elif recipe == "force":
            config = force_config(**given_on_command_line(options))
        elif recipe == "finetune":
            config = finetune_config(**given_on_command_line(options))
        else:
            config = settings_from(SchNetConfig, options)
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
            model = fit_schnet(
                db_path, stage, config, teacher_model, progress=not quiet, checkpoints=checkpoints
            )
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
