"""Settings dataclasses that explain themselves: each field carries its help text, so a
command line (``cli.dataclass_options``), a card and the docs read one definition."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def setting(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with a default and the sentence that explains it (units included);
    ``extra`` goes to the metadata too (``choices``, the command line's ``flag``)."""
    return field(default=default, metadata={"help": help, **extra})
