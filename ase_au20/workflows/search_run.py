"""The ``search`` workflow end to end: search, filter, rank, match, store, and write files.

Outputs in ``out_dir``: ``search.h5`` (every minimum, the candidates, per-run best-so-far
traces and a summary), ``candidates.xyz`` (ranked, extended xyz) and ``search.png``.
With a database, candidates are matched against its labelled isomers and stored in it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator
from ase.io import write

from ase_au20.calculators.base import intervals_for
from ase_au20.compute.engine import Engine
from ase_au20.database import connect
from ase_au20.database.store import shown_url
from ase_au20.geometry.conventions import BOND_CUTOFF, DUPLICATE_TOLERANCE
from ase_au20.plotting import save_figure
from ase_au20.workflows import candidates as cands
from ase_au20.workflows.any_calculator import (
    ModelIdentity,
    model_card_of,
    predict_batch,
    uncertainty_properties,
)
from ase_au20.workflows.results import Results, write_results
from ase_au20.workflows.search import (
    Minimum,
    SearchInterrupted,
    SearchSettings,
    best_so_far,
    global_search,
)
from ase_au20.workflows.structure_files import predicted_structure, reference_level


@dataclass
class SearchReport:
    """What a search found and where it wrote it."""

    settings: SearchSettings
    minima: list[Minimum]
    valid: np.ndarray  # bool per minimum
    candidates: list[cands.Candidate]
    bond_cutoff: float
    wall_time: float  # s
    ground_state_id: int = -1  # lowest-energy labelled isomer of the db (-1 without db)
    ground_state_rank: int = -1  # rank of the first candidate matching it (-1: not found)
    ground_state_distance: float = np.inf  # Å, closest candidate fingerprint to it
    rows_written: int = 0
    rows_skipped: int = 0
    n_outside_domain: int = 0  # distinct valid minima the calculator judged out of domain
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def found_ground_state(self) -> bool:
        """Whether a candidate matched the database's lowest-energy isomer."""
        return self.ground_state_rank >= 0


def run_search(
    calc: Calculator,
    settings: SearchSettings,
    out_dir: str | os.PathLike,
    db_url: str | os.PathLike | None = None,
    kappa: float = 0.0,
    scale_invariant: bool = False,
    calc_name: str = "",
    store: bool = True,
    progress: bool = False,
    engine: Engine | None = None,
) -> SearchReport:
    """Run :func:`global_search` and turn its minima into ranked, stored, written candidates.

    ``engine``: where the independent runs go (default: this process, one after another).
    """
    settings.validate()
    if not kappa >= 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    db = None
    known, known_ids = [], np.zeros(0, dtype=int)
    if db_url is not None:
        if "://" not in str(db_url) and not Path(db_url).is_file():
            raise ValueError(f"database not found: {shown_url(db_url)}")
        db = connect(db_url)
        known, known_ids = cands.known_isomers(db)
    start = time.perf_counter()
    try:
        minima = global_search(calc, settings, progress=progress, engine=engine)
    except SearchInterrupted as stop:
        level = reference_level(model_card_of(calc))
        _write_interrupted(stop.minima, Path(out_dir), calc_name or type(calc).__name__, level)
        raise
    reasons = [cands.invalid_reason(m.atoms) for m in minima]
    valid = np.array([not r for r in reasons], dtype=bool)
    pool = [m for m, ok in zip(minima, valid, strict=True) if ok]
    keep = [
        pool[i] for i in cands.unique_indices([m.atoms for m in pool], [m.energy for m in pool])
    ]
    structures = [m.atoms for m in keep]
    extras = uncertainty_properties(calc)
    if structures:
        with intervals_for(calc, "minima"):  # the candidates are the model's minima
            predicted = predict_batch(calc, structures, ("energy", *extras))
    else:
        predicted = {"energy": np.zeros(0), "energy_uncertainty": np.zeros(0)}
    inside = np.asarray(predicted.get("in_domain", np.ones(len(structures))), dtype=bool)
    n_outside = int((~inside).sum())  # out-of-domain minima are never candidates
    structures = [a for a, ok in zip(structures, inside, strict=True) if ok]
    keep = [m for m, ok in zip(keep, inside, strict=True) if ok]
    predicted = {k: np.asarray(v)[inside] for k, v in predicted.items()}
    energy, uncertainty = predicted["energy"], predicted["energy_uncertainty"]
    std = predicted.get("energy_std", np.full(len(structures), np.nan))
    in_domain = predicted.get("in_domain", [None] * len(structures))
    lcb = cands.lower_confidence_bound(energy, uncertainty, kappa)
    match_ids, match_dist = cands.match_known(
        structures, known, known_ids, scale_invariant=scale_invariant
    )
    order = np.argsort(lcb, kind="stable")
    candidates = [
        cands.Candidate(
            atoms=structures[i].copy(),
            energy=float(energy[i]),
            uncertainty=float(uncertainty[i]),
            lcb=float(lcb[i]),
            run=keep[i].run,
            step=keep[i].step,
            matches_cluster_id=int(match_ids[i]),
            match_distance=float(match_dist[i]),
            std=float(std[i]),
            in_domain=None if in_domain[i] is None else bool(in_domain[i]),
        )
        for i in order
    ]
    ranked = {key: np.asarray(values)[order] for key, values in predicted.items()}
    cands.fill_gaps_to_best(calc, candidates, ranked)
    wall = time.perf_counter() - start
    report = SearchReport(settings, minima, valid, candidates, BOND_CUTOFF, wall)
    report.n_outside_domain = n_outside
    if known:
        _ground_state(report, known, known_ids, scale_invariant)
    if db is not None and store and candidates:
        row_ids, report.rows_skipped = cands.store_candidates(
            db,
            candidates,
            {"search_method": settings.method},
            ModelIdentity.of(calc, calc_name),
            db_url=str(db_url),
        )
        report.rows_written = sum(1 for r in row_ids if r)
    parameters = {
        **dataclasses.asdict(settings),
        "kappa": kappa,
        "bond_cutoff": BOND_CUTOFF,
        "duplicate_tolerance": DUPLICATE_TOLERANCE,
        "scale_invariant": scale_invariant,
        "db": str(db_url) if db_url is not None else None,
        "calc": calc_name,
    }
    report.files = write_search_files(report, Path(out_dir), parameters, model_card_of(calc))
    return report


def _write_interrupted(minima: list, out: Path, model: str, level: str | None) -> None:
    """The minima an interrupted search had found, unranked, as ``minima-interrupted.xyz``
    (predictions of ``model``, or labels at ``level`` when the reference searched)."""
    if not minima:
        return
    out.mkdir(parents=True, exist_ok=True)
    frames = [predicted_structure(m.atoms, m.energy, model, level=level) for m in minima]
    write(out / "minima-interrupted.xyz", frames, format="extxyz")


def _ground_state(
    report: SearchReport, known: list, known_ids: np.ndarray, scale_invariant: bool
) -> None:
    """Fill in the ground-state fields: does any candidate match the lowest labelled isomer?"""
    lowest = int(np.argmin([a.get_potential_energy() for a in known]))
    report.ground_state_id = int(known_ids[lowest])
    if not report.candidates:
        return
    ids, dist = cands.match_known(
        [c.atoms for c in report.candidates],
        [known[lowest]],
        [known_ids[lowest]],
        scale_invariant=scale_invariant,
    )
    report.ground_state_distance = float(dist.min())
    hits = np.flatnonzero(ids >= 0)
    report.ground_state_rank = int(hits[0]) if len(hits) else -1


def write_search_files(
    report: SearchReport, out: Path, parameters: dict, model_card: dict
) -> dict[str, Path]:
    """Write ``search.h5``, ``candidates.xyz`` and ``search.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"h5": out / "search.h5", "xyz": out / "candidates.xyz", "png": out / "search.png"}
    res = Results(parameters=parameters, model_card=model_card)
    minima = report.minima
    res.add("minima/run", np.array([m.run for m in minima], dtype=int), "", "search run index")
    res.add(
        "minima/step",
        np.array([m.step for m in minima], dtype=int),
        "",
        "local minimum index in its run",
    )
    res.add(
        "minima/energy", np.array([m.energy for m in minima]), "eV", "energy of every local minimum"
    )
    res.add("minima/valid", report.valid, "", "no pair < 2.3 Å and connected at bond_cutoff")
    for run in range(report.settings.runs):
        steps, best = best_so_far(minima, run)
        res.add(f"traces/run_{run}/best_energy", best, "eV", "lowest energy found so far")
    cs = report.candidates
    res.add("candidates/energy", np.array([c.energy for c in cs]), "eV", "predicted energy")
    res.add(
        "candidates/energy_uncertainty",
        np.array([c.uncertainty for c in cs]),
        "eV",
        "conformal half-width (NaN: calculator has none)",
    )
    res.add(
        "candidates/lcb", np.array([c.lcb for c in cs]), "eV", "energy − κ·uncertainty (rank key)"
    )
    res.add("candidates/gap", np.array([c.gap for c in cs]), "eV", "energy above the lowest")
    res.add(
        "candidates/gap_interval",
        np.array([c.gap_interval for c in cs]).reshape(len(cs), 2),
        "eV",
        "calibrated interval of the gap (NaN: the calculator has no pair calibration)",
    )
    res.add(
        "candidates/p_below_best",
        np.array([c.p_below_best for c in cs]),
        "",
        "probability that the candidate is really lower than the lowest one",
    )
    res.add(
        "candidates/positions",
        np.array([c.atoms.get_positions() for c in cs]).reshape(len(cs), -1, 3)
        if cs
        else np.zeros((0, 0, 3)),
        "Å",
        "Cartesian positions, ranked",
    )
    res.add(
        "candidates/matches_cluster_id",
        np.array([c.matches_cluster_id for c in cs], dtype=int),
        "",
        "known isomer with the same fingerprint, -1 if new",
    )
    res.add(
        "candidates/match_distance",
        np.array([c.match_distance for c in cs]),
        "Å",
        "fingerprint distance to the closest known isomer",
    )
    res.add("summary/n_minima", len(minima), "", "local minima visited")
    res.add("summary/n_valid", int(report.valid.sum()), "", "valid minima")
    res.add("summary/n_candidates", len(cs), "", "distinct valid minima inside the domain")
    res.add(
        "summary/n_outside_domain",
        report.n_outside_domain,
        "",
        "distinct valid minima outside the model's domain, dropped",
    )
    res.add("summary/bond_cutoff", report.bond_cutoff, "Å", "connectivity cutoff")
    res.add("summary/wall_time", report.wall_time, "s", "search + ranking time")
    res.add(
        "summary/ground_state_id", report.ground_state_id, "", "lowest labelled isomer (-1: no db)"
    )
    res.add(
        "summary/ground_state_rank",
        report.ground_state_rank,
        "",
        "candidate rank matching it (-1: none)",
    )
    res.add(
        "summary/ground_state_distance",
        report.ground_state_distance,
        "Å",
        "closest candidate fingerprint distance to it",
    )
    write_results(files["h5"], res)
    model_name = parameters.get("calc") or model_card.get("model_type", "unknown")
    frames = []
    for rank, c in enumerate(cs):
        atoms = predicted_structure(
            c.atoms, c.energy, model_name, c.uncertainty, level=reference_level(model_card)
        )
        atoms.info.update(rank=rank, lcb=c.lcb, run=c.run, matches_cluster_id=c.matches_cluster_id)
        frames.append(atoms)
    if frames:
        write(files["xyz"], frames, format="extxyz")
    else:
        files["xyz"].write_text("")
    plot_search(report, files["png"])
    return files


def plot_search(report: SearchReport, path: Path) -> Path:
    """Best-so-far energy per run (left) and the ranked candidate energies (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_t, ax_c) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in range(report.settings.runs):
        steps, best = best_so_far(report.minima, run)
        ax_t.step(steps, best, where="post", label=f"run {run}")
    ax_t.set_xlabel(f"local minimum ({report.settings.method})")
    ax_t.set_ylabel("best energy so far (eV)")
    runs = report.settings.runs
    ax_t.set_title(f"{runs} run{'s' if runs != 1 else ''}, {len(report.minima)} local minima")
    ax_t.xaxis.set_major_locator(MaxNLocator(integer=True))
    if report.settings.runs <= 10:
        ax_t.legend(fontsize=8)
    cs = report.candidates
    if cs:
        e = np.array([c.energy for c in cs])
        u = np.nan_to_num(np.array([c.uncertainty for c in cs]), nan=0.0)
        rank = np.arange(len(cs))
        known = np.array([c.matches_cluster_id >= 0 for c in cs])
        if u.any():
            ax_c.errorbar(
                rank,
                e,
                yerr=u,
                fmt="none",
                ecolor="0.7",
                zorder=1,
                label="± interval half-width (calculator's confidence)",
            )
        if (~known).any():
            ax_c.scatter(rank[~known], e[~known], s=18, label="new", zorder=2)
        if known.any():
            ax_c.scatter(
                rank[known], e[known], s=30, marker="s", label="matches a known isomer", zorder=3
            )
        if report.ground_state_rank >= 0:
            r = report.ground_state_rank
            ax_c.scatter(
                [r],
                [e[r]],
                s=160,
                facecolors="none",
                edgecolors="r",
                label=f"ground state (id {report.ground_state_id})",
                zorder=4,
            )
        ax_c.legend(fontsize=8)
    ax_c.set_xlabel("candidate rank")
    ax_c.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_c.set_ylabel("predicted energy (eV)")
    ax_c.set_title(f"{len(cs)} distinct valid candidates")
    for ax in (ax_t, ax_c):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)
