"""``DFTBAu20``: the DFTB1 reference (auorg-1-1) as an ASE calculator."""

from __future__ import annotations

from ase_au20.calculators.base import Au20Calculator


class DFTBAu20(Au20Calculator):
    """DFTB1 (non-self-consistent DFTB, auorg-1-1 tables): the level of theory of the Au20
    labels, exact for any geometry with analytic forces.

    ``energy`` is the band energy at an electronic temperature of 1e-4 Hartree plus the
    repulsive energy, ``free_energy`` the Mermin free energy, ``forces`` the exact negative
    gradient of ``energy``. It is the reference, not a model of it: ``energy_uncertainty``
    is 0 and the interval has width 0; ``in_domain`` comes from the geometric checks only.

    Cite the tables (CC BY-SA 4.0) as their rights holders require: A. Fihey et al.,
    J. Comput. Chem. 36, 2075 (2015); M. Elstner et al., Phys. Rev. B 58, 7260 (1998).
    """

    default_model = "dftb"
