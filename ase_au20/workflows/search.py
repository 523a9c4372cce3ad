"""Global-minimum search for Au clusters with ASE's machinery and any ASE calculator.

Two methods, each run ``runs`` times from reproducible starts: by default random clusters
with a random point-group symmetry (:mod:`ase_au20.geometry.symmetric_cluster`), or
unconstrained random compact clusters (``starts="random"``):

- ``basin``: ASE's :class:`~ase.optimize.basin.BasinHopping` (Wales & Doye); every hop
  ends in a local relaxation, and ASE writes each local minimum to a trajectory that we
  read back. ASE draws its moves from ``numpy.random``, so each run seeds it and restores
  the previous global state afterwards.
- ``multistart``: ``steps`` independent relaxations of fresh starts per run: with
  symmetric starts this is random structure searching in the manner of AIRSS.
- ``ga``: the cut-and-splice genetic algorithm of the ``ase-ga`` package (formerly
  ``ase.ga``): Deaven–Ho crossover plus rattle and mirror mutations, a population kept
  diverse by an interatomic-distance comparator, bookkeeping in a GA database.

Every local minimum found is returned, with the best-so-far trace of each run; validity
checks, de-duplication and ranking happen in :mod:`ase_au20.workflows.candidates`.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from ase.optimize.basin import BasinHopping
from tqdm import tqdm

from ase_au20.calculators.base import intervals_for
from ase_au20.compute.engine import Engine, usable_cores
from ase_au20.geometry.symmetric_cluster import STARTS, search_start
from ase_au20.validation import GOLD, min_pair_distance
from ase_au20.workflows.candidates import MIN_PAIR_DISTANCE
from ase_au20.workflows.relax import OPTIMIZERS, relax

METHODS = ("basin", "ga", "multistart")
WORST_SCORE = -1e9  # GA raw score of candidates that must never breed


@dataclass
class Minimum:
    """One local minimum: which run and step produced it, its energy (eV) and structure."""

    run: int
    step: int
    energy: float
    atoms: Atoms


@dataclass
class SearchSettings:
    """Knobs of one search; the defaults are the documented budget of ``make bench``."""

    method: str = "multistart"
    runs: int = 2
    steps: int = 100
    seed: int = 0
    fmax: float = 0.05
    relax_steps: int = 1000
    optimizer: str = "fire"
    temperature: float = 0.1  # eV, basin-hopping acceptance kT
    step_size: float = 0.5  # Å, basin-hopping max displacement per coordinate
    population: int = 10  # GA population size (also the number of random starts)
    mutation_probability: float = 0.3  # GA
    starts: str = "symmetric"  # or "random": how run starts / the GA population are drawn

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.method not in METHODS:
            raise ValueError(f"unknown search method {self.method!r}: use {', '.join(METHODS)}")
        if self.starts not in STARTS:
            raise ValueError(f"unknown starts {self.starts!r}: use {', '.join(STARTS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: use {', '.join(OPTIMIZERS)}")
        for name in ("runs", "steps", "relax_steps", "population"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("fmax", "temperature", "step_size"):
            if not getattr(self, name) > 0:  # NaN too
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.mutation_probability <= 1:
            raise ValueError(
                f"mutation_probability must be in [0, 1], got {self.mutation_probability}"
            )


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed ``numpy.random`` (which ASE's BasinHopping uses) and restore its state afterwards."""
    state = np.random.get_state()  # noqa: NPY002 - ASE draws from the global state
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class _StepCounter:
    """A write-only "log file" for BasinHopping that calls back once per logged hop."""

    def __init__(self, callback: Callable[[], None] | None) -> None:
        self.callback = callback

    def write(self, text: str) -> None:
        if self.callback is not None and text.startswith("BasinHopping:"):
            self.callback()

    def flush(self) -> None:
        """Nothing is buffered."""


def _with_energy(atoms: Atoms, energy: float) -> Atoms:
    """A copy of ``atoms`` carrying only a SinglePointCalculator energy."""
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=float(energy))
    return atoms


class LeftDomainError(ValueError):
    """Every recent relaxation of a run ended outside the calculator's domain."""


def _collapsed(atoms: Atoms) -> bool:
    """A minimum with a pair closer than the validity limit: the potential has collapsed."""
    return min_pair_distance(atoms.get_positions()) < MIN_PAIR_DISTANCE


def _outside_domain(atoms: Atoms) -> bool:
    """The calculator's last verdict on ``atoms`` says outside its domain (no verdict: no)."""
    results = getattr(atoms.calc, "results", None) or {}
    return "in_domain" in results and not bool(results["in_domain"])


def ga_score(atoms: Atoms, energy: float, in_domain: bool | None = None) -> float:
    """GA fitness −E; a collapsed minimum, or one outside the calculator's domain, gets the
    worst score: it is reported (and judged there) but never enters the population, whose
    members breed."""
    return WORST_SCORE if _collapsed(atoms) or in_domain is False else -float(energy)


class _GuardedBasinHopping(BasinHopping):
    """ASE basin hopping that rejects a hop whose relaxation leaves the model's domain.

    Far from its training data a learned potential can pull atoms together without limit:
    our calculators then raise ``ValueError`` (atoms closer than 1.5 Å), the minimum has
    a pair below the validity limit (2.3 Å) with a meaninglessly low energy, or the
    calculator's verdict on the minimum is ``in_domain=False``. ASE's loop
    draws a new move whenever ``get_energy`` returns None, so such a hop is not taken (the
    collapsed minimum is still logged, and reported as invalid); after ``MAX_FAILURES``
    failures in a row the run is stuck and raises :class:`LeftDomainError`.
    """

    MAX_FAILURES = 50
    failures = 0

    def get_energy(self, positions: np.ndarray) -> float | None:
        try:
            energy = super().get_energy(positions)
            if _collapsed(self._atoms()):
                raise ValueError(
                    f"relaxed to a pair closer than {MIN_PAIR_DISTANCE} Å (collapsed minimum)"
                )
            if _outside_domain(self._atoms()):  # an extrapolated energy must not steer the walk
                raise ValueError("relaxed to a minimum outside the calculator's domain")
        except ValueError as exc:
            self.failures += 1
            if self.failures >= self.MAX_FAILURES:
                raise LeftDomainError(
                    f"{self.failures} relaxations in a row left the "
                    f"calculator's domain (last: {exc})"
                ) from exc
            self.energy = np.inf  # a failed start is replaced by the first good hop
            return None
        self.failures = 0
        return energy


def basin_hopping_run(
    start: Atoms,
    calc: Calculator,
    settings: SearchSettings,
    seed: int,
    workdir: Path,
    on_minimum: Callable[[], None] | None = None,
) -> list[Minimum]:
    """One ASE basin-hopping run from ``start``; every local minimum it visits, in order."""
    atoms = start.copy()
    atoms.calc = calc
    minima_path = workdir / f"minima-{seed}.traj"
    bh = _GuardedBasinHopping(
        atoms,
        temperature=settings.temperature,
        optimizer=OPTIMIZERS[settings.optimizer],
        fmax=settings.fmax,
        dr=settings.step_size,
        logfile=_StepCounter(on_minimum),
        trajectory=str(workdir / f"lowest-{seed}.traj"),
        optimizer_logfile=None,
        local_minima_trajectory=str(minima_path),
    )
    with _seeded_global_numpy(seed), bh:
        try:
            bh.run(settings.steps)
        except LeftDomainError as exc:
            warnings.warn(f"basin-hopping run with seed {seed} stopped early: {exc}", stacklevel=2)
    frames = read(minima_path, index=":") if minima_path.stat().st_size else []
    minima = []
    for step, frame in enumerate(frames):
        energy = float(frame.get_potential_energy())
        minima.append(Minimum(-1, step, energy, _with_energy(frame, energy)))
    return minima


def ga_run(
    calc: Calculator,
    settings: SearchSettings,
    seed: int,
    workdir: Path,
    n_atoms: int = 20,
    progress: Callable[[], None] | None = None,
) -> list[Minimum]:
    """One cut-and-splice GA run (``ase-ga``): a population of starts, then ``steps`` offspring."""
    try:
        from ase_ga import set_raw_score
        from ase_ga.data import DataConnection, PrepareDB
        from ase_ga.offspring_creator import OperationSelector
        from ase_ga.particle_crossovers import CutSpliceCrossover
        from ase_ga.population import Population
        from ase_ga.standard_comparators import InteratomicDistanceComparator
        from ase_ga.standardmutations import MirrorMutation, RattleMutation
        from ase_ga.utilities import closest_distances_generator
    except ImportError as exc:
        raise ValueError(
            "--method ga needs the ase-ga package (ase.ga moved there): pip install ase-ga"
        ) from exc
    rng = np.random.RandomState(seed)  # ase-ga calls the legacy API (randint, rand)
    start_rng = np.random.default_rng(seed)
    blmin = closest_distances_generator([GOLD], ratio_of_covalent_radii=0.7)
    db_file = workdir / f"ga-{seed}.db"
    prepare = PrepareDB(str(db_file), simulation_cell=Atoms(), stoichiometry=[GOLD] * n_atoms)
    for _ in range(settings.population):
        prepare.add_unrelaxed_candidate(search_start(start_rng, n_atoms, settings.starts))
    data = DataConnection(str(db_file))
    minima: list[Minimum] = []

    def relax_candidate(candidate: Atoms) -> None:
        try:
            result = relax(
                candidate,
                calc,
                settings.fmax,
                settings.optimizer,
                settings.relax_steps,
                warn_outside=False,
            )
        except ValueError:
            # Left the calculator's domain (atoms collapsed): the worst possible score keeps
            # it out of every full population; it is not reported as a minimum.
            candidate.calc = SinglePointCalculator(candidate, energy=0.0)
            set_raw_score(candidate, WORST_SCORE)
            data.add_relaxed_step(candidate)
            return
        candidate.set_positions(result.atoms.get_positions())
        energy = float(result.energies[-1])
        candidate.calc = SinglePointCalculator(candidate, energy=energy)
        set_raw_score(candidate, ga_score(candidate, energy, result.in_domain))
        data.add_relaxed_step(candidate)
        minima.append(Minimum(-1, len(minima), energy, _with_energy(candidate, energy)))
        if progress is not None:
            progress()

    while data.get_number_of_unrelaxed_candidates() > 0:
        relax_candidate(data.get_an_unrelaxed_candidate())
    comparator = InteratomicDistanceComparator(
        n_top=n_atoms, pair_cor_cum_diff=0.015, pair_cor_max=0.7, dE=0.02, mic=False
    )
    population = Population(data, settings.population, comparator, rng=rng)
    pairing = CutSpliceCrossover(blmin, keep_composition=True, rng=rng)
    mutations = OperationSelector(
        [1.0, 1.0],
        [RattleMutation(blmin, n_atoms, rng=rng), MirrorMutation(blmin, n_atoms, rng=rng)],
        rng=rng,
    )
    made = 0
    while made < settings.steps:
        parents = population.get_two_candidates()
        child, description = pairing.get_new_individual(parents)
        if child is None:
            continue
        data.add_unrelaxed_candidate(child, description=description)
        if rng.random() < settings.mutation_probability:
            mutant, description = mutations.get_new_individual([child])
            if mutant is not None:
                data.add_unrelaxed_step(mutant, description)
                child = mutant
        relax_candidate(child)
        population.update()
        made += 1
    return minima


def multistart_run(
    calc: Calculator,
    settings: SearchSettings,
    seed: int,
    n_atoms: int = 20,
    progress: Callable[[], None] | None = None,
    found: list[Minimum] | None = None,
) -> list[Minimum]:
    """Relax ``settings.steps`` fresh starts; a relaxation that leaves the domain is skipped.
    Each minimum is also appended to ``found`` as soon as it is there (what an interrupted
    search keeps)."""
    rng = np.random.default_rng(seed)
    minima: list[Minimum] = [] if found is None else found
    for step in range(settings.steps):
        start = search_start(rng, n_atoms, settings.starts)
        if progress is not None:
            progress()
        try:
            result = relax(
                start,
                calc,
                settings.fmax,
                settings.optimizer,
                settings.relax_steps,
                warn_outside=False,
            )
        except ValueError:
            continue
        energy = float(result.energies[-1])
        minima.append(Minimum(-1, step, energy, _with_energy(result.atoms, energy)))
    return minima


def minima_per_run(settings: SearchSettings) -> int:
    """Local relaxations one run makes (the start counts for basin hopping)."""
    if settings.method == "basin":
        return settings.steps + 1
    if settings.method == "ga":
        return settings.population + settings.steps
    return settings.steps


def search_run(
    calc: Calculator,
    settings: SearchSettings,
    run: int,
    n_atoms: int,
    workdir: Path,
    progress: Callable[[], None] | None = None,
    found: list[Minimum] | None = None,
) -> list[Minimum]:
    """The local minima of run number ``run`` (seeded by ``settings.seed`` and ``run``);
    ``found`` receives a multistart's minima one by one as they come."""
    seed = settings.seed * 1000 + run
    if settings.method == "basin":
        start = search_start(np.random.default_rng(seed), n_atoms, settings.starts)
        minima = basin_hopping_run(start, calc, settings, seed, workdir, progress)
    elif settings.method == "ga":
        minima = ga_run(calc, settings, seed, workdir, n_atoms, progress)
    else:
        minima = multistart_run(calc, settings, seed, n_atoms, progress, found)
    for minimum in minima:
        minimum.run = run
    return minima


def auto_workers(calc: Calculator, runs: int) -> int:
    """One worker per run up to the usable cores; one for a model on a GPU (it is shared)."""
    device = getattr(getattr(calc, "model", None), "device", None)
    if getattr(device, "type", "cpu") != "cpu":
        return 1
    return max(1, min(runs, usable_cores()))


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search, carrying the minima found until then (``minima``)."""

    def __init__(self, minima: list[Minimum]) -> None:
        super().__init__()
        self.minima = minima


def _search_task(calc: Calculator, job: tuple, progress) -> list[Minimum]:
    """One run as an engine task, in a scratch folder of the worker's own; a job's fourth
    item, in this process only, is the list its minima go to as they come."""
    settings, run, n_atoms, *found = job
    with tempfile.TemporaryDirectory(prefix="au20-search-") as tmp:
        return search_run(calc, settings, run, n_atoms, Path(tmp), progress, *found)


def global_search(
    calc: Calculator,
    settings: SearchSettings,
    n_atoms: int = 20,
    progress: bool = False,
    engine: Engine | None = None,
) -> list[Minimum]:
    """All local minima of ``settings.runs`` independent runs (run index set on each).

    The runs are tasks of ``engine`` (default: one after another in this process); each is
    seeded on its own, so the minima do not depend on where the runs ran.
    """
    settings.validate()
    engine = engine or Engine()
    here = engine.client is None
    partial: list[Minimum] = []  # this process's current run, as its minima come
    jobs = [(settings, run, n_atoms, *([partial] if here else [])) for run in range(settings.runs)]
    finished: list[list[Minimum]] = []
    with (
        tqdm(  # closed on an error too, so the error is printed on a line of its own
            total=settings.runs * minima_per_run(settings),
            desc=f"search {settings.method}",
            unit="minimum",
            disable=not progress,
        ) as bar,
        intervals_for(calc, "minima"),
    ):  # calibrated on the model's relaxations
        runs = engine.map(
            _search_task,
            engine.calculator(calc),
            jobs,
            label=lambda job: f"search run {job[1]}",
            on_progress=bar.update,
        )
        try:
            for minima_of_run in runs:
                finished.append(list(minima_of_run))
                partial.clear()
        except KeyboardInterrupt:
            kept = [m for run in finished for m in run] + list(partial)
            raise SearchInterrupted(kept) from None
    minima = [minimum for found in finished for minimum in found]
    if not minima:
        raise ValueError(
            "the search found no local minimum: every relaxation left the calculator's domain"
        )
    return minima


def best_so_far(minima: list[Minimum], run: int) -> tuple[np.ndarray, np.ndarray]:
    """Step index and lowest energy found so far (eV) of one run, for convergence plots."""
    energies = np.array([m.energy for m in minima if m.run == run])
    return np.arange(len(energies)), np.minimum.accumulate(energies)
