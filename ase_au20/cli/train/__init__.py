"""`au20-workflow train …`: one module per model type, each a click command of this group."""

from __future__ import annotations

import click

from ase_au20.cli.train.committee import train_committee_cmd
from ase_au20.cli.train.krr import train_krr_cmd
from ase_au20.cli.train.schnet import schnet
from ase_au20.cli.train.xtb_delta import train_xtb_delta_cmd


@click.group()
def train() -> None:
    """Train a model on the train+val rows of a database (eV, Å)."""


for _command in (train_krr_cmd, schnet, train_xtb_delta_cmd, train_committee_cmd):
    train.add_command(_command)
