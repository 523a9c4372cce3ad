"""Structure kernels on per-atom SOAP: the average local-environment kernel and an RBF kernel.

Both take lists of (N_k, F) arrays of L2-normalised per-atom vectors, so structures of any
size mix freely.

- average: K(A, B) = mean_{i∈A, j∈B} (p̂_i · p̂_j)^ζ, integer ζ ≥ 1.
- rbf:     K(A, B) = exp(-γ |p̄_A − p̄_B|²), p̄ = mean_i p̂_i (pooled descriptor).

For ζ > 2 the average kernel can be approximated on M sparse environments q_t picked by
farthest-point sampling (subset of regressors): E/N = e0 + mean_i Σ_t c_t (p̂_i·q_t)^ζ.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KERNELS = ("average", "rbf")
_BLOCK_ATOMS = 2048  # rows of the atom-atom dot-product matrix computed at once


def _stack(structures: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated per-atom rows and the start row of each structure."""
    if len(structures) == 0:
        raise ValueError("no structures given")
    sizes = np.array([len(s) for s in structures])
    if np.any(sizes == 0):
        raise ValueError("a structure has no atoms")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.concatenate(structures).astype(float, copy=False), starts


def check_zeta(zeta: int) -> int:
    """ζ as a positive integer (the kernel must stay a polynomial for the forces)."""
    if int(zeta) != zeta or zeta < 1:
        raise ValueError(f"zeta must be a positive integer, got {zeta}")
    return int(zeta)


def average_gram(
    a: Sequence[np.ndarray], b: Sequence[np.ndarray] | None = None, zetas: Sequence[int] = (2,)
) -> dict[int, np.ndarray]:
    """Average-kernel matrices K_ζ (len(a), len(b)) for several ζ in one pass over the atoms."""
    zetas = [check_zeta(z) for z in zetas]
    xa, starts_a = _stack(a)
    xb, starts_b = (xa, starts_a) if b is None else _stack(b)
    sizes_a = np.diff(np.append(starts_a, len(xa)))
    sizes_b = np.diff(np.append(starts_b, len(xb)))
    out = {z: np.empty((len(starts_a), len(starts_b))) for z in zetas}
    step = max(1, _BLOCK_ATOMS // int(sizes_a.max()))
    for s in range(0, len(starts_a), step):
        stop = min(s + step, len(starts_a))
        lo = starts_a[s]
        hi = starts_a[stop] if stop < len(starts_a) else len(xa)
        dots = xa[lo:hi] @ xb.T
        local_starts = starts_a[s:stop] - lo
        for z in zetas:
            rows = np.add.reduceat(dots**z, local_starts, axis=0)
            block = np.add.reduceat(rows, starts_b, axis=1)
            out[z][s:stop] = block / sizes_a[s:stop, None] / sizes_b[None, :]
    return out


def pooled(structures: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of the normalised per-atom vectors of each structure, shape (n, F)."""
    return np.stack([np.asarray(s, dtype=float).mean(axis=0) for s in structures])


def rbf_gram(pa: np.ndarray, pb: np.ndarray, gamma: float) -> np.ndarray:
    """RBF matrix exp(-γ |x − y|²) between pooled descriptors."""
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    sq = (pa**2).sum(1)[:, None] + (pb**2).sum(1)[None, :] - 2.0 * pa @ pb.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def median_sq_distance(pa: np.ndarray) -> float:
    """Median squared distance between pooled descriptors: the natural scale of 1/γ."""
    sq = (pa**2).sum(1)[:, None] + (pa**2).sum(1)[None, :] - 2.0 * pa @ pa.T
    upper = sq[np.triu_indices(len(pa), 1)]
    return float(np.median(np.maximum(upper, 0.0))) if upper.size else 1.0


def farthest_point_sample(x: np.ndarray, m: int) -> np.ndarray:
    """Indices of ``m`` rows of ``x`` picked greedily far apart, starting from row 0."""
    m = min(int(m), len(x))
    if m < 1:
        raise ValueError("need at least one sparse point")
    picked = np.empty(m, dtype=int)
    picked[0] = 0
    dist = ((x - x[0]) ** 2).sum(axis=1)
    for k in range(1, m):
        picked[k] = int(np.argmax(dist))
        dist = np.minimum(dist, ((x - x[picked[k]]) ** 2).sum(axis=1))
    return picked


def sparse_features(structures: Sequence[np.ndarray], sparse: np.ndarray, zeta: int) -> np.ndarray:
    """Φ[m, t] = mean_{i∈m} (p̂_i·q_t)^ζ: the average kernel between structures and points."""
    x, starts = _stack(structures)
    sizes = np.diff(np.append(starts, len(x)))
    return np.add.reduceat((x @ sparse.T) ** check_zeta(zeta), starts, axis=0) / sizes[:, None]


def sparse_force_features(
    unit: np.ndarray, jacobian: np.ndarray, sparse: np.ndarray, zeta: int
) -> np.ndarray:
    """G[(a,x), t] = d/dr_{a,x} Σ_i (p̂_i·q_t)^ζ, shape (N·3, M): dE/dr = G c for a sparse model.

    ``jacobian`` is d p̂_i / d r_a (N, N, 3, F) (see soap.normalised_jacobian).
    """
    n = len(unit)
    dots = unit @ sparse.T
    proj = (jacobian.reshape(-1, jacobian.shape[-1]) @ sparse.T).reshape(n, n * 3, -1)
    return np.einsum("it,iat->at", check_zeta(zeta) * dots ** (zeta - 1), proj)
