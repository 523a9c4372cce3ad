"""ASE plugin registration: lists SchNetAu20 and KRRAu20 in ASE's plugin collection.

Loaded through the ``ase.plugins`` entry point; implementations are given as import
strings so collecting plugins never imports torch or dscribe.
"""

from __future__ import annotations

from ase._4.plugins.plugin import CalculatorPlugin

CITATION = "ase-au20: machine-learned Au20 energy models with calibrated uncertainty"

__ase_plugins__ = {
    CalculatorPlugin(
        name="schnet_au20",
        citation=CITATION,
        implementation="ase_au20.calculators.schnet.SchNetAu20",
    ),
    CalculatorPlugin(
        name="krr_au20",
        citation=CITATION,
        implementation="ase_au20.calculators.krr.KRRAu20",
    ),
}
