"""Click options generated from a settings dataclass: one ``--field-name`` per field, its
type, default and help taken from the dataclass, so a verb never copies them by hand."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import click

from ase_au20.cli.workflow_options import FINITE


class NumberList(click.ParamType):
    """Comma-separated numbers, e.g. ``0.3,0.5`` (a grid axis, a list of amplitudes)."""

    name = "list"

    def __init__(self, kind: type = float) -> None:
        self.kind = kind

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        """Parse ``value`` into a tuple of numbers of ``kind``."""
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(self.kind(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a comma-separated list of {self.kind.__name__}", param, ctx
            )
        if not all(math.isfinite(v) for v in items):
            self.fail(f"{value!r} holds a number that is not finite", param, ctx)
        if not items:
            self.fail("empty list", param, ctx)
        return items


FLOATS, INTS = NumberList(float), NumberList(int)


class WordList(click.ParamType):
    """Comma-separated words, e.g. ``rattle,md``."""

    name = "list"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, ...]:
        """Split ``value`` on commas; an empty list is an error."""
        if isinstance(value, tuple):
            return value
        items = tuple(v.strip() for v in str(value).split(",") if v.strip())
        if not items:
            self.fail("empty list", param, ctx)
        return items


WORDS = WordList()


def _param_type(hint: Any) -> tuple[Any, bool]:
    """The click type of a field's annotation, and whether None is allowed."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return {float: FLOATS, int: INTS, str: WORDS}[item], optional
    return {float: FINITE, int: int, str: str, bool: bool}[hint], optional


def _shown(value: Any) -> Any:
    """A default as the command line writes it (lists comma-separated)."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else value


def dataclass_options(
    cls: type, skip: Iterable[str] = (), defaults: Any = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a click command with an option per field of ``cls`` (but ``skip``), its
    default from ``defaults`` (an instance; ``cls()`` by default) and its help from the
    field's ``metadata["help"]`` (``choices`` and ``flag`` there too, when given)."""
    hints = typing.get_type_hints(cls)
    base = defaults if defaults is not None else cls()
    skipped = set(skip)
    decorators = []
    for f in dataclasses.fields(cls):
        if f.name in skipped or not f.init:
            continue
        kind, optional = _param_type(hints[f.name])
        if "choices" in f.metadata:
            kind = click.Choice(list(f.metadata["choices"]))
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        default = getattr(base, f.name)
        text = f.metadata.get("help", "")
        if kind is bool:
            option = click.option(f"{flag}/--no-{flag[2:]}", default=default, help=text)
        else:
            if optional and default is None:
                text += " [default: none]"
            option = click.option(
                flag,
                f.name,
                type=kind,
                default=_shown(default),
                show_default=default is not None,
                help=text,
            )
        decorators.append(option)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(decorators):
            command = option(command)
        return command

    return decorate


def settings_from(cls: type, values: dict[str, Any], defaults: Any = None) -> Any:
    """An instance of ``cls`` from a command's keyword arguments: the fields are popped from
    ``values`` (what is left is the command's own), unset ones keep ``defaults``'."""
    base = defaults if defaults is not None else cls()
    chosen = {
        f.name: values.pop(f.name) for f in dataclasses.fields(cls) if f.name in values and f.init
    }
    try:
        return dataclasses.replace(base, **chosen)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
