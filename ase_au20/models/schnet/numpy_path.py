"""SchNet members in NumPy: per-atom outputs and their exact analytic gradient.

A calculator call (relaxation, MD, search steps) evaluates a single Au20, a screen chunks of
16, where the arithmetic is small (20 atoms, 190 pairs each) and torch's per-operation
overhead dominated. Here the dense layers are NumPy matrix products with the ensemble's
members stacked on a leading axis and a chunk's structures as one graph, and the pair work
of each interaction block (Catmull-Rom filters from the frozen table, the messages, and in
reverse their gradients) runs in two compiled loops (``schnet/pair_kernels.py``) that read
each pair's four table rows once and build no per-pair or dense filter arrays. The function
is the network's exactly — frozen table, the same pair order and repulsion prior — and
tests hold it to the torch outputs and gradients.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
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


FROZEN_NAME = "frozen.npz"  # a model directory's saved arrays (see frozen.py)
# structures per pass: 16 ran energy-only predict of the shipped ensemble at 1,450
# structures/s, 64 at 1,440, one at a time 820 (best of five passes, 2,000 Au20)
CPU_CHUNK = 16
ARRAYS = (
    "tables",  # [B, grid, M, F]: per block a pair's four spline rows are contiguous
    "embedding",  # [M, F]
    "w_in",  # [B, M, F, F], as x @ W (in2f)
    "w_out1",
    "b_out1",  # [B, M, F]
    "w_out2",
    "b_out2",
    "head1_w",  # [M, F, F/2]
    "head1_b",  # [M, F/2]
    "head2_w",  # [M, F/2]
    "head2_b",  # [M]
)
SCALARS = ("spacing", "cutoff", "repulsion_radius", "repulsion_strength")


class NumpySchNet:
    """Frozen-table ``SchNet`` members as stacked NumPy arrays of ``dtype``.

    The members of an ensemble share one architecture, so every step runs for all of them
    at once on arrays with a leading member axis: one pass costs little more than one
    network, where a loop over members cost one call each. Built from the torch networks
    (``from_networks``) or from the arrays they were saved as (``save``/``load``, which need
    no torch).
    """

    def __init__(
        self, arrays: Mapping[str, np.ndarray], dtype: np.dtype | type = np.float32
    ) -> None:
        missing = [k for k in (*ARRAYS, *SCALARS) if k not in arrays]
        if missing:
            raise ValueError(f"NumpySchNet arrays lack {', '.join(missing)}")
        self.dtype = np.dtype(dtype)
        self.arrays = {k: np.ascontiguousarray(arrays[k], dtype=self.dtype) for k in ARRAYS}
        bad = [k for k in (*ARRAYS, *SCALARS) if not np.isfinite(arrays[k]).all()]
        if bad:
            raise ValueError(f"non-finite (NaN/inf) values in {', '.join(bad)}")
        a = self.arrays
        self.spacing, self.cutoff = float(arrays["spacing"]), float(arrays["cutoff"])
        self.repulsion_radius = float(arrays["repulsion_radius"])
        # the prior in the network's normalised units, as in SchNet._repulsion
        self.repulsion_strength = float(arrays["repulsion_strength"])
        self.blocks, _, self.members, self.hidden = a["tables"].shape
        if a["embedding"].shape != (self.members, self.hidden):
            raise ValueError("NumpySchNet arrays: tables and embedding disagree in shape")
        self.tables = list(a["tables"])
        self.embedding = a["embedding"]
        # per block: in2f, out1 (weight, bias), out2 (weight, bias) as x @ W + b, and the
        # reverse pass's transposed weights, contiguous (a transposed view costs 2.5x a product)
        self.interactions = [
            (
                a["w_in"][b],
                a["w_out1"][b],
                a["b_out1"][b][:, None],
                a["w_out2"][b],
                a["b_out2"][b][:, None],
            )
            for b in range(self.blocks)
        ]
        self.reverse = [
            tuple(_transposed(a[name][b]) for name in ("w_in", "w_out1", "w_out2"))
            for b in range(self.blocks)
        ]
        self.head1 = (a["head1_w"], a["head1_b"][:, None])
        self.head1_reverse = _transposed(a["head1_w"])
        self.head2 = (a["head2_w"], a["head2_b"][:, None])
        self._pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_networks(
        cls, networks: Sequence[Any], dtype: np.dtype | type = np.float32
    ) -> NumpySchNet:
        """The arrays of frozen-table torch ``SchNet`` networks of one architecture."""
        if not networks:
            raise ValueError("NumpySchNet needs at least one network")
        if any(net._frozen is None for net in networks):
            raise ValueError("NumpySchNet needs networks with a frozen filter table")
        arch = networks[0].architecture

        def stack(modules: Sequence[Any], tensor_of: Any) -> np.ndarray:
            """One tensor of every member's module, stacked on a leading member axis."""
            return np.stack([tensor_of(m).detach().cpu().double().numpy() for m in modules])

        def per_block(tensor_of: Any) -> np.ndarray:
            """``stack`` of one layer of every block, on a leading block axis."""
            return np.stack(
                [
                    stack([net.interactions[b] for net in networks], tensor_of)
                    for b in range(arch.blocks)
                ]
            )

        arrays = {
            "tables": np.stack(
                [stack(networks, lambda n, b=b: n._frozen[1][b]) for b in range(arch.blocks)]
            ).transpose(0, 2, 1, 3),
            "embedding": stack(networks, lambda net: net.embedding),
            "w_in": per_block(lambda layer: layer.in2f.weight.T),
            "w_out1": per_block(lambda layer: layer.out1.weight.T),
            "b_out1": per_block(lambda layer: layer.out1.bias),
            "w_out2": per_block(lambda layer: layer.out2.weight.T),
            "b_out2": per_block(lambda layer: layer.out2.bias),
            "head1_w": stack(networks, lambda net: net.head1.weight.T),
            "head1_b": stack(networks, lambda net: net.head1.bias),
            "head2_w": stack(networks, lambda net: net.head2.weight[0]),
            "head2_b": stack(networks, lambda net: net.head2.bias[0]),
            "spacing": float(networks[0]._frozen[0]),
            "cutoff": float(arch.cutoff),
            "repulsion_radius": float(arch.repulsion_radius),
            "repulsion_strength": float(arch.repulsion_strength) / float(networks[0].energy_scale),
        }
        return cls(arrays, dtype)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the arrays (in this model's dtype) and scalars as one ``.npz``."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        scalars = {k: np.float64(getattr(self, k)) for k in SCALARS}
        np.savez_compressed(tmp, **self.arrays, **scalars)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], dtype: np.dtype | type = np.float32) -> NumpySchNet:
        """Read a ``save``d file; ValueError naming it when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read NumPy SchNet arrays ({err})") from None
        try:
            return cls(arrays, dtype)
        except (ValueError, TypeError, IndexError) as err:
            raise ValueError(f"{path}: {err}") from None

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
