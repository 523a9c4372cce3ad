"""``KRRAu20``: the SOAP kernel ridge model as an ASE calculator; forces from SOAP derivatives."""

from __future__ import annotations

from ase_au20.calculators.base import Au20Calculator


class KRRAu20(Au20Calculator):
    """SOAP+KRR energies, analytical forces and a conformal energy interval for Au clusters.

    ``model``: None for the shipped model, a trained model directory or a loaded
    ``KRRModel``; ``confidence`` and ``mondrian`` as for ``Au20Calculator``.
    """

    default_model = "krr"
