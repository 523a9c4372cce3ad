"""`au20-workflow train …`: a verb per trainable registered model type, from its own module
(those that print more than the scores) or generated from its registry entry."""

from __future__ import annotations

import click

from ase_au20.cli.train.committee import train_committee_cmd
from ase_au20.cli.train.generated import training_command
from ase_au20.cli.train.krr import train_krr_cmd
from ase_au20.cli.train.schnet import schnet
from ase_au20.cli.train.xtb_delta import train_xtb_delta_cmd
from ase_au20.models.registry import trainable


@click.group()
def train() -> None:
    """Train a model on the train+val rows of a database (eV, Å)."""


for _command in (train_krr_cmd, schnet, train_xtb_delta_cmd, train_committee_cmd):
    train.add_command(_command)
for _entry in trainable():
    if _entry.name not in train.commands:
        train.add_command(training_command(_entry))
