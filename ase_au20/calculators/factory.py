"""Building a calculator from what a user types: a registered model name, ``emt`` or a
trained model directory."""

from __future__ import annotations

from pathlib import Path

from ase.calculators.calculator import Calculator

from ase_au20.models.registry import MODEL_NAMES, MODELS, calculator_class, load_options

CALCULATOR_NAMES = (*MODEL_NAMES, "emt")


def make_calculator(spec: str, device: str = "auto") -> Calculator:
    """A calculator for ``spec``: a registered model (its shipped weights), ``emt``, or a
    trained model directory (its card's model type picks the calculator class)."""
    name = spec.lower()
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if name in MODELS:
        return calculator_class(name)(**load_options(name, {"device": device}))
    path = Path(spec)
    if not (path / "card.json").is_file():
        raise ValueError(
            f"unknown calculator {spec!r}: use one of {', '.join(CALCULATOR_NAMES)} "
            "or a trained model directory containing card.json"
        )
    from ase_au20.models.card import read_card

    model_type = read_card(path)["model_type"]
    return calculator_class(model_type)(model=path, **load_options(model_type, {"device": device}))
