"""Building a calculator from what a user types: a registered model name, ``emt`` or a
trained model directory."""

from __future__ import annotations

from pathlib import Path

from ase.calculators.calculator import BaseCalculator

from ase_au20.compute.engine import BuildSpec
from ase_au20.models.registry import (
    MODEL_NAMES,
    calculator_class,
    import_object,
    load_options,
    model_name,
)

CALCULATOR_NAMES = (*MODEL_NAMES, "emt")


def spec_kind(spec: str) -> str:
    """What a ``--calc`` spec names: ``"emt"``, ``"model"`` (a registered model, its shipped
    weights), ``"directory"`` (a trained model directory) or ``"factory"``
    (``module:factory``); ValueError for anything else."""
    if spec.lower() == "emt":
        return "emt"
    if model_name(spec) is not None:
        return "model"
    path = Path(spec)
    if ":" in spec and not path.exists():
        return "factory"
    if (path / "card.json").is_file():
        return "directory"
    raise ValueError(
        f"unknown calculator {spec!r}: use one of {', '.join(CALCULATOR_NAMES)}, "
        "a trained model directory containing card.json, or module:factory"
    )


def make_calculator(
    spec: str, device: str = "auto", confidence: float | None = None
) -> BaseCalculator:
    """A calculator for ``spec``: a registered model (its shipped weights), ``emt``, a
    trained model directory (its card's model type picks the calculator class), or
    ``module:factory``, any importable callable that returns an ASE calculator (e.g.
    ``mace.calculators:mace_mp``), called without arguments. ``confidence`` sets the
    coverage of our models' intervals (others have none)."""
    kind = spec_kind(spec)
    if kind == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if kind == "factory":
        return _from_factory(spec)
    levels = {} if confidence is None else {"confidence": confidence}
    if kind == "model":
        name = model_name(spec)
        return calculator_class(name)(**load_options(name, {"device": device}), **levels)
    from ase_au20.models.card import read_card

    model_type = read_card(spec)["model_type"]
    return calculator_class(model_type)(
        model=Path(spec), **load_options(model_type, {"device": device}), **levels
    )


def worker_build(spec: str, device: str = "auto", confidence: float | None = None) -> BuildSpec:
    """How an engine's workers build the calculator of ``spec`` (``make_calculator``), each
    once, instead of receiving it."""
    options = () if confidence is None else (("confidence", confidence),)
    return BuildSpec(make_calculator, spec, device, options)


def _from_factory(spec: str) -> BaseCalculator:
    """The calculator that ``module:factory`` returns when called without arguments."""
    module, _, attribute = spec.partition(":")
    try:
        factory = import_object(spec)
    except ImportError as err:
        raise ValueError(f"--calc {spec!r}: cannot import {module!r} ({err})") from None
    except AttributeError:
        raise ValueError(f"--calc {spec!r}: {module!r} has no attribute {attribute!r}") from None
    if not callable(factory):
        raise ValueError(f"--calc {spec!r}: {attribute!r} is not callable")
    try:
        calc = factory()
    except TypeError as err:  # a callable that needs arguments is no calculator factory
        raise ValueError(
            f"--calc {spec!r}: {attribute}() raised TypeError: {err} (a factory builds an "
            "ASE calculator when called without arguments)"
        ) from None
    if not isinstance(calc, BaseCalculator):  # Calculator, SumCalculator, mixers alike
        raise ValueError(
            f"--calc {spec!r}: {attribute}() returned {type(calc).__name__}, not an ASE calculator"
        )
    return calc
