"""The ``au20-workflow`` command: a thin click group over the library.

Each verb lives in a module of this package that exposes click commands; heavy imports
stay inside the command functions so ``--help`` answers instantly.
"""

from __future__ import annotations

import importlib

import click

from ase_au20._version import __version__
from ase_au20.cli.warning_display import warnings_above_progress_bars
from ase_au20.cli.workflow_options import KEPT_ON_INTERRUPT
from ase_au20.compute.allocator import keep_freed_memory

# (module, attribute) of every top-level command or sub-group, in --help order.
COMMANDS: list[tuple[str, str]] = [
    ("ase_au20.cli.db", "db"),
    ("ase_au20.cli.dynamics", "relax_cmd"),
    ("ase_au20.cli.dynamics", "md_cmd"),
    ("ase_au20.cli.search", "search_cmd"),
    ("ase_au20.cli.screen", "screen_cmd"),
    ("ase_au20.cli.select", "select_cmd"),
    ("ase_au20.cli.label", "label_cmd"),
    ("ase_au20.cli.sample", "sample_cmd"),
    ("ase_au20.cli.energy_map", "energy_map_cmd"),
    ("ase_au20.cli.analyze", "analyze_cmd"),
    ("ase_au20.cli.sensitivity", "sensitivity_cmd"),
    ("ase_au20.cli.train", "train"),
    ("ase_au20.cli.evaluate", "evaluate"),
    ("ase_au20.cli.web", "web_cmd"),
]


# what a user can cause by what they type or point at: a file, a server, a path, a spec
USER_ERRORS = (OSError, ValueError, TypeError, LookupError, TimeoutError, ImportError)
INTERRUPTED = 130  # the exit status of a shell command stopped by Ctrl-C


class Au20Group(click.Group):
    """The verbs, with one ``Error:`` line and a non-zero exit instead of a traceback for
    anything a user can cause (a corrupt or missing database, a server that is down or
    refuses the password, an unwritable --out, a scheduler that is not there, a --calc
    factory that builds no calculator), and one line for Ctrl-C saying what was kept."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as stop:
            kept = (
                getattr(stop, "kept", None)
                or ctx.meta.get(KEPT_ON_INTERRUPT)
                or "nothing unfinished was kept"
            )
            click.echo(f"Interrupted (Ctrl-C): {kept}", err=True)
            ctx.exit(INTERRUPTED)
        except Exception as exc:
            if not _user_error(exc):
                raise
            raise click.ClickException(_one_line(exc)) from None


def _user_error(exc: Exception) -> bool:
    """Whether ``exc`` comes from the user's input or environment, not from a bug here:
    the usual error classes and the database drivers' own (sqlite3, psycopg2)."""
    module = type(exc).__module__.split(".")[0]
    return isinstance(exc, USER_ERRORS) or module in ("sqlite3", "psycopg2", "psycopg")


def _one_line(exc: Exception) -> str:
    """The first line of an error, with its kind where the text alone would not say it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    if module in ("sqlite3", "psycopg2", "psycopg"):
        return f"database error: {text}"
    if isinstance(exc, OSError | TypeError) and type(exc).__name__ not in text:
        return f"{type(exc).__name__}: {text}"
    return text


@click.group(cls=Au20Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="au20-workflow")
def main() -> None:
    """Machine-learned Au20 cluster models: database, training, calculators and workflows.

    Energies are in eV, lengths in Å. Run `au20-workflow VERB --help` for each verb.
    """
    keep_freed_memory()
    click.get_current_context().with_resource(warnings_above_progress_bars())


for _module, _attr in COMMANDS:
    main.add_command(getattr(importlib.import_module(_module), _attr))
