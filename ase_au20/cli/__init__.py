"""The ``au20-workflow`` command: a thin click group over the library.

Each verb lives in a module of this package that exposes click commands; heavy imports
stay inside the command functions so ``--help`` answers instantly.
"""

from __future__ import annotations

import importlib

import click

from ase_au20._version import __version__
from ase_au20.allocator import keep_freed_memory
from ase_au20.cli.warning_display import warnings_above_progress_bars

# (module, attribute) of every top-level command or sub-group, in --help order.
COMMANDS: list[tuple[str, str]] = [
    ("ase_au20.cli.db", "db"),
    ("ase_au20.cli.dynamics", "relax_cmd"),
    ("ase_au20.cli.dynamics", "md_cmd"),
    ("ase_au20.cli.search", "search_cmd"),
    ("ase_au20.cli.screen", "screen_cmd"),
    ("ase_au20.cli.search", "select_cmd"),
    ("ase_au20.cli.search", "label_cmd"),
    ("ase_au20.cli.search", "energy_map_cmd"),
    ("ase_au20.cli.analyze", "analyze_cmd"),
    ("ase_au20.cli.sensitivity", "sensitivity_cmd"),
    ("ase_au20.cli.models", "train"),
    ("ase_au20.cli.models", "evaluate"),
    ("ase_au20.cli.web", "web_cmd"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="au20-workflow")
def main() -> None:
    """Machine-learned Au20 cluster models: database, training, calculators and workflows.

    Energies are in eV, lengths in Å. Run `au20-workflow VERB --help` for each verb.
    """
    keep_freed_memory()
    click.get_current_context().with_resource(warnings_above_progress_bars())


for _module, _attr in COMMANDS:
    main.add_command(getattr(importlib.import_module(_module), _attr))
