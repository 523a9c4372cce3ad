"""The KRR hyper-parameter grid and the grid the shipped KRR was chosen from.

Kept apart from the training code (no numpy, dscribe or database import) so the CLI can
show the shipped grid in ``--help`` without loading them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ase_au20.settings import setting

if TYPE_CHECKING:
    from ase_au20.models.krr.soap import SoapSettings


@dataclass
class KRRSearch:
    """The hyper-parameter grid; γ of the RBF kernel is gamma_scale / median |p̄_A − p̄_B|²."""

    r_cut: tuple[float, ...] = setting((7.0,), "SOAP cutoffs (Å).")
    n_max: tuple[int, ...] = setting((6,), "Radial basis sizes.")
    l_max: tuple[int, ...] = setting((4,), "Angular basis sizes.")
    sigma: tuple[float, ...] = setting((0.3, 0.5), "Gaussian widths (Å).")
    kernel: str = setting(
        "average",
        "average: local-environment kernel; rbf: pooled SOAP.",
        choices=("average", "rbf"),
    )
    zeta: tuple[int, ...] = setting(
        (2,), "Average-kernel powers (2 stores a tiny F×F matrix and is fastest)."
    )
    gamma_scale: tuple[float, ...] = setting(
        (0.3, 1.0, 3.0), "RBF γ in units of 1/median squared descriptor distance."
    )
    lam: tuple[float, ...] = setting(
        (1e-4, 3e-5, 1e-5, 3e-6, 1e-6),
        "Ridge regularisation (per-atom energy scale).",
        flag="--lambda",
    )
    outlier_weight: tuple[float, ...] = setting(
        (1.0,), "Sample weight(s) of rows flagged is_outlier (1 = no down-weighting)."
    )
    n_sparse: int = setting(0, "Sparse environments for ζ ≠ 2 (0: use all training environments).")
    zero_force_weight: tuple[float, ...] = setting(
        (0.0,), "μ of the zero-force term (sparse models): DFTB1 minima have F ≈ 0."
    )
    force_tolerance: float | None = setting(
        None, "Pick the best CV MAE among rows with held-out mean |F| ≤ this (eV/Å)."
    )

    def soap_grid(self) -> list[SoapSettings]:
        """Every SOAP setting of the grid."""
        from ase_au20.models.krr.soap import SoapSettings

        return [
            SoapSettings(float(r), int(n), int(lm), float(s))
            for r, n, lm, s in itertools.product(self.r_cut, self.n_max, self.l_max, self.sigma)
        ]

    def size(self) -> int:
        """Number of CV evaluations (settings × kernel parameters × λ × weights × μ)."""
        if self.kernel == "average":
            sparse = sum(1 for z in self.zeta if self.n_sparse > 0 and z != 2)
            per_kernel = sparse * len(self.zero_force_weight) + len(self.zeta) - sparse
        else:
            per_kernel = len(self.gamma_scale)
        return len(self.soap_grid()) * per_kernel * len(self.lam) * len(self.outlier_weight)


# The grid the shipped KRR is chosen from. n_max=6, l_max=4 keeps dscribe's analytical
# derivatives at ~2-3 ms per Au20, so one energy+forces call stays under 10 ms; richer
# bases (n_max 8-10, l_max 6-8) gained only ~0.01 eV of group-aware CV MAE in a coarse
# search. ζ > 2 on 1000 sparse environments (~3 MB of weights with the spread factor).
# The isomers are DFTB1 minima: the zero-force term μ cuts the mean predicted |F| at unseen
# minima from ~1.6 to ~0.15 eV/Å at μ = 0.1, the CV optimum: larger μ trades energy for
# smoothness (same setting, best λ: μ 0.3 |F| 0.13 at CV MAE 0.336, μ 1 0.11 at 0.39, μ 3
# 0.095 at 0.50; 2000-4000 sparse environments or l_max 6 do not move this curve). The
# winner is the lowest CV MAE among rows whose held-out mean |F| is ≤ 0.25 eV/Å
# (SHIPPED_FORCE_TOLERANCE).
SHIPPED_FORCE_TOLERANCE = 0.25
SHIPPED_KRR_SEARCH = KRRSearch(
    r_cut=(7.0, 8.0),
    n_max=(6,),
    l_max=(4,),
    sigma=(0.3, 0.4),
    zeta=(4, 6),
    lam=(1e-3, 3e-4, 1e-4),
    outlier_weight=(1.0, 0.2),
    n_sparse=1000,
    zero_force_weight=(0.0, 3e-3, 1e-2, 3e-2, 0.1),
    force_tolerance=SHIPPED_FORCE_TOLERANCE,
)


def shipped_search(**changes: object) -> KRRSearch:
    """The shipped grid with ``changes`` (the ``--recipe shipped`` of `train krr`)."""
    from dataclasses import replace

    return replace(SHIPPED_KRR_SEARCH, **changes)
