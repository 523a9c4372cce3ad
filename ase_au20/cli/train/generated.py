"""`au20-workflow train NAME` for a registered model type without a verb module of its own:
the options come from its config dataclass, the recipes and the fit from its registry entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ase_au20.cli.dataclass_options import dataclass_options, settings_from
from ase_au20.cli.recipes import given_on_command_line
from ase_au20.cli.workflow_options import db_option, model_out_option, quiet_option, staged_out
from ase_au20.models.registry import ModelEntry, import_object


def training_command(entry: ModelEntry) -> click.Command:
    """The training verb of ``entry``: --db, --out, --recipe, one option per config field."""
    config_class = import_object(entry.config)
    recipes = dict(entry.recipes)

    def run(
        db_path: str, out: Path, overwrite: bool, quiet: bool, recipe: str = "plain", **options: Any
    ) -> None:
        if recipe == "plain":
            config = settings_from(config_class, options)
        else:
            config = import_object(recipes[recipe])(**given_on_command_line(options))
        with staged_out(out, overwrite) as stage:
            import_object(entry.fit)(db_path, stage, config, progress=not quiet)
        _print_scores(out)

    command = quiet_option(dataclass_options(config_class)(run))
    if recipes:
        command = click.option(
            "--recipe",
            type=click.Choice(["plain", *recipes]),
            default="plain",
            show_default=True,
            help="Starting settings: the defaults shown here, or a named recipe; options "
            "given on the command line override either.",
        )(command)
    command = model_out_option("Model directory to write (card.json and the weights).")(command)
    command = db_option("Isomer database built by `au20-workflow db build`.")(command)
    return click.command(entry.name, help=f"{entry.summary}: fit, calibrate, card, save.")(command)


def _print_scores(out: Path) -> None:
    """The calib and test lines of the card just written."""
    from ase_au20.models.card import read_card

    metrics = read_card(out)["metrics"]
    click.echo(f"model written to {out}")
    for name in ("calib", "test"):
        if name in metrics:
            m = metrics[name]
            click.echo(f"{name} (n={m['n']}): MAE {m['mae']:.3f}  RMSE {m['rmse']:.3f} eV")
