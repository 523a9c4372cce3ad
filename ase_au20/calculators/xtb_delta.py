"""``XtbDeltaAu20``: GFN1-xTB plus the Δ KRR as an ASE calculator."""

from __future__ import annotations

from ase_au20.calculators.base import Au20Calculator


class XtbDeltaAu20(Au20Calculator):
    """E_GFN1 + KRR_Δ energies, exact forces (GFN1's plus the KRR gradient), the KRR's
    predictive std as ``energy_std`` and a conformal interval scaled by it.

    Each call runs one GFN1-xTB SCF (tblite, bounded by the card's ``max_iterations``); an
    SCF that does not converge is a ``ValueError`` naming it. ``predict`` on 8 or more
    structures runs GFN1 in spawned processes on the usable cores, so a script that calls it
    needs the ``if __name__ == "__main__":`` guard. ``model``: None for the shipped model or
    a trained model directory.
    """

    default_model = "xtb-delta"
