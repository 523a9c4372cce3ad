"""SchNet for gold clusters: the torch network and the ``SchNetModel`` (ensemble) wrapper.

The network maps positions ``[B, N, 3]`` (one cluster size per batch) to normalised per-atom
outputs. Pairs ``i < j`` within the cutoff are gathered once per call; each interaction
block evaluates its continuous filter once per unordered pair and sends the message both
ways, which halves the dominant cost (the filter network). The cosine cutoff goes smoothly
to zero at ``cutoff``, so energies and forces are continuous when pairs enter or leave.

``SchNetModel`` owns the target scaling (per-atom mean and std from training, kept in the
card as exact floats and applied in float64), the card, saving/loading without pickle and
batched prediction with autograd forces (on CPU through the NumPy path, ``numpy_path.py``).
``save`` also writes that path's arrays (``frozen.py``), so CPU inference needs no torch.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ase_au20.models.card import (
    CARD_NAME,
    REQUIRED_KEYS,
    file_sha256,
    open_model_card,
    require_listed,
    write_card,
)
from ase_au20.models.domain import DOMAIN_NAME, Domain, with_domain
from ase_au20.models.schnet.batching import Structure, predict_in_batches
from ase_au20.models.schnet.config import SchNetArchitecture, read_schnet_card
from ase_au20.models.schnet.numpy_path import CPU_CHUNK, FROZEN_NAME, NumpySchNet
from ase_au20.models.schnet.spline import CATMULL_ROM

LOG2 = math.log(2.0)
# torch threads per predict chunk on CPU: one. Intra-op threads on these small tensors ran
# up to 10x slower whenever another process held the second core (they wait on each other);
# predict instead evaluates chunks side by side, one Python thread per core torch may use
# (torch releases the GIL inside its kernels): 2.0-3.5x the one-thread throughput on 2
# cores, and no slowdown with a busy core (energy-only, 2,000 Au20, interleaved runs).
PREDICT_THREADS = 1
# Structures per predict chunk on CUDA: larger launches amortise the kernel overheads (512:
# a choice, not measured here: no GPU on the development machines); CPU: numpy_path's.
CUDA_CHUNK = 512
CATMULL_ROM_T = torch.from_numpy(CATMULL_ROM)


def shifted_softplus(x: torch.Tensor) -> torch.Tensor:
    """softplus(x) - log 2: smooth, zero at zero (SchNet's activation)."""
    return nn.functional.softplus(x) - LOG2


class FilterNetwork(nn.Module):
    """Continuous filters of every interaction block as a function of pair distance.

    Gaussian expansion -> dense + shifted softplus -> dense, times the cosine cutoff. The
    first dense layer of all blocks is one matmul, the second a batched matmul.
    """

    def __init__(self, architecture: SchNetArchitecture) -> None:
        super().__init__()
        hidden, blocks, rbf = architecture.hidden, architecture.blocks, architecture.rbf
        self.cutoff = architecture.cutoff
        self.blocks, self.hidden = blocks, hidden
        self.register_buffer("centers", torch.linspace(0.0, self.cutoff, rbf), persistent=False)
        self.coeff = -float(architecture.gamma)
        self.first = nn.Linear(rbf, blocks * hidden)
        bound = 1.0 / math.sqrt(hidden)
        self.weight = nn.Parameter(torch.empty(blocks, hidden, hidden).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(blocks, 1, hidden).uniform_(-bound, bound))

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """Filters ``[blocks, P, F]`` for distances ``d [P, 1]`` (Å, below the cutoff)."""
        expansion = torch.exp(self.coeff * (d - self.centers) ** 2)
        h = shifted_softplus(self.first(expansion)).view(-1, self.blocks, self.hidden)
        w = torch.baddbmm(self.bias, h.transpose(0, 1), self.weight)
        return w * (0.5 * (torch.cos(d * (math.pi / self.cutoff)) + 1.0))

    def grid_table(
        self, lo: float, n_grid: int, spacing: float, like: torch.Tensor
    ) -> torch.Tensor:
        """Filters ``[blocks, n_grid, F]`` at distances ``lo + (r - 1)·spacing`` for rows r."""
        grid = lo + spacing * torch.arange(-1, n_grid - 1, dtype=like.dtype, device=like.device)
        return self.forward(grid.unsqueeze(-1))

    def interpolate(
        self, table: torch.Tensor, lo: float, spacing: float, d: torch.Tensor
    ) -> list[torch.Tensor]:
        """Catmull-Rom interpolation of a grid table ``[blocks, n_grid, F]`` at ``d [P, 1]``:
        one ``[P, F]`` filter per block, by a sparse (4 entries per row) matrix product.

        Grid nodes sit at multiples of ``spacing``, so every table gives the same C1 function
        of distance. Not differentiable in ``d``: forces go through ``interpolate_in_d``.
        Block by block, the products stay in cache (1.2-1.4x faster energy-only predict on
        CPU than one product over all blocks).
        """
        weights, nodes = _spline_nodes(d, lo, spacing, table.shape[1])
        rows = torch.arange(0, 4 * len(d) + 1, 4, device=d.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            interp = torch.sparse_csr_tensor(
                rows,
                nodes.reshape(-1),
                weights.reshape(-1),
                (len(d), table.shape[1]),
                check_invariants=False,
            )
        return [interp @ block for block in table]

    def interpolate_in_d(
        self, flat_table: torch.Tensor, lo: float, spacing: float, d: torch.Tensor
    ) -> torch.Tensor:
        """The same interpolation, differentiable in ``d``, from the table laid out as
        ``[n_grid, blocks*F]``: four gathers per pair -> ``[blocks, P, F]``."""
        weights, nodes = _spline_nodes(d, lo, spacing, len(flat_table))
        rows = flat_table.index_select(0, nodes.view(-1)).view(len(d), 4, -1)
        w = torch.bmm(weights.unsqueeze(1), rows).squeeze(1)
        return w.view(len(d), self.blocks, self.hidden).transpose(0, 1)

    def tabulated(self, d: torch.Tensor, spacing: float) -> list[torch.Tensor] | torch.Tensor:
        """Filters via a table over the batch's distance range (training shortcut).

        The filter network runs on ~cutoff/spacing grid points instead of every pair; the
        cubic interpolation differs from the exact filters by O(spacing^3).
        """
        lo = math.floor(max(float(d.min()) - spacing, 0.0) / spacing) * spacing
        n_grid = int(math.ceil((self.cutoff - lo) / spacing)) + 4
        table = self.grid_table(lo, n_grid, spacing, d)
        if d.requires_grad:
            return self.interpolate_in_d(flat_blocks(table), lo, spacing, d)
        return self.interpolate(table, lo, spacing, d)


def flat_blocks(table: torch.Tensor) -> torch.Tensor:
    """``[blocks, n_grid, F]`` -> ``[n_grid, blocks*F]`` (one gather serves every block)."""
    return table.transpose(0, 1).reshape(table.shape[1], -1)


def _spline_nodes(
    d: torch.Tensor, lo: float, spacing: float, n_grid: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Catmull-Rom weights ``[P, 4]`` of grid rows ``k-1 .. k+2`` and those rows ``[P, 4]``."""
    t = (d.squeeze(-1) - lo) / spacing
    k = t.detach().floor().long().clamp_(0, n_grid - 4)
    u = t - k
    powers = torch.stack((torch.ones_like(u), u, u * u, u * u * u), dim=1)
    return powers @ CATMULL_ROM_T.to(u), k.unsqueeze(-1) + torch.arange(4, device=d.device)


class Interaction(nn.Module):
    """One SchNet interaction: continuous-filter convolution plus an atom-wise update."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.in2f = nn.Linear(hidden, hidden, bias=False)
        self.out1 = nn.Linear(hidden, hidden)
        self.out2 = nn.Linear(hidden, hidden)

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, first: torch.Tensor, second: torch.Tensor
    ) -> torch.Tensor:
        """Update flat atom features ``x [A, F]`` with pair filters ``w [P, F]`` (both ways)."""
        h = self.in2f(x)
        y = torch.zeros_like(h)
        # index_select, not h[second]: advanced indexing ran ~10x slower on CPU (torch 2.13)
        y = y.index_add(0, first, w * h.index_select(0, second))
        y = y.index_add(0, second, w * h.index_select(0, first))
        return x + self.out2(shifted_softplus(self.out1(y)))


class SchNet(nn.Module):
    """Positions ``[B, N, 3]`` (Å) -> normalised per-atom energies ``[B, N]``.

    ``energy_scale`` (eV, the per-atom target std) converts the fixed repulsion prior of
    the architecture into the network's normalised units; ``SchNetModel`` sets it.
    """

    def __init__(
        self, architecture: SchNetArchitecture | None = None, energy_scale: float = 1.0
    ) -> None:
        super().__init__()
        architecture = architecture or SchNetArchitecture()
        self.architecture = architecture
        self.energy_scale = float(energy_scale)
        hidden = architecture.hidden
        self.embedding = nn.Parameter(torch.randn(hidden))
        self.filters = FilterNetwork(architecture)
        self.interactions = nn.ModuleList(Interaction(hidden) for _ in range(architecture.blocks))
        self.head1 = nn.Linear(hidden, hidden // 2)
        self.head2 = nn.Linear(hidden // 2, 1)
        self._pair_cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._frozen: tuple[float, torch.Tensor, torch.Tensor] | None = None

    def freeze_filters(self, spacing: float | None) -> None:
        """Evaluate the filters once on a grid (inference with fixed weights), None to undo.

        The network then computes exactly the tabulated function it was trained on. The
        table is kept per block (energies) and flat (forces, see ``interpolate_in_d``).
        """
        self._frozen = None
        if spacing is not None:
            like = self.embedding
            n_grid = int(math.ceil(self.architecture.cutoff / spacing)) + 4
            with torch.no_grad(), torch.inference_mode(False):
                table = self.filters.grid_table(0.0, n_grid, spacing, like).detach()
                self._frozen = (spacing, table, flat_blocks(table))

    def _pairs(self, n_atoms: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Index arrays of all unordered pairs ``i < j`` of ``n_atoms`` atoms (cached)."""
        key = (n_atoms, str(device))
        if key not in self._pair_cache:
            with torch.inference_mode(False):  # cached indices must also serve autograd calls
                iu = torch.triu_indices(n_atoms, n_atoms, offset=1, device=device)
            self._pair_cache[key] = (iu[0], iu[1])
        return self._pair_cache[key]

    def forward(self, positions: torch.Tensor, table_spacing: float | None = None) -> torch.Tensor:
        """Normalised per-atom outputs; differentiable with respect to ``positions``.

        ``table_spacing`` (Å) tabulates the filters afresh (training); a frozen table
        (``freeze_filters``) serves inference; otherwise the exact filter network runs.
        """
        n_batch, n_atoms, _ = positions.shape
        iu, ju = self._pairs(n_atoms, positions.device)
        dist = (positions[:, iu] - positions[:, ju]).norm(dim=-1)  # [B, P]
        b, p = torch.nonzero(dist < self.architecture.cutoff, as_tuple=True)
        d = dist[b, p].unsqueeze(-1)
        first, second = b * n_atoms + iu[p], b * n_atoms + ju[p]
        if table_spacing is not None and len(d):
            w = self.filters.tabulated(d, table_spacing)
        elif self._frozen is not None and len(d):
            spacing, table, flat = self._frozen
            w = (
                self.filters.interpolate_in_d(flat, 0.0, spacing, d)
                if d.requires_grad
                else self.filters.interpolate(table, 0.0, spacing, d)
            )
        else:
            w = self.filters(d)
        x = self.embedding.expand(n_batch * n_atoms, -1)
        for block, w_block in zip(self.interactions, w, strict=True):
            x = block(x, w_block, first, second)
        out = self.head2(shifted_softplus(self.head1(x))).view(-1)
        if self.architecture.repulsion_radius > 0 and len(d):
            out = out + self._repulsion(d.squeeze(-1), first, second, len(out))
        return out.view(n_batch, n_atoms)

    def _repulsion(
        self, d: torch.Tensor, first: torch.Tensor, second: torch.Tensor, n_flat: int
    ) -> torch.Tensor:
        """Per-atom share (half of each pair) of k·(r − d)³ for d < r, in normalised units."""
        arch = self.architecture
        overlap = (arch.repulsion_radius - d).clamp(min=0.0)
        half = (0.5 * arch.repulsion_strength / self.energy_scale) * overlap**3
        zero = torch.zeros(n_flat, dtype=half.dtype, device=half.device)
        return zero.index_add(0, first, half).index_add(0, second, half)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to torch."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: {err}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        build = (
            "a CPU-only build"
            if torch.version.cuda is None
            else f"built for CUDA {torch.version.cuda}, but it finds no GPU"
        )
        raise ValueError(
            f"device {device!r} asked for CUDA, but the installed torch {torch.__version__} is "
            f"{build}: use device='cpu' or 'auto'"
        )
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= count:
        raise ValueError(f"device {device!r}: only {count} CUDA device(s) visible")
    return resolved


DTYPES = ("float32", "float64")


def torch_dtype(dtype: Any) -> torch.dtype:
    """``"float32"``/``"float64"`` or one of those torch dtypes -> the torch dtype."""
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return getattr(torch, dtype)
    raise ValueError(f"dtype must be one of {DTYPES} (or the torch dtype), got {dtype!r}")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily use ``n`` torch threads (no-op for ``None``)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SchNetModel:
    """One SchNet or an ensemble of them, with target scaling, card and batched prediction."""

    domain: Domain | None = None  # the domain of applicability: set by load / attach_domain

    def __init__(
        self,
        networks: Sequence[SchNet],
        atom_mean: float,
        atom_std: float,
        card: dict[str, Any] | None = None,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not networks:
            raise ValueError("a SchNetModel needs at least one network")
        archs = {net.architecture for net in networks}
        if len(archs) != 1:
            raise ValueError("all ensemble members must share one architecture")
        if not atom_std > 0:
            raise ValueError(f"atom_std must be positive, got {atom_std}")
        self.device = resolve_device(device)
        self.dtype = dtype
        self.architecture = archs.pop()
        # copies, so re-wrapping a model for another device/dtype leaves the original intact
        self.networks = [
            copy.deepcopy(net).to(device=self.device, dtype=dtype).eval() for net in networks
        ]
        self.atom_mean = float(atom_mean)
        self.atom_std = float(atom_std)
        for net in self.networks:
            net.energy_scale = self.atom_std
        self.card = dict(card or {})
        self.card["model_type"] = "schnet"
        self.card["architecture"] = {**asdict(self.architecture), "ensemble_size": len(networks)}
        self.card["target_scaling"] = {"atom_mean": self.atom_mean, "atom_std": self.atom_std}
        # trained on tabulated filters: predict with the same table (exact filters without one)
        self.table_spacing = self.card.get("hyperparameters", {}).get("table_spacing")
        for net in self.networks:
            net.freeze_filters(self.table_spacing)
        # on CPU every structure runs through NumPy with an analytic gradient, all members
        # stacked: 4.4x torch's energy-only throughput in chunks of 16 (ensemble of four)
        self.numpy_path = None
        if self.device.type == "cpu" and self.table_spacing is not None:
            np_dtype = np.float64 if dtype == torch.float64 else np.float32
            self.numpy_path = NumpySchNet.from_networks(self.networks, np_dtype)

    def __len__(self) -> int:
        return len(self.networks)

    @property
    def has_spread(self) -> bool:
        """Only an ensemble (several networks) has a spread."""
        return len(self.networks) > 1

    @property
    def ensemble_size(self) -> int:
        """How many networks ``predict`` averages (``member_energies`` when more than one)."""
        return len(self.networks)

    def to(self, device: str | torch.device = "auto", dtype: Any = torch.float32) -> SchNetModel:
        """This model on another device or dtype (a copy; ``dtype`` a name or torch dtype)."""
        copy = SchNetModel(
            self.networks,
            self.atom_mean,
            self.atom_std,
            card=self.card,
            device=device,
            dtype=torch_dtype(dtype),
        )
        copy.domain = self.domain
        return copy

    @property
    def cutoff(self) -> float:
        """Interaction cutoff (Å)."""
        return self.architecture.cutoff

    # -- files ---------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``member_<k>.pt`` state dicts (no pickle) and ``card.json`` with their SHA-256."""
        required = [k for k in REQUIRED_KEYS if k not in self.card]
        if required:
            raise ValueError(
                f"model card lacks {', '.join(required)}: build it with models.card.new_card"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("member_*.pt"):
            stale.unlink()
        files = {}
        if self.table_spacing is not None:  # the CPU inference arrays (frozen.py)
            frozen = NumpySchNet.from_networks(self.networks, np.float32)
            files[FROZEN_NAME] = file_sha256(frozen.save(directory / FROZEN_NAME))
        else:
            (directory / FROZEN_NAME).unlink(missing_ok=True)
        for k, net in enumerate(self.networks):
            state = {name: t.detach().cpu() for name, t in net.state_dict().items()}
            name = f"member_{k}.pt"
            tmp = directory / f".{name}.tmp"
            torch.save(state, tmp)
            os.replace(tmp, directory / name)
            files[name] = file_sha256(directory / name)
        if self.domain is not None:  # a loaded model saved again keeps its domain
            files[DOMAIN_NAME] = file_sha256(self.domain.save(directory))
        self.card["files"] = files
        write_card(directory, self.card)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        device: str | torch.device = "auto",
        dtype: Any = torch.float32,
    ) -> SchNetModel:
        """Load a model directory; a missing, truncated or mismatched file is a ValueError."""
        directory = Path(directory)
        card = open_model_card(directory, "schnet")
        card_path = directory / CARD_NAME
        settings = read_schnet_card(card, card_path)
        found = sorted(p.name for p in directory.glob("member_*.pt"))
        expected = [f"member_{k}.pt" for k in range(settings.members)]
        if found != expected:
            raise ValueError(
                f"{card_path}: card lists {settings.members} ensemble member(s) {expected} "
                f"but the directory holds {found}"
            )
        require_listed(card, expected, card_path)
        networks = [_load_member(directory / name, settings.architecture) for name in expected]
        scaling = (settings.atom_mean, settings.atom_std)
        model = cls(networks, *scaling, card=card, device=device, dtype=torch_dtype(dtype))
        return with_domain(model, directory)

    # -- prediction ----------------------------------------------------------------------

    def predict(
        self,
        structures: Sequence[Structure],
        forces: bool = False,
        batch_size: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Energies (eV), per-atom energies, optional forces (eV/Å) and ensemble spread.

        Mixed cluster sizes are grouped by size; per-atom arrays are then padded with NaN
        to the largest size. ``batch_size`` structures go through the network at once
        (default ``CPU_CHUNK`` or ``CUDA_CHUNK``); on CPU with a frozen table they run
        through the NumPy path, otherwise on torch. ``energy`` is the ensemble mean,
        ``energy_std`` the sample standard deviation across members (only when there are
        several).
        """
        if batch_size is None:
            batch_size = CPU_CHUNK if self.device.type == "cpu" else CUDA_CHUNK
        scaling = (self.atom_mean, self.atom_std)
        return predict_in_batches(
            structures, self._evaluate_all, len(self.networks), scaling, forces, batch_size
        )

    def _evaluate_all(
        self, batches: list[np.ndarray], forces: bool
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """``_evaluate`` of each batch, in order; on CPU without the NumPy path several
        batches run side by side, one thread each, on as many threads as torch may use (see
        ``PREDICT_THREADS``). The NumPy path holds the GIL between its kernels: a second
        thread gained nothing (870 against 860 structures/s), so it runs in one."""
        torch_on_cpu = self.device.type == "cpu" and self.numpy_path is None
        workers = min(torch.get_num_threads(), len(batches)) if torch_on_cpu else 1
        if workers <= 1:
            yield from (self._evaluate(batch, forces) for batch in batches)
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="schnet-predict") as pool:
            yield from pool.map(lambda batch: self._evaluate(batch, forces), batches)

    def _evaluate(
        self, positions: np.ndarray, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Normalised per-atom outputs ``[M, B, N]`` and d(mean Σh)/dr ``[B, N, 3]``."""
        if self.numpy_path is not None:
            return self.numpy_path(positions, forces)
        return self._evaluate_torch(positions, forces)

    def _evaluate_torch(
        self, positions: np.ndarray, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``_evaluate`` through the torch networks (CUDA, exact filters, and the reference
        that the NumPy path is tested against)."""
        pos = torch.as_tensor(positions, dtype=self.dtype, device=self.device)
        threads = PREDICT_THREADS if self.device.type == "cpu" else None
        with torch_threads(threads):
            if not forces:
                with torch.inference_mode():
                    h = torch.stack([net(pos) for net in self.networks])
                return h.double().cpu().numpy(), None
            with torch.enable_grad():
                pos.requires_grad_(True)
                h = torch.stack([net(pos) for net in self.networks])
                (grad,) = torch.autograd.grad(h.sum() / len(self.networks), pos)
            return h.detach().double().cpu().numpy(), grad.double().cpu().numpy()


def _load_member(path: Path, arch: SchNetArchitecture) -> SchNet:
    """One ensemble member from its state dict, checked against the card's architecture."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated/corrupt files raise many different torch errors
        raise ValueError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from None
    net = SchNet(arch)
    expected = net.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    )
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
            for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if items
        )
        raise ValueError(f"{path}: weights do not match the card's architecture {arch} ({details})")
    bad = sorted(name for name, tensor in state.items() if not torch.isfinite(tensor).all())
    if bad:
        raise ValueError(f"{path}: non-finite (NaN/inf) weights in {', '.join(bad[:5])}")
    net.load_state_dict(state)
    return net
