"""Building a calculator from what a user types: a registered model name, ``emt``, a
trained model directory or ``module:factory``. The spec is classified once (``CalcSpec``);
the workflows, the model identity of their rows and the Dask workers all take that value."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class CalcSpec:
    """A ``--calc`` spec classified once: ``kind`` is ``"emt"``, ``"model"`` (a registered
    model, its shipped weights), ``"directory"`` (a trained model folder) or ``"factory"``
    (``module:factory``); a model's type, folder and card seal come with it."""

    text: str
    kind: str
    model_type: str = ""
    folder: Path | None = None
    card_sha256: str = ""

    @classmethod
    def parse(cls, text: str) -> CalcSpec:
        """Classify ``text``; ValueError for anything no worker could build."""
        from ase_au20.models.card import SEAL, read_card
        from ase_au20.paths import PRETRAINED_DIR

        if text.lower() == "emt":
            return cls(text, "emt")
        name = model_name(text)
        path = Path(text)
        if name is not None:
            kind, folder = "model", PRETRAINED_DIR / name
        elif ":" in text and not path.exists():
            return cls(text, "factory")
        elif (path / "card.json").is_file():
            kind, folder, name = "directory", path, read_card(path)["model_type"]
        else:
            raise ValueError(
                f"unknown calculator {text!r}: use one of {', '.join(CALCULATOR_NAMES)}, "
                "a trained model directory containing card.json, or module:factory"
            )
        seal = str(read_card(folder).get(SEAL, "")) if (folder / "card.json").is_file() else ""
        return cls(text, kind, name, folder, seal)


def make_calculator(
    spec: str | CalcSpec, device: str = "auto", confidence: float | None = None
) -> BaseCalculator:
    """A calculator for ``spec``: a registered model (its shipped weights), ``emt``, a
    trained model directory (its card's model type picks the calculator class), or
    ``module:factory``, any importable callable that returns an ASE calculator (e.g.
    ``mace.calculators:mace_mp``), called without arguments. ``confidence`` sets the
    coverage of our models' intervals (others have none)."""
    spec = spec if isinstance(spec, CalcSpec) else CalcSpec.parse(spec)
    if spec.kind == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if spec.kind == "factory":
        return _from_factory(spec.text)
    options = load_options(spec.model_type, {"device": device})
    if confidence is not None:
        options["confidence"] = confidence
    if spec.kind == "directory":
        options["model"] = spec.folder
    return calculator_class(spec.model_type)(**options)


def worker_build(
    spec: str | CalcSpec, device: str = "auto", confidence: float | None = None
) -> BuildSpec:
    """How an engine's workers build the calculator of ``spec`` (``make_calculator``), each
    once, instead of receiving it; the spec travels classified."""
    spec = spec if isinstance(spec, CalcSpec) else CalcSpec.parse(spec)
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
