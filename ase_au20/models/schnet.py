"""SchNet for gold clusters: the torch network and the ``SchNetModel`` (ensemble) wrapper.

The network maps positions ``[B, N, 3]`` (one cluster size per batch) to normalised per-atom
outputs. Pairs ``i < j`` within the cutoff are gathered once per call; each interaction
block evaluates its continuous filter once per unordered pair and sends the message both
ways, which halves the dominant cost (the filter network). The cosine cutoff goes smoothly
to zero at ``cutoff``, so energies and forces are continuous when pairs enter or leave.

``SchNetModel`` owns the target scaling (per-atom mean and std from training, kept in the
card as exact floats and applied in float64), the card, saving/loading without pickle and
batched prediction with autograd forces.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ase_au20.models.batching import Structure, chunks, group_by_size

CARD_FILE = "card.json"
LOG2 = math.log(2.0)
# Below this many atom pairs per call one thread beats two (thread hand-off costs more).
SINGLE_THREAD_PAIRS = 20_000


@dataclass(frozen=True)
class SchNetArchitecture:
    """Network size: hidden features, interaction blocks, Gaussian RBFs and cutoff (Å)."""

    hidden: int = 128
    blocks: int = 4
    rbf: int = 64
    cutoff: float = 6.0

    def __post_init__(self) -> None:
        for name in ("hidden", "blocks", "rbf"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"architecture {name} must be a positive integer, got {value!r}")
        if not isinstance(self.cutoff, int | float) or not self.cutoff > 0:
            raise ValueError(f"architecture cutoff must be a positive number, got {self.cutoff!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchNetArchitecture:
        """Rebuild from a card's ``architecture`` (extra keys such as ``ensemble_size`` ignored)."""
        missing = [k for k in ("hidden", "blocks", "rbf", "cutoff") if k not in data]
        if missing:
            raise ValueError(f"architecture lacks {', '.join(missing)}")
        return cls(
            int(data["hidden"]), int(data["blocks"]), int(data["rbf"]), float(data["cutoff"])
        )


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
        self.coeff = -0.5 / (self.cutoff / max(rbf - 1, 1)) ** 2
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

    def tabulated(self, d: torch.Tensor, spacing: float) -> torch.Tensor:
        """Filters from a Catmull-Rom table on a grid of ``spacing`` Å (training shortcut).

        The filter network runs on ~cutoff/spacing grid points instead of every pair; the
        interpolant is C1, so it stays differentiable in ``d`` for the zero-force loss.
        """
        lo = max(float(d.min()) - spacing, 0.0)
        lo = math.floor(lo / spacing) * spacing
        n_grid = int(math.ceil((self.cutoff - lo) / spacing)) + 4
        grid = lo + spacing * torch.arange(-1, n_grid - 1, dtype=d.dtype, device=d.device)
        table = self.forward(grid.unsqueeze(-1))  # [blocks, G, F]; row k+1 holds lo + k*h
        t = (d.squeeze(-1) - lo) / spacing
        k = t.detach().floor().long().clamp_(0, n_grid - 4)
        u = (t - k).unsqueeze(-1)
        u2, u3 = u * u, u * u * u
        weights = (
            0.5 * (-u3 + 2 * u2 - u),
            0.5 * (3 * u3 - 5 * u2 + 2),
            0.5 * (-3 * u3 + 4 * u2 + u),
            0.5 * (u3 - u2),
        )
        w = weights[0] * table[:, k]
        for m in range(1, 4):
            w = w + weights[m] * table[:, k + m]
        return w


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
        y = y.index_add(0, first, w * h[second]).index_add(0, second, w * h[first])
        return x + self.out2(shifted_softplus(self.out1(y)))


class SchNet(nn.Module):
    """Positions ``[B, N, 3]`` (Å) -> normalised per-atom energies ``[B, N]``."""

    def __init__(self, architecture: SchNetArchitecture = SchNetArchitecture()) -> None:
        super().__init__()
        self.architecture = architecture
        hidden = architecture.hidden
        self.embedding = nn.Parameter(torch.randn(hidden))
        self.filters = FilterNetwork(architecture)
        self.interactions = nn.ModuleList(Interaction(hidden) for _ in range(architecture.blocks))
        self.head1 = nn.Linear(hidden, hidden // 2)
        self.head2 = nn.Linear(hidden // 2, 1)
        self._pair_cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

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

        ``table_spacing`` (Å) switches to tabulated filters (used by training only).
        """
        n_batch, n_atoms, _ = positions.shape
        iu, ju = self._pairs(n_atoms, positions.device)
        dist = (positions[:, iu] - positions[:, ju]).norm(dim=-1)  # [B, P]
        b, p = torch.nonzero(dist < self.architecture.cutoff, as_tuple=True)
        d = dist[b, p].unsqueeze(-1)
        first, second = b * n_atoms + iu[p], b * n_atoms + ju[p]
        if table_spacing is None or len(d) == 0:
            w = self.filters(d)
        else:
            w = self.filters.tabulated(d, table_spacing)
        x = self.embedding.expand(n_batch * n_atoms, -1)
        for block, w_block in zip(self.interactions, w, strict=True):
            x = block(x, w_block, first, second)
        out = self.head2(shifted_softplus(self.head1(x)))
        return out.view(n_batch, n_atoms)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else is passed to torch."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: {err}") from None


@contextmanager
def _threads(n: int | None):
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
        self.networks = [net.to(device=self.device, dtype=dtype).eval() for net in networks]
        self.atom_mean = float(atom_mean)
        self.atom_std = float(atom_std)
        self.card = dict(card or {})
        self.card["model_type"] = "schnet"
        self.card["architecture"] = {**asdict(self.architecture), "ensemble_size": len(networks)}
        self.card["target_scaling"] = {"atom_mean": self.atom_mean, "atom_std": self.atom_std}

    def __len__(self) -> int:
        return len(self.networks)

    @property
    def cutoff(self) -> float:
        """Interaction cutoff (Å)."""
        return self.architecture.cutoff

    # -- files ---------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``card.json`` and ``member_<k>.pt`` state dicts (no pickle) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("member_*.pt"):
            stale.unlink()
        for k, net in enumerate(self.networks):
            state = {name: t.detach().cpu() for name, t in net.state_dict().items()}
            tmp = directory / f".member_{k}.pt.tmp"
            torch.save(state, tmp)
            os.replace(tmp, directory / f"member_{k}.pt")
        tmp = directory / f".{CARD_FILE}.tmp"
        tmp.write_text(json.dumps(self.card, indent=2, sort_keys=True, default=_json_default))
        os.replace(tmp, directory / CARD_FILE)
        return directory

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32,
    ) -> SchNetModel:
        """Load a model directory; a missing, truncated or mismatched file is a ValueError."""
        directory = Path(directory)
        card = read_schnet_card(directory)
        card_path = directory / CARD_FILE
        try:
            arch = SchNetArchitecture.from_dict(card["architecture"])
            size = int(card["architecture"].get("ensemble_size", 1))
            scaling = card["target_scaling"]
            atom_mean, atom_std = float(scaling["atom_mean"]), float(scaling["atom_std"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{card_path}: invalid SchNet card ({err})") from None
        found = sorted(p.name for p in directory.glob("member_*.pt"))
        expected = [f"member_{k}.pt" for k in range(size)]
        if found != expected:
            raise ValueError(
                f"{card_path}: card lists {size} ensemble member(s) {expected} "
                f"but the directory holds {found}"
            )
        networks = [_load_member(directory / name, arch) for name in expected]
        return cls(networks, atom_mean, atom_std, card=card, device=device, dtype=dtype)

    # -- prediction ----------------------------------------------------------------------

    def predict(
        self, structures: Sequence[Structure], forces: bool = False, batch_size: int = 512
    ) -> dict[str, np.ndarray]:
        """Energies (eV), per-atom energies, optional forces (eV/Å) and ensemble spread.

        Mixed cluster sizes are grouped by size; per-atom arrays are then padded with NaN
        to the largest size. ``energy`` is the ensemble mean, ``energy_std`` the sample
        standard deviation across members (only when there are several).
        """
        if len(structures) == 0:
            raise ValueError("predict needs at least one structure")
        groups = group_by_size(structures)
        n, n_max = len(structures), max(groups)
        energy = np.empty(n)
        energies = np.full((n, n_max), np.nan)
        members = np.empty((len(self.networks), n))
        force_out = np.full((n, n_max, 3), np.nan) if forces else None
        for size, (idx, positions) in groups.items():
            for part in chunks(len(idx), batch_size):
                rows = idx[part]
                h, grad = self._evaluate(positions[part], forces)
                atom = self.atom_std * h + self.atom_mean  # [M, B, N] float64
                member_totals = atom.sum(-1)
                members[:, rows] = member_totals
                energies[rows, :size] = atom.mean(0)
                energy[rows] = member_totals.mean(0)
                if forces:
                    force_out[rows, :size] = -self.atom_std * grad
        out = {"energy": energy, "energies": energies}
        if forces:
            out["forces"] = force_out
        if len(self.networks) > 1:
            out["energy_std"] = members.std(0, ddof=1)
        return out

    def _evaluate(
        self, positions: np.ndarray, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Normalised per-atom outputs ``[M, B, N]`` and d(mean Σh)/dr ``[B, N, 3]``."""
        pos = torch.as_tensor(positions, dtype=self.dtype, device=self.device)
        n_pairs = pos.shape[0] * pos.shape[1] * (pos.shape[1] - 1) // 2
        threads = 1 if self.device.type == "cpu" and n_pairs <= SINGLE_THREAD_PAIRS else None
        with _threads(threads):
            if not forces:
                with torch.inference_mode():
                    h = torch.stack([net(pos) for net in self.networks])
                return h.double().cpu().numpy(), None
            with torch.enable_grad():
                pos.requires_grad_(True)
                h = torch.stack([net(pos) for net in self.networks])
                (grad,) = torch.autograd.grad(h.sum() / len(self.networks), pos)
            return h.detach().double().cpu().numpy(), grad.double().cpu().numpy()


def read_schnet_card(directory: Path) -> dict[str, Any]:
    """The JSON card of a SchNet model directory, checked for ``model_type``."""
    card_path = Path(directory) / CARD_FILE
    if not card_path.is_file():
        raise ValueError(f"{card_path}: model card not found")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{card_path}: not a valid JSON model card ({err})") from None
    if not isinstance(card, dict) or card.get("model_type") != "schnet":
        kind = card.get("model_type") if isinstance(card, dict) else type(card).__name__
        raise ValueError(f"{card_path}: expected model_type 'schnet', found {kind!r}")
    return card


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
    net.load_state_dict(state)
    return net


def _json_default(value: Any) -> Any:
    """JSON encoder fallback for numpy scalars and arrays in cards."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a model card")
