"""Per-atom SOAP descriptors of gold clusters (dscribe, GTO basis) and their exact derivatives.

The KRR model works on L2-normalised per-atom vectors; this module returns the raw
vectors, the normalised ones and, for forces, dscribe's analytical derivatives
(``attach=True`` so that each centre moves with its atom) plus the chain rule through the
normalisation that turns dE/dp̂ into forces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class SoapSettings:
    """SOAP hyper-parameters: cutoff (Å), radial/angular basis sizes, Gaussian width (Å)."""

    r_cut: float = 7.0
    n_max: int = 6
    l_max: int = 4
    sigma: float = 0.4

    def to_dict(self) -> dict[str, Any]:
        """The card's ``features`` entry: settings plus the fixed choices."""
        return {
            "descriptor": "soap",
            "rbf": "gto",
            "species": ["Au"],
            "periodic": False,
            "normalisation": "l2 per atom",
            **asdict(self),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SoapSettings:
        """Settings from a card's ``features`` entry (unknown fixed choices are refused)."""
        if d.get("descriptor", "soap") != "soap" or d.get("rbf", "gto") != "gto":
            raise ValueError(f"unsupported descriptor in card features: {d}")
        try:
            return cls(
                r_cut=float(d["r_cut"]),
                n_max=int(d["n_max"]),
                l_max=int(d["l_max"]),
                sigma=float(d["sigma"]),
            )
        except KeyError as err:
            raise ValueError(f"card features lack SOAP setting {err}") from None


class SoapFeaturizer:
    """dscribe SOAP for Au, non-periodic, dense output; per-atom vectors."""

    def __init__(self, settings: SoapSettings) -> None:
        from dscribe.descriptors import SOAP

        self.settings = settings
        self._soap = SOAP(
            species=["Au"],
            r_cut=settings.r_cut,
            n_max=settings.n_max,
            l_max=settings.l_max,
            sigma=settings.sigma,
            rbf="gto",
            periodic=False,
            sparse=False,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the settings only: dscribe's SOAP holds ctypes handles (for worker processes)."""
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])

    @property
    def n_features(self) -> int:
        """Length of one per-atom vector."""
        return int(self._soap.get_number_of_features())

    def raw(self, atoms: Atoms) -> np.ndarray:
        """Unnormalised per-atom SOAP, shape (N, F)."""
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
        deriv, raw = self._soap.derivatives(
            _isolated(atoms), method="analytical", return_descriptor=True, attach=True
        )
        n = len(atoms)
        unit, norms = normalise(np.asarray(raw, dtype=float).reshape(n, -1))
        return unit, norms, np.asarray(deriv, dtype=float).reshape(n, n, 3, -1)


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
