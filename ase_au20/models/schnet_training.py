"""Training SchNet (or an ensemble) on isomer energies, with optional teacher distillation.

Loss per training row, in units of the per-atom energy std σ (targets are standardised as
(E − N·μ)/σ with μ, σ the per-atom mean/std of the training energies):

* labelled rows: ``w · [(1 − kd_lambda)·(pred − E)² + kd_lambda·(pred − E_teacher)²]``
  with ``w = outlier_weight`` for rows flagged ``is_outlier`` and 1 otherwise;
* vicinal rows (``vkd`` Gaussian rattles of training geometries, a fixed pool drawn once and
  labelled once by the teacher): ``vkd_weight · (pred − E_teacher)²``;
* zero-force term: the isomers are DFT-relaxed, so ``zero_force_weight · mean |F|²``
  (eV²/Å²) on the first ``zero_force_subset`` labelled rows of each batch (double backward).

Speed: during training the filter network is evaluated on a distance grid and interpolated
(``table_spacing``, see ``FilterNetwork.tabulated``); validation, the zero-force term and
the saved model use the exact filters. AdamW, ReduceLROnPlateau on the validation MAE,
early stopping with the best weights restored; seeds fix weights and batch order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from scipy.spatial.distance import pdist
from tqdm.auto import tqdm

from ase_au20.database import IsomerSet
from ase_au20.models.schnet import (
    SchNet,
    SchNetModel,
    resolve_device,
    torch_threads,
)
from ase_au20.models.schnet_config import SchNetConfig


class Teacher(Protocol):
    """Anything with ``predict(structures) -> {"energy": ...}`` (e.g. a KRRModel)."""

    def predict(self, structures: Sequence[Any]) -> dict[str, Any]: ...


@dataclass
class _Rows:
    """Training rows of one cluster size as tensors (normalised targets)."""

    positions: torch.Tensor  # [n, N, 3]
    target: torch.Tensor  # [n] normalised DFT target (NaN for vicinal rows)
    teacher: torch.Tensor  # [n] normalised teacher target (NaN without teacher)
    weight: torch.Tensor  # [n]
    labelled: torch.Tensor  # [n] bool: relaxed DFT geometry


def _positions(structures: Sequence[Any]) -> np.ndarray:
    """Stack positions of same-size structures (ValueError on mixed sizes)."""
    sizes = {len(a) for a in structures}
    if len(sizes) != 1:
        raise ValueError(f"training needs one cluster size per call, found sizes {sorted(sizes)}")
    return np.stack([a.get_positions() for a in structures])


def _teacher_energy(teacher: Teacher, structures: Sequence[Any]) -> np.ndarray:
    """Teacher energies (eV) as a float array, checked for shape and finiteness."""
    energy = np.asarray(teacher.predict(list(structures))["energy"], dtype=float)
    if energy.shape != (len(structures),) or not np.all(np.isfinite(energy)):
        raise ValueError("teacher.predict must return finite energies, one per structure")
    return energy


VICINAL_TRIES = 100


def _vicinal_pool(
    train: IsomerSet, config: SchNetConfig, teacher: Teacher
) -> tuple[np.ndarray, np.ndarray]:
    """``config.vkd`` Gaussian rattles of random training geometries and their teacher labels.

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
    return _positions(structures), _teacher_energy(teacher, structures)


def _build_rows(
    train: IsomerSet, config: SchNetConfig, teacher: Teacher | None, mean: float, std: float
) -> _Rows:
    """All training rows (labelled + vicinal) with normalised targets and weights."""
    positions = _positions(train.atoms)
    n_atoms = positions.shape[1]
    energies = np.asarray(train.energies, dtype=float)
    weight = np.where(np.asarray(train.is_outlier, dtype=bool), config.outlier_weight, 1.0)
    teacher_e = np.full(len(train), np.nan)
    if teacher is not None and config.kd_lambda > 0:
        teacher_e = _teacher_energy(teacher, train.atoms)
    labelled = np.ones(len(train), dtype=bool)
    if config.vkd > 0:
        if teacher is None:
            raise ValueError("vicinal distillation (vkd > 0) needs a teacher model")
        vkd_pos, vkd_e = _vicinal_pool(train, config, teacher)
        positions = np.concatenate([positions, vkd_pos])
        energies = np.concatenate([energies, np.full(config.vkd, np.nan)])
        teacher_e = np.concatenate([teacher_e, vkd_e])
        weight = np.concatenate([weight, np.full(config.vkd, config.vkd_weight)])
        labelled = np.concatenate([labelled, np.zeros(config.vkd, dtype=bool)])

    def norm(e: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((e - n_atoms * mean) / std, dtype=torch.float32)

    return _Rows(
        torch.as_tensor(positions, dtype=torch.float32),
        norm(energies),
        norm(teacher_e),
        torch.as_tensor(weight, dtype=torch.float32),
        torch.as_tensor(labelled),
    )


def _batch_loss(
    net: SchNet, rows: _Rows, idx: torch.Tensor, config: SchNetConfig, std: float, amp: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted loss of one batch and the absolute errors (eV) of its labelled rows."""
    device = next(net.parameters()).device
    pos = rows.positions[idx].to(device)
    target, teacher = rows.target[idx].to(device), rows.teacher[idx].to(device)
    weight, labelled = rows.weight[idx].to(device), rows.labelled[idx].to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        pred = net(pos, table_spacing=config.table_spacing).sum(1).float()
    lam = config.kd_lambda
    sq_true = (pred - target.nan_to_num()) ** 2
    sq_teacher = (pred - teacher.nan_to_num()) ** 2  # NaN only where the term is unused
    per_row = torch.where(labelled, (1 - lam) * sq_true + lam * sq_teacher, sq_teacher)
    loss = (weight * per_row).mean()
    if config.zero_force_weight > 0:
        relaxed = pos[labelled][: config.zero_force_subset].detach().requires_grad_(True)
        if len(relaxed):
            energy = net(relaxed).sum()
            (grad,) = torch.autograd.grad(energy, relaxed, create_graph=True)
            loss = loss + config.zero_force_weight * (std * grad).pow(2).sum(-1).mean()
    errors = (pred - target).detach()[labelled].abs() * std
    return loss, errors


def _epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """A fresh deterministic shuffle of ``range(n)`` cut into batches."""
    order = rng.permutation(n)
    return [torch.as_tensor(order[s : s + batch_size]) for s in range(0, n, batch_size)]


def _val_mae(net: SchNet, positions: torch.Tensor, energies: np.ndarray, mean: float, std: float):
    """Validation MAE (eV) with exact filters."""
    net.eval()
    with torch.inference_mode():
        h = torch.cat([net(positions[s : s + 256]) for s in range(0, len(positions), 256)])
    net.train()
    pred = std * h.double().cpu().numpy() + mean
    return float(np.abs(pred.sum(1) - energies).mean())


def train_network(
    rows: _Rows,
    val: IsomerSet,
    config: SchNetConfig,
    seed: int,
    mean: float,
    std: float,
    progress: bool = True,
    label: str = "schnet",
) -> tuple[SchNet, dict[str, Any]]:
    """Train one network; returns it with the best validation weights and its history."""
    device = resolve_device(config.device)
    amp = device.type == "cuda"
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SchNet(config.architecture(), energy_scale=std).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
    )
    val_pos = torch.as_tensor(_positions(val.atoms), dtype=torch.float32, device=device)
    val_e = np.asarray(val.energies, dtype=float)
    best_mae, best_epoch, best_state = np.inf, -1, None
    history: dict[str, list[float]] = {"train_mae": [], "val_mae": [], "lr": [], "seconds": []}
    bar = tqdm(range(config.epochs), desc=label, disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        errors = []
        for idx in _epoch_batches(len(rows.positions), config.batch_size, rng):
            loss, err = _batch_loss(net, rows, idx, config, std, amp)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            errors.append(err)
        seconds = time.perf_counter() - start
        train_mae = float(torch.cat(errors).mean()) if errors else float("nan")
        val_mae = _val_mae(net, val_pos, val_e, mean, std)
        scheduler.step(val_mae)
        for key, value in zip(
            history, (train_mae, val_mae, optimizer.param_groups[0]["lr"], seconds), strict=True
        ):
            history[key].append(value)
        if val_mae < best_mae:
            best_mae, best_epoch = val_mae, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        bar.set_postfix(train_mae=f"{train_mae:.3f}", val_mae=f"{val_mae:.3f}", refresh=False)
        if epoch - best_epoch >= config.patience:
            break
    net.load_state_dict(best_state)
    summary = {
        "seed": seed,
        "epochs_run": len(history["val_mae"]),
        "best_epoch": best_epoch,
        "val_mae": best_mae,
        "s_per_epoch": float(np.median(history["seconds"])),
        "train_mae_history": [round(v, 5) for v in history["train_mae"]],
        "val_mae_history": [round(v, 5) for v in history["val_mae"]],
        "seconds_history": [round(v, 4) for v in history["seconds"]],
    }
    return net.eval(), {"summary": summary, "history": history}


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


def train_schnet(
    train: IsomerSet,
    val: IsomerSet,
    config: SchNetConfig | None = None,
    teacher: Teacher | None = None,
    progress: bool = True,
) -> SchNetModel:
    """Train ``config.ensemble`` networks (seeds seed, seed+1, …) and wrap them as a model.

    The returned model's card holds the architecture, hyper-parameters, target scaling and a
    ``training`` summary; database provenance, metrics and conformal quantiles are added by
    the caller (see ``ase_au20.cli.train_schnet``).
    """
    config = config or SchNetConfig()
    if len(train) == 0 or len(val) == 0:
        raise ValueError("training needs non-empty train and val sets")
    if config.kd_lambda > 0 and teacher is None:
        raise ValueError("kd_lambda > 0 needs a teacher model")
    n_atoms = _positions(train.atoms).shape[1]
    per_atom = np.asarray(train.energies, dtype=float) / n_atoms
    mean, std = float(per_atom.mean()), float(per_atom.std())
    if not std > 0:
        raise ValueError("training energies have zero spread: cannot standardise targets")
    start = time.perf_counter()
    with torch_threads(config.threads):
        rows = _build_rows(train, config, teacher, mean, std)
        results = [
            train_network(
                rows,
                val,
                config,
                config.seed + k,
                mean,
                std,
                progress,
                f"schnet {k + 1}/{config.ensemble}",
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
            "n_vicinal": config.vkd,
            "teacher": _teacher_provenance(teacher),
            "seconds": time.perf_counter() - start,
            "threads": config.threads or torch.get_num_threads(),
            "members": [r[1]["summary"] for r in results],
        },
    }
    return SchNetModel([r[0] for r in results], mean, std, card=card, device=config.device)
