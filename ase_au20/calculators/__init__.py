"""ASE calculators for the Au20 models (SchNetAu20, KRRAu20, …), their ASE plugin and db helpers.

Importing this package registers every model type's calculator with ASE under its plugin
name (``schnet_au20``, ``krr_au20``, …), the name its rows carry in a database's
``calculator`` column, so ``get_calculator_class(row.calculator)(**row.calculator_parameters)``
rebuilds the calculator of a stored row. The registered factories import their class on
first use (no torch or dscribe before).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ase.calculators.calculator import external_calculators, register_calculator_class

from ase_au20.models.registry import MODELS


def _factory(import_string: str) -> Callable[..., Any]:
    """A callable that imports ``module:Class`` when called and builds the calculator."""
    module, _, name = import_string.partition(":")

    def build(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name} ({import_string}), imported on first use."
    return build


for _entry in MODELS.values():
    if _entry.plugin_name not in external_calculators:  # a reload must not register twice
        register_calculator_class(_entry.plugin_name, _factory(_entry.calculator))
