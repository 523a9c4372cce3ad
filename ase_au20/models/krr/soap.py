"""Per-atom SOAP descriptors of gold clusters (dscribe, GTO basis) and their exact derivatives.

The KRR model works on L2-normalised per-atom vectors; this module returns the raw
vectors, the normalised ones and, for forces, dscribe's analytical derivatives
(``attach=True`` so that each centre moves with its atom) plus the chain rule through the
normalisation that turns dE/dp̂ into forces.

Continuity and memory: dscribe drops neighbours beyond r_cut plus a small padding, where a
neighbour's Gaussian still overlaps the GTO basis (a jump of ~1e-3 of the vector). We
include neighbours up to ``NEIGHBOUR_FACTOR``·r_cut, where a neighbour's share of the
vector is below 1e-13 of it, so the descriptor is continuous to round-off. Atoms farther
than that from every atom of another group cannot see that group, so each connected
group is described in its own box: dscribe's cell list then scales with the group, not
with the bounding box of the whole input (one far atom used to cost 0.67 GB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
from ase import Atoms
from scipy.spatial.distance import pdist

from ase_au20.geometry.metrics import fragments

# neighbours count up to this multiple of r_cut (see the module docstring)
NEIGHBOUR_FACTOR = 2.5


@dataclass(frozen=True)
class SoapSettings:
    """SOAP hyper-parameters: cutoff (Å), radial/angular basis sizes, Gaussian width (Å)."""

    r_cut: float = 7.0
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.4

    @property
    def neighbour_radius(self) -> float:
        """Distance (Å) up to which a neighbour enters an atom's vector."""
        return NEIGHBOUR_FACTOR * self.r_cut

    def to_dict(self) -> dict[str, Any]:
        """The card's ``features`` entry: settings plus the fixed choices."""
        return {
            "descriptor": "soap",
            "rbf": "gto",
            "species": ["Au"],
            "periodic": False,
            "normalisation": "l2 per atom",
            "neighbour_radius": self.neighbour_radius,
            **asdict(self),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SoapSettings:
        """Settings from a card's ``features`` entry (unknown fixed choices are refused)."""
        if d.get("descriptor", "soap") != "soap" or d.get("rbf", "gto") != "gto":
            raise ValueError(f"unsupported descriptor in card features: {d}")
        try:
            settings = cls(
                r_cut=float(d["r_cut"]),
                n_max=int(d["n_max"]),
                l_max=int(d["l_max"]),
                sigma=float(d["sigma"]),
            )
        except KeyError as err:
            raise ValueError(f"card features lack SOAP setting {err}") from None
        radius = d.get("neighbour_radius", settings.neighbour_radius)
        if radius != settings.neighbour_radius:
            raise ValueError(
                f"card features: neighbour_radius {radius} Å, but this package describes "
                f"neighbours up to {settings.neighbour_radius} Å for r_cut {settings.r_cut}"
            )
        return settings


@cache
def _soap_class() -> type:
    """dscribe's SOAP with the neighbour padding widened to the settings' radius (built on
    first use: importing dscribe is slow)."""
    from dscribe.descriptors import SOAP

    class WholeNeighbourhoodSOAP(SOAP):
        padding = 0.0

        def get_cutoff_padding(self) -> float:
            """Neighbours up to r_cut + padding enter (dscribe: r_cut + 3.7 sigma)."""
            return self.padding

    return WholeNeighbourhoodSOAP


class SoapFeaturizer:
    """dscribe SOAP for Au, non-periodic, dense output; per-atom vectors."""

    def __init__(self, settings: SoapSettings) -> None:
        self.settings = settings
        self._soap = _soap_class()(
            species=["Au"],
            r_cut=settings.r_cut,
            n_max=settings.n_max,
            l_max=settings.l_max,
            sigma=settings.sigma,
            rbf="gto",
            periodic=False,
            sparse=False,
        )
        self._soap.padding = settings.neighbour_radius - settings.r_cut

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only: dscribe's SOAP holds ctypes handles (for worker processes)."""
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])

    @property
    def n_features(self) -> int:
        """Length of one per-atom vector."""
        return int(self._soap.get_number_of_features())

    def _groups(self, atoms: Atoms) -> list[np.ndarray] | None:
        """Index arrays of the groups of atoms that see each other (within the neighbour
        radius, transitively), or None when the whole input is one group."""
        radius = self.settings.neighbour_radius
        if len(atoms) < 2 or pdist(atoms.get_positions()).max() <= radius:
            return None  # the common case, without building the graph
        groups = fragments(atoms, radius)
        return None if len(groups) == 1 else groups

    def raw(self, atoms: Atoms) -> np.ndarray:
        """Unnormalised per-atom SOAP, shape (N, F)."""
        groups = self._groups(atoms)
        if groups is None:
            return self._raw(atoms)
        out = np.empty((len(atoms), self.n_features))
        for index in groups:
            out[index] = self._raw(atoms[index])
        return out

    def _raw(self, atoms: Atoms) -> np.ndarray:
        """dscribe's vectors of one group."""
        return np.asarray(self._soap.create(_isolated(atoms)), dtype=float).reshape(len(atoms), -1)

    def normalised(self, atoms: Atoms) -> np.ndarray:
        """L2-normalised per-atom SOAP, shape (N, F)."""
        return normalise(self.raw(atoms))[0]

    def normalised_many(self, structures: Sequence[Atoms]) -> list[np.ndarray]:
        """Normalised per-atom SOAP of each structure."""
        return [self.normalised(atoms) for atoms in structures]

    def normalised_with_derivatives(
        self, atoms: Atoms
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised vectors (N, F), their norms (N,) and raw d p_i / d r_a (N, N, 3, F)."""
        groups = self._groups(atoms)
        if groups is None:
            raw, deriv = self._raw_with_derivatives(atoms)
        else:
            n, f = len(atoms), self.n_features
            raw, deriv = np.empty((n, f)), np.zeros((n, n, 3, f))
            for index in groups:
                raw[index], deriv[np.ix_(index, index)] = self._raw_with_derivatives(atoms[index])
        unit, norms = normalise(raw)
        return unit, norms, deriv

    def _raw_with_derivatives(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
        """dscribe's vectors (N, F) and analytical derivatives (N, N, 3, F) of one group."""
        deriv, raw = self._soap.derivatives(
            _isolated(atoms), method="analytical", return_descriptor=True, attach=True
        )
        n = len(atoms)
        return (
            np.asarray(raw, dtype=float).reshape(n, -1),
            np.asarray(deriv, dtype=float).reshape(n, n, 3, -1),
        )


def normalised_jacobian(unit: np.ndarray, norms: np.ndarray, deriv: np.ndarray) -> np.ndarray:
    """d p̂_i / d r_a (N, N, 3, F) from dscribe's raw derivatives: (I − p̂ p̂ᵀ) dp / |p|."""
    along = np.einsum("iaxf,if->iax", deriv, unit)
    return (deriv - along[..., None] * unit[:, None, None, :]) / norms[:, None, None, None]


def forces_from_gradient(
    grad: np.ndarray, unit: np.ndarray, norms: np.ndarray, deriv: np.ndarray
) -> np.ndarray:
    """−dE/dr (N, 3) from dE/dp̂_i (N, F), chained through p̂ = p/|p| and dscribe's dp/dr.

    d(p/|p|) = (I − p̂ p̂ᵀ) dp / |p|, so dE/dp_i = (g_i − (g_i·p̂_i) p̂_i) / |p_i|.
    """
    raw_grad = (grad - (grad * unit).sum(axis=1, keepdims=True) * unit) / norms[:, None]
    return -np.einsum("if,iaxf->ax", raw_grad, deriv)


def normalise(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise L2 normalisation; returns (unit vectors, norms). Zero rows are an error."""
    norms = np.linalg.norm(raw, axis=-1)
    if np.any(norms <= 0.0):
        raise ValueError("a SOAP vector is zero: cannot normalise (is the structure empty?)")
    return raw / norms[..., None], norms


def _isolated(atoms: Atoms) -> Atoms:
    """A copy without cell or periodicity: clusters are always scored as isolated."""
    return Atoms(atoms.get_chemical_symbols(), positions=atoms.get_positions())
