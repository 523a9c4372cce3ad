"""`--recipe plain|shipped` of the train verbs: the option and the values given beside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from click.core import ParameterSource


def recipe_option(help_text: str) -> Callable:
    """The ``--recipe`` option: ``plain`` (the defaults shown) or ``shipped``."""
    return click.option(
        "--recipe",
        type=click.Choice(["plain", "shipped"]),
        default="plain",
        show_default=True,
        help=help_text,
    )


def given_on_command_line(options: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` the user set (not left at their defaults): they override
    the shipped recipe."""
    ctx = click.get_current_context()
    return {
        name: value
        for name, value in options.items()
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    }
