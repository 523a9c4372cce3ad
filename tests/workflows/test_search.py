"""Global search: valid, distinct, ranked candidates; db rows; matching; LCB; reproducibility."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.db import connect
from ase.io import read
from click.testing import CliRunner

from ase_au20.calculators.base import OutsideDomainWarning
from ase_au20.cli.search import search_cmd
from ase_au20.compute.engine import open_engine, usable_cores
from ase_au20.geometry.conventions import BOND_CUTOFF, DUPLICATE_TOLERANCE
from ase_au20.geometry.fingerprint import fingerprint_matrix, max_deviation
from ase_au20.geometry.metrics import connected
from ase_au20.geometry.random_cluster import random_cluster
from ase_au20.structures import au20_ground_state
from ase_au20.validation import min_pair_distance
from ase_au20.workflows import candidates as cands
from ase_au20.workflows.any_calculator import ModelIdentity
from ase_au20.workflows.relax import relax
from ase_au20.workflows.results import read_results
from ase_au20.workflows.search import (
    SearchSettings,
    auto_workers,
    global_search,
    multistart_run,
    search_run,
)
from ase_au20.workflows.search_run import run_search


class EMTWithUncertainty(EMT):
    """EMT plus a batched ``predict`` whose uncertainty is the radius of gyration (eV)."""

    def predict(self, structures, properties=("energy",)):
        energies, spreads = [], []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = EMT()
            energies.append(atoms.get_potential_energy())
            centred = atoms.positions - atoms.positions.mean(axis=0)
            spreads.append(np.sqrt((centred**2).sum(axis=1).mean()))
        return {"energy": np.array(energies), "energy_uncertainty": np.array(spreads)}


@pytest.fixture
def db_copy(synthetic_db, tmp_path):
    path = tmp_path / "au20.db"
    shutil.copy(synthetic_db, path)
    return path


def test_random_cluster_reproducible_and_separated():
    a = random_cluster(np.random.default_rng(5))
    b = random_cluster(np.random.default_rng(5))
    np.testing.assert_array_equal(a.positions, b.positions)
    assert len(a) == 20 and min_pair_distance(a.positions) >= 2.5
    assert np.linalg.norm(a.positions, axis=1).max() < 2 * 1.85 * np.cbrt(20)
    with pytest.raises(ValueError, match="could not place"):
        random_cluster(np.random.default_rng(0), 20, min_distance=2.5, radius=2.0, max_tries=500)


def test_basin_search_reproducible():
    settings = SearchSettings(method="basin", runs=1, steps=2, seed=7)
    first = global_search(EMT(), settings)
    second = global_search(EMT(), settings)
    assert len(first) == 3  # the relaxed start + one minimum per hop
    np.testing.assert_array_equal([m.energy for m in first], [m.energy for m in second])


def test_search_candidates_valid_distinct_ranked_and_stored(db_copy, tmp_path):
    settings = SearchSettings(method="basin", runs=2, steps=2, seed=0)
    report = run_search(EMT(), settings, tmp_path / "out", db_url=db_copy, calc_name="emt")
    cs = report.candidates
    assert len(report.minima) == 6 and 0 < len(cs) <= report.valid.sum()
    assert report.bond_cutoff == BOND_CUTOFF
    for c in cs:
        assert min_pair_distance(c.atoms.positions) >= cands.MIN_PAIR_DISTANCE
        assert connected(c.atoms, report.bond_cutoff)
        check = c.atoms.copy()
        check.calc = EMT()
        assert check.get_potential_energy() == pytest.approx(c.energy)
    energies = [c.energy for c in cs]
    assert energies == sorted(energies)
    assert min(energies) == pytest.approx(
        min(m.energy for m, ok in zip(report.minima, report.valid, strict=True) if ok)
    )
    dist = max_deviation(
        fingerprint_matrix([c.atoms for c in cs]), fingerprint_matrix([c.atoms for c in cs])
    )
    assert dist[np.triu_indices(len(cs), 1)].min() >= DUPLICATE_TOLERANCE
    rows = list(connect(db_copy).select(source="search"))
    assert len(rows) == len(cs) == report.rows_written
    # predictions are key-value pairs, never the row's energy (which is a label)
    assert all(r.get("energy") is None and r.get("calculator") is None for r in rows)
    assert sorted(r.pred_energy for r in rows) == pytest.approx(energies)
    assert all(r.matches_cluster_id == -1 and r.model == "emt" for r in rows)
    assert all(r.model_card_sha256 == "" and "pred_uncertainty" not in r for r in rows)
    assert all("cluster_id" not in r for r in rows)  # never mistaken for labelled isomers
    labelled = list(connect(db_copy).select("energy<1e9"))
    assert labelled and all("cluster_id" in r for r in labelled)
    assert report.ground_state_id >= 0 and not report.found_ground_state
    identity = ModelIdentity("emt")
    row_ids, skipped = cands.store_candidates(
        connect(db_copy), cs, {}, identity, db_url=str(db_copy)
    )
    assert skipped == len(cs) and not any(row_ids)  # a re-run adds no duplicate rows
    frames = read(report.files["xyz"], ":")
    assert [f.get_potential_energy() for f in frames] == pytest.approx(energies)
    assert all(f.info["predicted_by"] == "emt" for f in frames)
    arrays, attrs = read_results(report.files["h5"])
    np.testing.assert_allclose(arrays["candidates/energy"], energies)
    assert arrays["minima/energy"].shape == (6,)
    assert arrays["traces/run_1/best_energy"].shape == (3,)
    assert np.all(np.diff(arrays["traces/run_0/best_energy"]) <= 0)
    assert attrs["parameters"]["method"] == "basin"


def test_match_known_finds_a_rotated_permuted_copy():
    relaxed = relax(au20_ground_state(), EMT()).atoms
    copy = relaxed.copy()
    copy.rotate(37, "z", center="COM")
    copy = copy[np.random.default_rng(0).permutation(20)]
    other = relax(random_cluster(np.random.default_rng(1)), EMT(), optimizer="fire").atoms
    ids, dist = cands.match_known([copy, other], [other, relaxed], [11, 350], tol=0.01)
    assert ids.tolist() == [350, 11]
    assert dist.max() < 1e-6
    expanded = relaxed.copy()
    expanded.positions *= 1.04
    assert cands.match_known([expanded], [relaxed], [350], tol=0.05)[0][0] == -1
    shape, _ = cands.match_known([expanded], [relaxed], [350], tol=0.05, scale_invariant=True)
    assert shape[0] == 350


def test_unique_indices_keeps_lowest_energy_copy():
    a = au20_ground_state()
    b = a.copy()
    b.rotate(90, "x")
    c = random_cluster(np.random.default_rng(3))
    assert cands.unique_indices([a, b, c], [1.0, 0.5, 2.0], tol=0.01) == [1, 2]


def test_invalid_reason():
    td = au20_ground_state()
    assert cands.invalid_reason(td, 3.3) == ""
    squeezed = td.copy()
    bond = squeezed.positions[0] - squeezed.positions[1]
    squeezed.positions[0] = squeezed.positions[1] + 2.0 * bond / np.linalg.norm(bond)
    assert cands.invalid_reason(squeezed, 3.3) == "pair at 2.00 Å < 2.3 Å"
    fragment = td.copy()
    fragment.positions[0] += [20.0, 0, 0]
    assert "fragmented" in cands.invalid_reason(fragment, 3.3)


def test_lcb_ranking_uses_uncertainty(tmp_path):
    settings = SearchSettings(method="basin", runs=1, steps=2, seed=2)
    kappa = 5.0
    lcb = run_search(EMTWithUncertainty(), settings, tmp_path, kappa=kappa)
    for c in lcb.candidates:
        assert c.lcb == pytest.approx(c.energy - kappa * c.uncertainty)
    assert [c.lcb for c in lcb.candidates] == sorted(c.lcb for c in lcb.candidates)
    assert len(lcb.candidates) > 1
    assert (
        np.isnan(cands.lower_confidence_bound(np.array([1.0]), np.array([np.nan]), 2.0)).sum() == 0
    )
    with pytest.raises(ValueError, match="kappa"):
        cands.lower_confidence_bound(np.array([1.0]), np.array([0.1]), -1.0)


def test_ga_search_runs():
    pytest.importorskip("ase_ga")
    settings = SearchSettings(method="ga", runs=1, steps=2, population=3, seed=1)
    minima = global_search(EMT(), settings)
    assert len(minima) == 5
    assert all(np.isfinite(m.energy) for m in minima)


def test_search_settings_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown search method"):
        SearchSettings(method="anneal").validate()
    with pytest.raises(ValueError, match="runs must be >= 1"):
        SearchSettings(method="basin", runs=0).validate()
    with pytest.raises(ValueError, match="database not found"):
        run_search(
            EMT(),
            SearchSettings(method="basin", runs=1, steps=1),
            tmp_path,
            db_url=tmp_path / "no.db",
        )


def test_cli_search(db_copy, tmp_path):
    res = CliRunner().invoke(
        search_cmd,
        [
            "--calc",
            "emt",
            "--runs",
            "1",
            "--steps",
            "2",
            "--db",
            str(db_copy),
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "ground state (isomer" in res.output and "db rows written" in res.output
    assert "1 multistart run(s) in this process\n" in res.output
    assert (tmp_path / "s" / "candidates.xyz").stat().st_size > 0
    res = CliRunner().invoke(search_cmd, ["--calc", "emt", "--workers", "0"])
    assert res.exit_code == 2 and "use a positive number or auto, not '0'" in res.output


class EMTCollapsingAfter(EMT):
    """EMT that raises like our calculators do once ``limit`` calculations have run."""

    def __init__(self, limit: int, until: int | None = None) -> None:
        super().__init__()
        self.limit, self.until, self.calls, self.raised = limit, until, 0, 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        if self.calls > self.limit and (self.until is None or self.calls <= self.until):
            self.raised += 1
            raise ValueError("atoms closer than 1.5 Å (closest pair 1.2 Å)")
        super().calculate(*args, **kwargs)


def test_basin_hop_leaving_the_domain_is_rejected_not_fatal():
    calc = EMTCollapsingAfter(limit=60, until=64)
    minima = global_search(calc, SearchSettings(method="basin", runs=1, steps=3, seed=1))
    assert calc.raised > 0
    assert len(minima) >= 3
    assert all(min_pair_distance(m.atoms.positions) > 2.0 for m in minima)


def test_basin_run_stuck_outside_the_domain_keeps_its_minima_and_warns():
    calc = EMTCollapsingAfter(limit=150)
    with pytest.warns(UserWarning, match="stopped early: 50 relaxations in a row left"):
        minima = global_search(calc, SearchSettings(method="basin", runs=1, steps=5, seed=1))
    assert 1 <= len(minima) < 6


def test_search_that_never_relaxes_is_a_clear_error():
    with (
        pytest.warns(UserWarning, match="stopped early"),
        pytest.raises(ValueError, match="found no local minimum"),
    ):
        global_search(
            EMTCollapsingAfter(limit=0), SearchSettings(method="basin", runs=1, steps=3, seed=1)
        )


def test_runs_on_dask_workers_give_the_minima_of_one_process_and_their_warnings(tmp_path):
    settings = SearchSettings(method="multistart", runs=2, steps=1, seed=4)
    serial = [search_run(EMT(), settings, run, 20, tmp_path) for run in range(2)]
    ticks = []
    with open_engine("local", workers=2) as engine:
        assert engine.workers == 2 and "2 Dask workers" in engine.description
        parallel = global_search(EMT(), settings, engine=engine)
        ticking = engine.map(
            lambda calc, item, progress: (progress(), progress(2), item)[-1],
            None,
            range(4),
            on_progress=ticks.append,
        )
        assert list(ticking) == [0, 1, 2, 3]
        with pytest.warns(UserWarning, match="outside the model's domain, said a worker"):
            minima = global_search(WarningOutsideEMT(), settings, engine=engine)
        used = EMT()
        atoms = au20_ground_state()
        atoms.calc = used
        atoms.get_potential_energy()  # EMT keeps an unpicklable lambda once it has computed
        with pytest.raises(ValueError, match="cannot send EMT to the Dask workers"):
            global_search(used, settings, engine=engine)
    assert engine.description.startswith("on 2 Dask workers at tcp://")  # also once closed
    assert {m.run for m in minima} == {0, 1}
    assert sum(ticks) == 12  # every task's progress reached the client
    want = [m for found in serial for m in found]
    assert [(m.run, m.step) for m in parallel] == [(m.run, m.step) for m in want]
    for a, b in zip(parallel, want, strict=True):
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.atoms.positions, b.atoms.positions)


def test_auto_workers_one_per_run_up_to_the_cores_and_one_on_a_gpu():
    from types import SimpleNamespace

    assert auto_workers(EMT(), 1) == 1
    assert auto_workers(EMT(), 64) == min(64, usable_cores())
    on_gpu = SimpleNamespace(model=SimpleNamespace(device=SimpleNamespace(type="cuda")))
    assert auto_workers(on_gpu, 4) == 1


class OutsideEMT(EMT):
    """EMT whose every result is judged outside the domain."""

    implemented_properties = [*EMT.implemented_properties, "in_domain", "domain_score"]

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results.update(in_domain=False, domain_score=2.0)


class WarningOutsideEMT(OutsideEMT):
    """OutsideEMT that also warns on each call, as our calculators warn once."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        warnings.warn("outside the model's domain, said a worker", UserWarning, stacklevel=2)


def test_basin_hops_and_ga_members_outside_the_domain_are_never_taken(monkeypatch):
    from ase_au20.workflows import search

    monkeypatch.setattr(search._GuardedBasinHopping, "MAX_FAILURES", 3)
    with pytest.warns(UserWarning, match="relaxed to a minimum outside the calculator's domain"):
        minima = global_search(
            OutsideEMT(), SearchSettings(method="basin", runs=1, steps=4, seed=1)
        )
    assert minima  # still reported, for the candidates' domain filter to count
    relaxed = au20_ground_state()
    assert search.ga_score(relaxed, -10.0, in_domain=False) == search.WORST_SCORE
    assert search.ga_score(relaxed, -10.0, in_domain=None) == 10.0  # no verdict (EMT)


def test_local_relaxations_of_a_search_record_the_domain_without_warning():
    from ase_au20.workflows.relax import relax

    atoms = au20_ground_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = relax(atoms, OutsideEMT(), steps=2, warn_outside=False)
    assert quiet.trust.first_outside == 0 and quiet.in_domain is False
    with pytest.warns(OutsideDomainWarning, match="starts outside the model's domain"):
        relax(atoms, OutsideEMT(), steps=2)


def test_a_search_with_a_shipped_model_gives_no_warning_for_its_paths(shipped_model):
    from ase_au20.calculators.krr import KRRAu20

    calc = KRRAu20(shipped_model("krr"))
    settings = SearchSettings(method="multistart", runs=1, steps=3, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        minima = multistart_run(calc, settings, seed=0)
    assert len(minima) == 3
    assert [str(w.message) for w in caught if w.category is OutsideDomainWarning] == []


def test_out_of_domain_minima_are_never_candidates(db_copy, tmp_path):
    settings = SearchSettings(method="multistart", runs=1, steps=3, seed=0)
    report = run_search(OutsideEMT(), settings, tmp_path / "out", db_url=db_copy, calc_name="x")
    assert report.candidates == [] and report.n_outside_domain > 0 and report.rows_written == 0
    arrays, _ = read_results(report.files["h5"])
    assert int(arrays["summary/n_outside_domain"]) == report.n_outside_domain


def test_gaps_to_the_best_candidate_with_and_without_pair_calibration(shipped_model):
    from ase_au20.calculators.krr import KRRAu20

    structures = [au20_ground_state() for _ in range(3)]
    for k, atoms in enumerate(structures):
        atoms.rattle(0.03, seed=k)
    calc = KRRAu20(shipped_model("krr"))
    energies = calc.predict(structures)["energy"]
    candidates = [
        cands.Candidate(atoms=a, energy=float(e), uncertainty=0.5, lcb=float(e), run=0, step=k)
        for k, (a, e) in enumerate(zip(structures, energies, strict=True))
    ]
    cands.fill_gaps_to_best(calc, candidates)
    best = int(np.argmin(energies))
    assert [c.gap for c in candidates] == pytest.approx(energies - energies[best])
    assert candidates[best].p_below_best == 0.5
    assert candidates[best].gap_interval == (0.0, 0.0)  # the best against itself: exact
    for c in candidates[:best] + candidates[best + 1 :]:
        assert c.gap_interval[0] < c.gap < c.gap_interval[1]
    predicted = calc.predict(structures, ("energy", "energy_std", "in_domain", "domain_score"))
    again = [
        cands.Candidate(a, float(e), 0.5, float(e), 0, 0)
        for a, e in zip(structures, energies, strict=True)
    ]
    calc.predict = None  # predictions passed in are reused, not made again
    cands.fill_gaps_to_best(calc, again, predicted)
    np.testing.assert_allclose(
        [c.gap_interval for c in again], [c.gap_interval for c in candidates], atol=1e-9
    )
    plain = [
        cands.Candidate(atoms=a, energy=e, uncertainty=np.nan, lcb=e, run=0, step=0)
        for a, e in zip(structures, [3.0, 1.0, 2.0], strict=True)
    ]
    cands.fill_gaps_to_best(EMT(), plain)
    assert [c.gap for c in plain] == [2.0, 0.0, 1.0] and np.isnan(plain[0].p_below_best)


def test_search_verify_ranks_candidates_by_the_references_own_minima(tmp_path) -> None:
    """`search --verify dftb` (issue 39, item 1): the verified energies are the reference's
    at the reported geometries, which are its minima and labels, in the verified order."""
    import csv

    from ase.io import read
    from cli_helpers import run_cli

    from ase_au20 import DFTBAu20

    out = tmp_path / "s"
    args = ["search", "--calc", "emt", "--runs", "1", "--steps", "3", "--starts", "random"]
    args += ["--verify", "dftb", "--verify-top", "2", "--scheduler", "none"]
    text = run_cli(*args, "--out", str(out))
    assert "verified by dftb" in text
    with open(out / "verified.csv") as handle:
        rows = list(csv.DictReader(handle))
    minima = read(out / "verified.xyz", ":")
    assert len(rows) == len(minima) == 2
    energies = [float(r["reference_minimum_energy"]) for r in rows]
    assert energies == sorted(energies) and [int(r["verified_rank"]) for r in rows] == [0, 1]
    calc = DFTBAu20()
    for row, atoms in zip(rows, minima, strict=True):
        assert atoms.info["level"] == "dftb1-auorg-1-1" and "predicted_by" not in atoms.info
        assert atoms.get_potential_energy() == pytest.approx(float(row["reference_minimum_energy"]))
        fresh = atoms.copy()
        fresh.calc = calc
        assert fresh.get_potential_energy() == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        assert np.linalg.norm(fresh.get_forces(), axis=1).max() < 0.05 + 1e-6
