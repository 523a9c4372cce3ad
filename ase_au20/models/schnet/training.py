"""Training SchNet (or an ensemble) on isomer energies, with optional teacher distillation.

Loss per training row, in units of the per-atom energy std σ (targets are standardised as
(E − N·μ)/σ with μ, σ the per-atom mean/std of the training energies):

* labelled rows: ``w · [(1 − kd_lambda)·(pred − E)² + kd_lambda·(pred − E_teacher)²]``
  with ``w = outlier_weight`` for rows flagged ``is_outlier`` and 1 otherwise;
* vicinal rows (``vkd`` Gaussian rattles of training geometries, a fixed pool drawn once and
  labelled once by the teacher): ``vkd_weight · (pred − E_teacher)²``;
* per-atom distillation on every row with teacher labels: ``kd_atom_weight`` times the mean
  over atoms of ``(pred_i − e_i,teacher)²``, e_i the teacher's local energies (the KRR's
  per-atom terms): twenty targets per geometry instead of one;
* zero-force term: the isomers are DFTB1-relaxed, so ``zero_force_weight · mean |F|²``
  (eV²/Å²) on the first ``zero_force_subset`` labelled rows of each batch (double backward);
* reference forces: ``force_weight · mean |F − F_ref|²`` (eV²/Å², per atom) on every row
  with reference forces: the corpus frames (``database.corpus``) and, with them, the
  isomers, whose DFTB1 forces are zero (the median largest is 4e-3 eV/Å); double backward;
* force distillation on the vicinal rows: ``kd_force_weight · mean |F − F_teacher|²``
  (eV²/Å², per atom) on the first ``kd_force_subset`` vicinal rows of each batch, the
  teacher's exact forces at geometries away from the minima (double backward).

Speed: during training the filter network is evaluated on a distance grid and interpolated
(``table_spacing``, see ``FilterNetwork.tabulated``); validation, the zero-force term and
the saved model use the exact filters. AdamW, ReduceLROnPlateau on the validation MAE,
early stopping with the best weights restored; seeds fix weights and batch order.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy.spatial.distance import pdist
from tqdm.auto import tqdm

from ase_au20.database import IsomerSet
from ase_au20.database.corpus import Corpus
from ase_au20.models.schnet.config import SchNetConfig
from ase_au20.models.schnet.data_parallel import SINGLE, Shard, run_data_parallel
from ase_au20.models.schnet.network import (
    SchNet,
    SchNetModel,
    resolve_device,
    torch_threads,
)


class Teacher(Protocol):
    """Anything with ``predict(structures, forces=...) -> {"energy": ...}`` (e.g. a KRRModel)."""

    def predict(self, structures: Sequence[Any], forces: bool = False) -> dict[str, Any]: ...


@dataclass
class _Rows:
    """Training rows of one cluster size as tensors (normalised targets)."""

    positions: torch.Tensor  # [n, N, 3]
    target: torch.Tensor  # [n] normalised DFTB1 target (NaN for vicinal rows)
    teacher: torch.Tensor  # [n] normalised teacher target (NaN without teacher)
    teacher_atoms: torch.Tensor  # [n, N] normalised teacher local energies (NaN without)
    teacher_forces: torch.Tensor  # [n, N, 3] teacher forces in eV/Å (NaN without)
    forces: torch.Tensor  # [n, N, 3] reference forces in eV/Å (NaN without)
    weight: torch.Tensor  # [n]
    labelled: torch.Tensor  # [n] bool: carries a reference energy
    relaxed: torch.Tensor  # [n] bool: an isomer, a DFTB1 minimum


@dataclass
class _ValSet:
    """Validation structures: positions, reference energies (eV) and forces (eV/Å; None:
    energies only)."""

    positions: torch.Tensor
    energies: np.ndarray
    forces: torch.Tensor | None = None

    @classmethod
    def of(cls, val: IsomerSet, corpus: Corpus | None, device: torch.device) -> _ValSet:
        """The isomers of ``val`` and, with a corpus, its frames (isomer forces: zero)."""
        positions, energies = _positions(val.atoms), np.asarray(val.energies, dtype=float)
        if corpus is None or len(corpus) == 0:
            return cls(torch.as_tensor(positions, dtype=torch.float32, device=device), energies)
        forces = np.concatenate([np.zeros_like(positions), corpus.forces])
        positions = np.concatenate([positions, corpus.positions])
        energies = np.concatenate([energies, corpus.energies])
        as_tensor = functools.partial(torch.as_tensor, dtype=torch.float32, device=device)
        return cls(as_tensor(positions), energies, as_tensor(forces))


def _positions(structures: Sequence[Any]) -> np.ndarray:
    """Stack positions of same-size structures (ValueError on mixed sizes)."""
    sizes = {len(a) for a in structures}
    if len(sizes) != 1:
        raise ValueError(f"training needs one cluster size per call, found sizes {sorted(sizes)}")
    return np.stack([a.get_positions() for a in structures])


def _teacher_labels(
    teacher: Teacher, structures: Sequence[Any], forces: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Teacher energies (n,), local energies (n, N) in eV and forces (n, N, 3) in eV/Å,
    checked for shape and finiteness.

    A teacher without per-atom ``energies`` gives NaN local energies (no per-atom term);
    forces are NaN unless asked for.
    """
    out = teacher.predict(list(structures), forces=forces)
    energy = np.asarray(out["energy"], dtype=float)
    if energy.shape != (len(structures),) or not np.all(np.isfinite(energy)):
        raise ValueError("teacher.predict must return finite energies, one per structure")
    n_atoms = len(structures[0]) if len(structures) else 0
    local = np.asarray(out.get("energies", np.full((len(energy), n_atoms), np.nan)), dtype=float)
    if local.shape != (len(energy), n_atoms):
        raise ValueError(f"teacher per-atom energies have shape {local.shape}")
    force = np.full((len(energy), n_atoms, 3), np.nan)
    if forces:
        force = np.asarray(out["forces"], dtype=float)
        if force.shape != (len(energy), n_atoms, 3) or not np.all(np.isfinite(force)):
            raise ValueError("teacher.predict must return finite forces of shape (n, N, 3)")
    return energy, local, force


VICINAL_TRIES = 100


def _vicinal_pool(
    train: IsomerSet, config: SchNetConfig, teacher: Teacher
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``config.vkd`` Gaussian rattles of random training geometries and their teacher labels
    (energies, local energies, and forces when ``kd_force_weight`` > 0).

    With a repulsion prior, a rattle that brings two atoms closer than its radius is drawn
    again: the teacher never saw such distances, the fixed prior alone governs them.
    """
    rng = np.random.default_rng([config.seed, 1])
    base = rng.integers(0, len(train), size=config.vkd)
    structures = []
    for i in base:
        atoms = train.atoms[i].copy()
        atoms.calc = None
        for _ in range(VICINAL_TRIES):
            moved = atoms.positions + rng.normal(0.0, config.vkd_sigma, atoms.positions.shape)
            if config.repulsion_radius <= 0 or pdist(moved).min() >= config.repulsion_radius:
                break
        else:
            raise ValueError(
                f"vkd_sigma {config.vkd_sigma} Å: {VICINAL_TRIES} rattles in a row came closer "
                f"than repulsion_radius {config.repulsion_radius} Å; use a smaller vkd_sigma"
            )
        atoms.positions = moved
        structures.append(atoms)
    labels = _teacher_labels(teacher, structures, forces=config.kd_force_weight > 0)
    return (_positions(structures), *labels)


def _build_rows(
    train: IsomerSet,
    config: SchNetConfig,
    teacher: Teacher | None,
    mean: float,
    std: float,
    corpus: Corpus | None = None,
) -> _Rows:
    """All training rows (isomers, corpus frames, vicinal rows) with normalised targets and
    weights."""
    positions = _positions(train.atoms)
    n_atoms = positions.shape[1]
    energies = np.asarray(train.energies, dtype=float)
    weight = np.where(np.asarray(train.is_outlier, dtype=bool), config.outlier_weight, 1.0)
    weight = weight * config.isomer_weight
    teacher_e = np.full(len(train), np.nan)
    teacher_atoms = np.full(positions.shape[:2], np.nan)
    teacher_forces = np.full(positions.shape, np.nan)  # minima: the zero-force term instead
    has_corpus = corpus is not None and len(corpus) > 0
    forces = np.zeros(positions.shape) if has_corpus else np.full(positions.shape, np.nan)
    if teacher is not None and (config.kd_lambda > 0 or config.kd_atom_weight > 0):
        teacher_e, teacher_atoms, _ = _teacher_labels(teacher, train.atoms)
    labelled = np.ones(len(train), dtype=bool)
    relaxed = np.ones(len(train), dtype=bool)
    if has_corpus:
        n = len(corpus)
        positions = np.concatenate([positions, corpus.positions])
        energies = np.concatenate([energies, corpus.energies])
        forces = np.concatenate([forces, corpus.forces])
        weight = np.concatenate([weight, np.ones(n)])
        teacher_e = np.concatenate([teacher_e, np.full(n, np.nan)])
        teacher_atoms = np.concatenate([teacher_atoms, np.full((n, n_atoms), np.nan)])
        teacher_forces = np.concatenate([teacher_forces, np.full((n, n_atoms, 3), np.nan)])
        labelled = np.concatenate([labelled, np.ones(n, dtype=bool)])
        relaxed = np.concatenate([relaxed, np.zeros(n, dtype=bool)])
    if config.vkd > 0:
        if teacher is None:
            raise ValueError("vicinal distillation (vkd > 0) needs a teacher model")
        vkd_pos, vkd_e, vkd_atoms, vkd_forces = _vicinal_pool(train, config, teacher)
        teacher_atoms = np.concatenate([teacher_atoms, vkd_atoms])
        teacher_forces = np.concatenate([teacher_forces, vkd_forces])
        positions = np.concatenate([positions, vkd_pos])
        forces = np.concatenate([forces, np.full(vkd_pos.shape, np.nan)])
        energies = np.concatenate([energies, np.full(config.vkd, np.nan)])
        teacher_e = np.concatenate([teacher_e, vkd_e])
        weight = np.concatenate([weight, np.full(config.vkd, config.vkd_weight)])
        labelled = np.concatenate([labelled, np.zeros(config.vkd, dtype=bool)])
        relaxed = np.concatenate([relaxed, np.zeros(config.vkd, dtype=bool)])

    def norm(e: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((e - n_atoms * mean) / std, dtype=torch.float32)

    return _Rows(
        torch.as_tensor(positions, dtype=torch.float32),
        norm(energies),
        norm(teacher_e),
        torch.as_tensor((teacher_atoms - mean) / std, dtype=torch.float32),
        torch.as_tensor(teacher_forces, dtype=torch.float32),
        torch.as_tensor(forces, dtype=torch.float32),
        torch.as_tensor(weight, dtype=torch.float32),
        torch.as_tensor(labelled),
        torch.as_tensor(relaxed),
    )


def _batch_loss(
    net: SchNet,
    rows: _Rows,
    idx: torch.Tensor,
    config: SchNetConfig,
    std: float,
    amp: bool,
    shard: Shard = SINGLE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's share of the weighted loss of batch ``idx`` and its absolute errors (eV).

    Sums are divided by the whole batch's counts, so summing the shares' gradients over the
    data-parallel processes gives exactly the gradient of the whole batch's mean loss.
    """
    device = next(net.parameters()).device
    relaxed_rows = idx[rows.relaxed[idx]][: config.zero_force_subset]
    mine = shard.take(idx)
    pos = rows.positions[mine].to(device)
    target, teacher = rows.target[mine].to(device), rows.teacher[mine].to(device)
    weight, labelled = rows.weight[mine].to(device), rows.labelled[mine].to(device)
    with_forces = config.force_weight > 0  # one exact forward gives energies and forces
    if with_forces:
        pos.requires_grad_(True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and not with_forces):
        spacing = None if with_forces else config.table_spacing
        atoms_pred = net(pos, table_spacing=spacing).float()
    pred = atoms_pred.sum(1)
    lam = config.kd_lambda
    sq_true = (pred - target.nan_to_num()) ** 2
    sq_teacher = (pred - teacher.nan_to_num()) ** 2  # NaN only where the term is unused
    per_row = torch.where(labelled, (1 - lam) * sq_true + lam * sq_teacher, sq_teacher)
    if config.kd_atom_weight > 0:
        local = rows.teacher_atoms[mine].to(device)
        sq_atoms = ((atoms_pred - local.nan_to_num()) ** 2).mean(1)
        has_local = torch.isfinite(local).all(1)
        per_row = per_row + config.kd_atom_weight * torch.where(has_local, sq_atoms, 0.0)
    loss = (weight * per_row).sum() / len(idx)
    relaxed_mine = shard.take(relaxed_rows)
    if config.zero_force_weight > 0 and len(relaxed_mine):
        squared = _force_error(net, rows, relaxed_mine, len(relaxed_rows), std, None)
        loss = loss + config.zero_force_weight * squared
    if config.kd_force_weight > 0:
        has_forces = torch.isfinite(rows.teacher_forces[idx]).all(-1).all(-1)
        force_rows = idx[has_forces][: config.kd_force_subset]
        force_mine = shard.take(force_rows)
        if len(force_mine):
            reference = rows.teacher_forces
            squared = _force_error(net, rows, force_mine, len(force_rows), std, reference)
            loss = loss + config.kd_force_weight * squared
    if with_forces:
        n_force_rows = int(torch.isfinite(rows.forces[idx]).all(-1).all(-1).sum())
        reference = rows.forces[mine].to(device)
        has = torch.isfinite(reference).all(-1).all(-1)
        if n_force_rows and has.any():
            (grad,) = torch.autograd.grad(pred.sum(), pos, create_graph=True)
            residual = (-std * grad - reference.nan_to_num())[has]
            squared = residual.pow(2).sum() / (n_force_rows * residual.shape[1])
            loss = loss + config.force_weight * squared
    errors = (pred - target).detach()[labelled].abs() * std
    return loss, errors


def _force_error(
    net: SchNet,
    rows: _Rows,
    which: torch.Tensor,
    n_rows: int,
    std: float,
    reference: torch.Tensor | None,
) -> torch.Tensor:
    """Σ |F − F_ref|² (eV²/Å²) over rows ``which``, divided by the atoms of all ``n_rows``
    rows of the batch (the shares of the data-parallel processes add up to the mean); F_ref
    is ``reference[which]`` (the teacher's or the reference's forces) or, with None, zero.
    Differentiable in the weights (double backward)."""
    device = next(net.parameters()).device
    positions = rows.positions[which].to(device).requires_grad_(True)
    (grad,) = torch.autograd.grad(net(positions).sum(), positions, create_graph=True)
    residual = -std * grad
    if reference is not None:
        residual = residual - reference[which].to(device)
    return residual.pow(2).sum() / (n_rows * residual.shape[1])


def _epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """A fresh deterministic shuffle of ``range(n)`` cut into batches."""
    order = rng.permutation(n)
    return [torch.as_tensor(order[s : s + batch_size]) for s in range(0, n, batch_size)]


def _val_scores(
    net: SchNet, val: _ValSet, mean: float, std: float, shard: Shard = SINGLE
) -> tuple[float, float]:
    """Validation energy MAE (eV) and force MAE (eV/Å per component; NaN without forces)
    with exact filters, each process scoring its share of the rows."""
    net.eval()
    mine = shard.take(torch.arange(len(val.positions)))
    total = torch.zeros(4, dtype=torch.float64)
    for s in range(0, len(mine), 256):
        chunk = mine[s : s + 256]
        positions = val.positions[chunk]
        if val.forces is None:
            with torch.inference_mode():
                h = net(positions)
        else:
            positions = positions.clone().requires_grad_(True)
            h = net(positions)
            (grad,) = torch.autograd.grad(h.sum(), positions)
            total[2] += (-std * grad - val.forces[chunk]).abs().sum().double().cpu()
            total[3] += grad.numel()
        pred = std * h.detach().double().cpu().sum(1) + mean * positions.shape[1]
        total[0] += (pred - torch.as_tensor(val.energies[chunk.numpy()])).abs().sum()
        total[1] += len(chunk)
    net.train()
    total = shard.sum(total)
    force = float(total[2] / total[3]) if total[3] else float("nan")
    return float(total[0] / total[1]), force


def _score(energy_mae: float, force_mae: float) -> float:
    """What early stopping minimises: the energy MAE (eV), plus the force MAE times 1 Å
    when the validation set has forces."""
    return energy_mae + (0.0 if np.isnan(force_mae) else force_mae)


def train_network(
    rows: _Rows,
    val: _ValSet,
    config: SchNetConfig,
    seed: int,
    mean: float,
    std: float,
    progress: bool = True,
    label: str = "schnet",
    shard: Shard = SINGLE,
    checkpoint: Path | None = None,
    initial: dict[str, torch.Tensor] | None = None,
) -> tuple[SchNet, dict[str, Any]]:
    """Train one network from ``initial`` weights (random ones when None); returns it with
    the best validation weights and its history.

    With a data-parallel ``shard`` every process runs this same loop in lockstep: same seed,
    same batches, gradients summed before each identical optimiser step. With a
    ``checkpoint`` file the state is saved after every epoch and a run that finds one goes
    on from it (the same result as an uninterrupted run).
    """
    device = training_device(config)
    amp = device.type == "cuda"
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SchNet(config.architecture(), energy_scale=std).to(device)
    if initial is not None:
        net.load_state_dict(initial)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
    )
    history: dict[str, list[float]] = {
        "train_mae": [],
        "val_mae": [],
        "val_force_mae": [],
        "lr": [],
        "seconds": [],
    }
    best_score, best_epoch, best_state, first = np.inf, -1, None, 0
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        net.load_state_dict(saved["net"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        history, first = saved["history"], saved["epoch"] + 1
        best_score, best_epoch, best_state = saved["best"]
    bar = tqdm(range(first, config.epochs), desc=label, disable=not progress, leave=False)
    for epoch in bar:
        if epoch - best_epoch > config.patience:
            break
        start = time.perf_counter()
        errors = torch.zeros(2, dtype=torch.float64)
        for idx in _epoch_batches(len(rows.positions), config.batch_size, rng):
            loss, err = _batch_loss(net, rows, idx, config, std, amp, shard)
            optimizer.zero_grad(set_to_none=True)
            if loss.requires_grad:  # an empty share (batch smaller than the process count)
                loss.backward()
            shard.sum_gradients(net)
            optimizer.step()
            errors += torch.stack([err.double().sum().cpu(), torch.tensor(float(len(err)))])
        seconds = time.perf_counter() - start
        errors = shard.sum(errors)
        train_mae = float(errors[0] / errors[1]) if errors[1] else float("nan")
        val_mae, val_force = _val_scores(net, val, mean, std, shard)
        score = _score(val_mae, val_force)
        scheduler.step(score)
        lr = optimizer.param_groups[0]["lr"]
        for key, value in zip(history, (train_mae, val_mae, val_force, lr, seconds), strict=True):
            history[key].append(value)
        if score < best_score:
            best_score, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        bar.set_postfix(train_mae=f"{train_mae:.3f}", val_mae=f"{val_mae:.3f}", refresh=False)
        if checkpoint is not None and shard.rank == 0:
            state = {
                "epoch": epoch,
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "best": (best_score, best_epoch, best_state),
            }
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)  # whole or not at all
    net.load_state_dict(best_state)
    summary = {
        "seed": seed,
        "epochs_run": len(history["val_mae"]),
        "best_epoch": best_epoch,
        "val_mae": history["val_mae"][best_epoch],
        "val_force_mae": history["val_force_mae"][best_epoch],
        "s_per_epoch": float(np.median(history["seconds"])),
        "train_mae_history": [round(v, 5) for v in history["train_mae"]],
        "val_mae_history": [round(v, 5) for v in history["val_mae"]],
        "val_force_mae_history": [round(v, 5) for v in history["val_force_mae"]],
        "seconds_history": [round(v, 4) for v in history["seconds"]],
    }
    return net.eval(), {"summary": summary, "history": history}


def _train_in_process(
    shard: Shard,
    out: str,
    rows: _Rows,
    val: _ValSet,
    config: SchNetConfig,
    seed: int,
    mean: float,
    std: float,
    progress: bool,
    label: str,
    checkpoint: Path | None,
    initial: dict[str, torch.Tensor] | None,
) -> None:
    """One data-parallel process: train; rank 0 writes the weights and the summary to ``out``."""
    with torch_threads(config.threads or 1):
        show = progress and shard.rank == 0
        net, result = train_network(
            rows, val, config, seed, mean, std, show, label, shard, checkpoint, initial
        )
    if shard.rank == 0:
        torch.save(net.state_dict(), Path(out) / "member.pt")
        (Path(out) / "summary.json").write_text(json.dumps(result))


def training_device(config: SchNetConfig) -> torch.device:
    """The device a config trains on. ``workers > 1`` is data parallelism over CPU
    processes, so ``auto`` then means the CPU (the shipped recipe reproduces on a GPU
    machine too); a non-CPU device with ``workers > 1`` is an error."""
    if config.workers > 1 and config.device == "auto":
        return torch.device("cpu")
    device = resolve_device(config.device)
    if config.workers > 1 and device.type != "cpu":
        raise ValueError(
            f"workers={config.workers} is CPU data parallelism; on {config.device} use workers=1"
        )
    return device


def _train_member(
    rows: _Rows,
    val: _ValSet,
    config: SchNetConfig,
    seed: int,
    mean: float,
    std: float,
    progress: bool,
    label: str,
    checkpoint: Path | None = None,
    initial: dict[str, torch.Tensor] | None = None,
) -> tuple[SchNet, dict[str, Any]]:
    """Train one network, in this process or over ``config.workers`` CPU processes."""
    if config.workers == 1:
        with torch_threads(config.threads):
            return train_network(
                rows, val, config, seed, mean, std, progress, label, SINGLE, checkpoint, initial
            )
    with tempfile.TemporaryDirectory(prefix="au20-schnet-") as out:
        args = (out, rows, val, config, seed, mean, std, progress, label, checkpoint, initial)
        n_parameters = sum(p.numel() for p in SchNet(config.architecture()).parameters())
        run_data_parallel(_train_in_process, config.workers, n_parameters, *args)
        state = torch.load(Path(out) / "member.pt", map_location="cpu", weights_only=True)
        result = json.loads((Path(out) / "summary.json").read_text())
    net = SchNet(config.architecture(), energy_scale=std)
    net.load_state_dict(state)
    return net.eval(), result


def _teacher_provenance(teacher: Teacher | None) -> dict[str, Any] | None:
    """Teacher class and, when it has a card, its weights' SHA-256 and test MAE."""
    if teacher is None:
        return None
    card = getattr(teacher, "card", None) or {}
    return {
        "type": type(teacher).__name__,
        "files": card.get("files"),
        "test_mae": card.get("metrics", {}).get("test", {}).get("mae"),
    }


@dataclass(frozen=True)
class _Start:
    """Where the networks start: each member's weights (None: random), the target scaling
    (mean, std of the per-atom energy) they were trained with, and the provenance of
    trained ones (their folder and weight files' SHA-256)."""

    weights: list[dict[str, torch.Tensor] | None]
    mean: float
    std: float
    provenance: dict[str, Any] | None = None


def _start(config: SchNetConfig, train: IsomerSet) -> _Start:
    """Random weights scaled by ``train``'s per-atom energies, or the networks and scaling of
    ``config.start_from`` (the same architecture, at least ``config.ensemble`` members)."""
    if not config.start_from:
        n_atoms = _positions(train.atoms).shape[1]
        per_atom = np.asarray(train.energies, dtype=float) / n_atoms
        mean, std = float(per_atom.mean()), float(per_atom.std())
        if not std > 0:
            raise ValueError("training energies have zero spread: cannot standardise targets")
        return _Start([None] * config.ensemble, mean, std)
    base = SchNetModel.load(config.start_from, device="cpu")
    if base.architecture != config.architecture():
        raise ValueError(
            f"start_from {config.start_from} has architecture {base.architecture}, this "
            f"config {config.architecture()}"
        )
    if len(base.networks) < config.ensemble:
        raise ValueError(
            f"start_from {config.start_from} has {len(base.networks)} networks, the config "
            f"asks for {config.ensemble}"
        )
    weights = [net.state_dict() for net in base.networks[: config.ensemble]]
    provenance = {"folder": config.start_from, "files": base.card.get("files")}
    return _Start(weights, base.atom_mean, base.atom_std, provenance)


def train_schnet(
    train: IsomerSet,
    val: IsomerSet,
    config: SchNetConfig | None = None,
    teacher: Teacher | None = None,
    progress: bool = True,
    corpus: tuple[Corpus, Corpus] | None = None,
    checkpoints: Path | None = None,
) -> SchNetModel:
    """Train ``config.ensemble`` networks (seeds seed, seed+1, …) and wrap them as a model.

    ``corpus`` (train and val frames with reference energies and forces) joins the isomers;
    ``checkpoints`` is a folder with one checkpoint per member, so a stopped run goes on.

    The returned model's card holds the architecture, hyper-parameters, target scaling and a
    ``training`` summary; database provenance, metrics and conformal quantiles are added by
    the caller (see ``ase_au20.cli.train.schnet``).
    """
    config = config or SchNetConfig()
    if len(train) == 0 or len(val) == 0:
        raise ValueError("training needs non-empty train and val sets")
    if config.kd_lambda > 0 and teacher is None:
        raise ValueError("kd_lambda > 0 needs a teacher model")
    if config.kd_atom_weight > 0 and teacher is None:
        raise ValueError("kd_atom_weight > 0 needs a teacher model")
    if config.kd_force_weight > 0 and config.vkd == 0:
        raise ValueError("kd_force_weight > 0 needs vicinal rows (vkd > 0) and a teacher model")
    start_with = _start(config, train)
    mean, std = start_with.mean, start_with.std
    device = training_device(config)
    start = time.perf_counter()
    corpus_train, corpus_val = corpus if corpus is not None else (None, None)
    if config.force_weight > 0 and (corpus_train is None or len(corpus_train) == 0):
        raise ValueError("force_weight > 0 needs corpus frames with forces (au20-workflow sample)")
    with torch_threads(config.threads):
        rows = _build_rows(train, config, teacher, mean, std, corpus_train)
    val_set = _ValSet.of(val, corpus_val, device)
    if checkpoints is not None:
        Path(checkpoints).mkdir(parents=True, exist_ok=True)
    results = [
        _train_member(
            rows,
            val_set,
            config,
            config.seed + k,
            mean,
            std,
            progress,
            f"schnet {k + 1}/{config.ensemble}",
            None if checkpoints is None else Path(checkpoints) / f"member_{k}.ckpt",
            start_with.weights[k],
        )
        for k in range(config.ensemble)
    ]
    card = {
        "hyperparameters": config.to_dict(),
        "features": {
            "rbf": config.rbf,
            "cutoff": config.cutoff,
            "gamma": config.gamma,
            "expansion": "gaussian",
        },
        "training": {
            "n_train": len(train),
            "n_corpus": 0 if corpus_train is None else len(corpus_train),
            "n_vicinal": config.vkd,
            "teacher": _teacher_provenance(teacher),
            "start_from": start_with.provenance,
            "seconds": time.perf_counter() - start,
            "device": str(device),
            "threads": config.threads or torch.get_num_threads(),
            "workers": config.workers,
            "members": [r[1]["summary"] for r in results],
        },
    }
    return SchNetModel([r[0] for r in results], mean, std, card=card, device=config.device)
