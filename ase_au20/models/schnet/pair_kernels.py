"""The pair loops of a SchNet interaction block, compiled with numba.

Per pair the filter is the Catmull-Rom blend of four consecutive table rows; it weighs the
neighbour's features into the message of each atom of the pair. In NumPy the same work
needs per-pair row gathers or a dense atoms × atoms filter array per block (half of a
NumPy call); here each pair reads its rows once. The arrays are those of
``NumpySchNet``: a block's table ``[grid, M, F]``, features ``[M, N, F]``, and per pair its
first node, spline weights ``[P, 4]`` and atom indices (``first`` < ``second``).
"""

from __future__ import annotations

import numba
import numpy as np

# reassociation vectorises the feature loops' sums; no assumptions about inf/NaN
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def messages(
    table: np.ndarray,
    nodes: np.ndarray,
    weights: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    h: np.ndarray,
) -> np.ndarray:
    """y[m, i] = Σ_j W(d_ij)[m] ⊙ h[m, j] over the pairs (both directions)."""
    members, _, features = h.shape
    y = np.zeros_like(h)
    w = np.empty_like(h[0, 0])
    for p in range(len(nodes)):
        i, j, k = first[p], second[p], nodes[p]
        c0, c1, c2, c3 = weights[p, 0], weights[p, 1], weights[p, 2], weights[p, 3]
        for m in range(members):
            t0, t1, t2, t3 = table[k, m], table[k + 1, m], table[k + 2, m], table[k + 3, m]
            for f in range(features):
                w[f] = c0 * t0[f] + c1 * t1[f] + c2 * t2[f] + c3 * t3[f]
            yi, hj = y[m, i], h[m, j]
            for f in range(features):
                yi[f] += w[f] * hj[f]
            yj, hi = y[m, j], h[m, i]
            for f in range(features):
                yj[f] += w[f] * hi[f]
    return y


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def messages_reverse(
    table: np.ndarray,
    nodes: np.ndarray,
    weights: np.ndarray,
    slopes: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    h: np.ndarray,
    gy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Given gy = dL/dy, the gradients gh = dL/dh ``[M, N, F]`` and dL/dd_p ``[P]``
    (``slopes``: the spline weights' derivatives in d)."""
    members, _, features = h.shape
    gh = np.zeros_like(h)
    gd = np.zeros(len(nodes))
    w, dw = np.empty_like(h[0, 0]), np.empty_like(h[0, 0])
    for p in range(len(nodes)):
        i, j, k = first[p], second[p], nodes[p]
        c0, c1, c2, c3 = weights[p, 0], weights[p, 1], weights[p, 2], weights[p, 3]
        s0, s1, s2, s3 = slopes[p, 0], slopes[p, 1], slopes[p, 2], slopes[p, 3]
        total = 0.0
        for m in range(members):
            t0, t1, t2, t3 = table[k, m], table[k + 1, m], table[k + 2, m], table[k + 3, m]
            for f in range(features):
                w[f] = c0 * t0[f] + c1 * t1[f] + c2 * t2[f] + c3 * t3[f]
                dw[f] = s0 * t0[f] + s1 * t1[f] + s2 * t2[f] + s3 * t3[f]
            hi, hj, gi, gj = h[m, i], h[m, j], gy[m, i], gy[m, j]
            for f in range(features):
                total += dw[f] * (gi[f] * hj[f] + gj[f] * hi[f])
            ghi = gh[m, i]
            for f in range(features):
                ghi[f] += w[f] * gj[f]
            ghj = gh[m, j]
            for f in range(features):
                ghj[f] += w[f] * gi[f]
        gd[p] = total
    return gh, gd
