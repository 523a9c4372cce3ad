"""ASE plugin registration: one calculator plugin per registered model type.

Loaded through the ``ase.plugins`` entry point; implementations are given as import
strings so collecting plugins never imports torch or dscribe.
"""

from __future__ import annotations

from ase._4.plugins.plugin import CalculatorPlugin

from ase_au20.models.registry import MODELS

CITATION = "ase-au20: machine-learned Au20 energy models with calibrated uncertainty"

__ase_plugins__ = {
    CalculatorPlugin(
        name=entry.plugin_name,
        citation="; ".join(filter(None, (CITATION, entry.citation))),
        implementation=entry.calculator.replace(":", "."),
    )
    for entry in MODELS.values()
}
