"""SchNet members on one cluster in NumPy: per-atom outputs and their exact analytic gradient.

A calculator call (relaxation, MD, search steps) evaluates a single Au20, where the
arithmetic is tiny (20 atoms, 190 pairs) and torch's per-operation overhead dominates. Here
the dense layers are NumPy matrix products with the ensemble's members stacked on a leading
axis, and the pair work of each interaction block (Catmull-Rom filters from the frozen
table, the messages, and in reverse their gradients) runs in two compiled loops
(``schnet/pair_kernels.py``) that read each pair's four table rows once and build no
per-pair or dense filter arrays. The function is the network's exactly — frozen table, the
same pair order and repulsion prior — and tests hold it to the torch outputs and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ase_au20.models.schnet.pair_kernels import messages, messages_reverse
from ase_au20.models.schnet.spline import CATMULL_ROM as _CR
from ase_au20.models.schnet.spline import CATMULL_ROM_DERIVATIVE as _CR_DERIVATIVE

_LOG2 = math.log(2.0)
_EXP_LIMIT = 60.0  # ln(1 + eᵃ) = a to float64 round-off above this; e^60 is finite in float32


def _softplus_and_sigmoid(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SchNet's shifted softplus ln(1 + eᵃ) − ln 2 and its derivative, the logistic σ(a).

    ``log(1 + e)`` rather than ``log1p``: log1p has no SIMD loop and is twice as slow; the
    difference is below the dtype's round-off at unit scale.
    """
    e = np.exp(np.minimum(a, a.dtype.type(_EXP_LIMIT)))
    one_plus = e + 1
    ssp = np.log(one_plus)
    ssp -= a.dtype.type(_LOG2)
    large = a > _EXP_LIMIT
    if large.any():
        ssp[large] = a[large] - a.dtype.type(_LOG2)
    np.divide(e, one_plus, out=e)
    return ssp, e


def _transposed(stack: np.ndarray) -> np.ndarray:
    """Each member's matrix of a ``[M, a, b]`` stack transposed, contiguous ``[M, b, a]``."""
    return np.ascontiguousarray(stack.transpose(0, 2, 1))


class NumpySchNet:
    """Frozen-table ``SchNet`` members copied into stacked NumPy arrays of ``dtype``.

    The members of an ensemble share one architecture, so every step runs for all of them
    at once on arrays with a leading member axis: one pass costs little more than one
    network, where a loop over members cost one call each.
    """

    def __init__(self, networks: Sequence[Any], dtype: np.dtype | type = np.float32) -> None:
        if not networks:
            raise ValueError("NumpySchNet needs at least one network")
        if any(net._frozen is None for net in networks):
            raise ValueError("NumpySchNet needs networks with a frozen filter table")
        self.dtype = np.dtype(dtype)
        arch = networks[0].architecture
        self.members = len(networks)
        self.cutoff, self.blocks, self.hidden = arch.cutoff, arch.blocks, arch.hidden
        self.spacing = float(networks[0]._frozen[0])
        # per block a [grid, members, hidden] table: a pair's four rows are contiguous
        self.tables = [
            np.ascontiguousarray(
                np.stack([self._array(net._frozen[1][b]) for net in networks], axis=1)
            )
            for b in range(self.blocks)
        ]
        self.embedding = self._stack(networks, lambda net: net.embedding)
        self.reverse: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # per block: in2f, out1 (weight, bias), out2 (weight, bias) as x @ W + b, and the
        # reverse pass's transposed weights, contiguous (a transposed view costs 2.5x a product)
        self.interactions = []
        for b in range(self.blocks):
            block = [net.interactions[b] for net in networks]
            w_in, w_out1, w_out2 = (
                self._stack(block, lambda layer, name=name: getattr(layer, name).weight.T)
                for name in ("in2f", "out1", "out2")
            )
            self.interactions.append(
                (
                    w_in,
                    w_out1,
                    self._stack(block, lambda layer: layer.out1.bias)[:, None],
                    w_out2,
                    self._stack(block, lambda layer: layer.out2.bias)[:, None],
                )
            )
            self.reverse.append(tuple(_transposed(w) for w in (w_in, w_out1, w_out2)))
        self.head1 = (
            self._stack(networks, lambda net: net.head1.weight.T),
            self._stack(networks, lambda net: net.head1.bias)[:, None],
        )
        self.head1_reverse = _transposed(self.head1[0])
        self.head2 = (
            self._stack(networks, lambda net: net.head2.weight[0]),
            self._stack(networks, lambda net: net.head2.bias),
        )
        self.repulsion_radius = float(arch.repulsion_radius)
        # the prior in the network's normalised units, as in SchNet._repulsion
        self.repulsion_strength = float(arch.repulsion_strength) / float(networks[0].energy_scale)
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _array(self, tensor: Any) -> np.ndarray:
        """A contiguous NumPy copy of a torch tensor in this model's dtype."""
        return np.ascontiguousarray(tensor.detach().cpu().double().numpy(), dtype=self.dtype)

    def _stack(self, modules: Sequence[Any], tensor_of: Any) -> np.ndarray:
        """One tensor of every member's module, stacked on a leading member axis."""
        return np.stack([self._array(tensor_of(module)) for module in modules])

    def __call__(self, positions: np.ndarray, gradient: bool = True) -> tuple[np.ndarray, Any]:
        """Normalised per-atom outputs ``[M, B, N]`` of the M members for a ``[B, N, 3]``
        stack of structures and, with ``gradient``, the derivative of their mean totals,
        d(Σ out / M)/dr ``[B, N, 3]``. The stack is one disjoint graph of B·N atoms, so the
        dense layers run once for the whole stack."""
        pos = np.asarray(positions, dtype=np.float64)
        n_structures, n = pos.shape[:2]
        atoms, members = n_structures * n, self.members
        if n not in self._pairs:  # np.triu_indices costs ~0.1 ms, a tenth of a whole call
            self._pairs[n] = np.triu_indices(n, 1)
        first, second = self._pairs[n]
        diff = pos[:, first] - pos[:, second]  # [B, P, 3]
        dist = np.sqrt((diff * diff).sum(-1))
        structure, pair = np.nonzero(dist < self.cutoff)
        offset = structure * n
        first, second = offset + first[pair], offset + second[pair]
        diff, d = diff[structure, pair], dist[structure, pair]
        # Catmull-Rom weights of grid rows k-1 .. k+2 (table row 0 sits at -spacing)
        t = d / self.spacing
        nodes = np.clip(np.floor(t).astype(np.intp), 0, len(self.tables[0]) - 4)
        u = t - nodes
        powers = np.stack([np.ones_like(u), u, u * u, u * u * u], axis=1)
        weights = (powers @ _CR).astype(self.dtype)
        x = np.repeat(self.embedding[:, None], atoms, axis=1)  # [M, B·N, F]
        saved = []
        for b, (w_in, w_out1, b_out1, w_out2, b_out2) in enumerate(self.interactions):
            # every atom starts from the same embedding: block 0 needs one row of x @ w_in
            h = x @ w_in if b else np.repeat(self.embedding[:, None] @ w_in, atoms, axis=1)
            y = messages(self.tables[b], nodes, weights, first, second, h)
            ssp, sig = _softplus_and_sigmoid(y @ w_out1 + b_out1)
            x = x + ssp @ w_out2 + b_out2
            saved.append((h, sig))
        ssp, sig = _softplus_and_sigmoid(x @ self.head1[0] + self.head1[1])
        out = np.einsum("mnh,mh->mn", ssp, self.head2[0]).astype(np.float64)
        out += self.head2[1]  # [M, 1]
        overlap = np.clip(self.repulsion_radius - d, 0.0, None)
        if self.repulsion_radius > 0 and len(d):
            half = 0.5 * self.repulsion_strength * overlap**3
            out += np.bincount(first, half, atoms) + np.bincount(second, half, atoms)
        out = out.reshape(members, n_structures, n)
        if not gradient:
            return out, None
        # reverse pass of the members' mean: gx = d(Σ out / M)/dx, per block to the distances
        slopes = (powers @ _CR_DERIVATIVE / self.spacing).astype(self.dtype)
        gx = (sig * (self.head2[0][:, None] / members)) @ self.head1_reverse
        gd = np.zeros(len(d))
        for b in reversed(range(self.blocks)):
            w_in_t, w_out1_t, w_out2_t = self.reverse[b]
            h, sig_b = saved[b]
            gy = ((gx @ w_out2_t) * sig_b) @ w_out1_t
            gh, gd_block = messages_reverse(
                self.tables[b], nodes, weights, slopes, first, second, h, gy
            )
            gd += gd_block
            if b:  # the embedding is not a function of the positions
                gx = gx + gh @ w_in_t
        if self.repulsion_radius > 0:
            gd -= 3.0 * self.repulsion_strength * overlap**2
        pair_force = diff * (gd / d)[:, None]
        grad = np.stack(
            [
                np.bincount(first, pair_force[:, c], atoms)
                - np.bincount(second, pair_force[:, c], atoms)
                for c in range(3)
            ],
            axis=1,
        )
        return out, grad.reshape(n_structures, n, 3)
