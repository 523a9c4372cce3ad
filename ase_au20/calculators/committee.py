"""``CommitteeAu20``: the weighted KRR + SchNet committee as an ASE calculator."""

from __future__ import annotations

from ase_au20.calculators.base import DeviceCalculator


class CommitteeAu20(DeviceCalculator):
    """Committee energies (weighted member average), forces, the member disagreement as
    ``energy_std`` and a conformal interval scaled by it.

    ``model``: None for the shipped committee or a committee directory; ``device`` and
    ``dtype`` reach its SchNet member.
    """

    default_model = "committee"
