"""Selection for labelling: unlabelled rows scored by calculator disagreement and interval width."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.db import connect
from ase.io import read
from click.testing import CliRunner

from ase_au20.cli.select import select_cmd
from ase_au20.database import load_rows
from ase_au20.geometry.random_cluster import random_cluster
from ase_au20.workflows.select import score_candidates, select_from_db, unlabelled_rows

N_CANDIDATES = 8


def gold_lj() -> LennardJones:
    """Lennard-Jones with gold-like parameters (Heinz et al. 2008): a cheap second opinion."""
    return LennardJones(sigma=2.63, epsilon=0.23, rc=6.5, smooth=True)


@pytest.fixture
def candidate_db(synthetic_db, tmp_path):
    """The synthetic db plus unlabelled rows, as a search would leave them."""
    path = tmp_path / "au20.db"
    shutil.copy(synthetic_db, path)
    db = connect(path)
    rng = np.random.default_rng(11)
    for _ in range(N_CANDIDATES):
        db.write(random_cluster(rng), source="search", pred_energy=0.0, matches_cluster_id=-1)
    return path


def test_pool_is_the_unlabelled_rows(candidate_db):
    ids, structures, left_out = unlabelled_rows(connect(candidate_db))
    assert len(ids) == len(structures) == N_CANDIDATES and left_out == 0
    assert all(connect(candidate_db).get(id=int(i)).source == "search" for i in ids)


def test_pool_leaves_out_labelled_matches_and_out_of_domain(candidate_db):
    db = connect(candidate_db)
    known = load_rows(db).atoms[3].copy()
    known.rattle(0.001, seed=1)  # a search minimum that is a labelled isomer
    db.write(known, source="search", pred_energy=0.0, matches_cluster_id=-1)
    db.write(random_cluster(np.random.default_rng(5)), source="search", matches_cluster_id=7)
    db.write(random_cluster(np.random.default_rng(6)), source="search", in_domain=False)
    ids, structures, left_out = unlabelled_rows(db)
    assert len(ids) == N_CANDIDATES and left_out == 3


def test_pool_holds_a_structure_screened_twice_once(candidate_db):
    db = connect(candidate_db)
    first_id = min(unlabelled_rows(db)[0])
    again = db.get(id=int(first_id)).toatoms()
    again.rattle(0.001, seed=2)
    db.write(again, source="screen", pred_energy=0.0)
    ids, _, left_out = unlabelled_rows(db)
    assert len(ids) == N_CANDIDATES and left_out == 1 and first_id in ids


def test_select_exports_n_and_sorted_scores(candidate_db, tmp_path):
    calcs = {"emt": EMT(), "lj": gold_lj()}
    selection, files = select_from_db(
        candidate_db, calcs, n=3, out_dir=tmp_path / "sel", energy_window=None
    )
    assert len(selection) == N_CANDIDATES
    xyz = sorted((tmp_path / "sel").glob("select_*.xyz"))
    assert len(xyz) == 3
    with files["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    scores = [float(r["score_eV"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert [int(r["selected"]) for r in rows] == [1, 1, 1] + [0] * (N_CANDIDATES - 3)
    for r in rows:
        e = np.array([float(r["energy_emt_eV"]), float(r["energy_lj_eV"])])
        assert float(r["disagreement_eV"]) == pytest.approx(e.std(), abs=1e-5)
        assert float(r["score_eV"]) == pytest.approx(e.std(), abs=1e-5)  # no uncertainties
    top = read(xyz[0])
    assert top.info["row_id"] == int(rows[0]["row_id"])
    np.testing.assert_allclose(top.positions, selection.atoms[0].positions)


def test_energy_window_keeps_low_energies_only(candidate_db):
    ids, structures, _ = unlabelled_rows(connect(candidate_db))
    full = score_candidates(structures, ids, {"emt": EMT(), "lj": gold_lj()}, energy_window=None)
    window = float(np.median(full.relative_energy))
    low = score_candidates(structures, ids, {"emt": EMT(), "lj": gold_lj()}, window)
    assert 0 < len(low) < len(full)
    assert np.all(low.relative_energy <= window)
    assert set(low.row_ids) == set(full.row_ids[full.relative_energy <= window])


def test_select_errors(synthetic_db, tmp_path):
    with pytest.raises(ValueError, match="no unlabelled structures"):
        select_from_db(synthetic_db, {"emt": EMT()}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="database not found"):
        select_from_db(tmp_path / "missing.db", {"emt": EMT()}, out_dir=tmp_path)


def test_cli_select(candidate_db, tmp_path):
    res = CliRunner().invoke(
        select_cmd,
        [
            "--db",
            str(candidate_db),
            "--n",
            "2",
            "--calcs",
            "emt",
            "--energy-window",
            "100",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "s").glob("select_*.xyz"))) == 2
    assert "score" in res.output


class EnsembleEMT(EMT):
    """EMT posing as an ensemble model: fixed spread 0.2 eV and half-width 0.5 eV."""

    implemented_properties = [*EMT.implemented_properties, "energy_std"]

    def predict(self, structures, properties=("energy",)):
        energies = []
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = EMT()
            energies.append(atoms.get_potential_energy())
        n = len(structures)
        out = {"energy": np.array(energies), "energy_uncertainty": np.full(n, 0.5)}
        if "energy_std" in properties:
            out["energy_std"] = np.full(n, 0.2)
        return out


def test_score_combines_disagreement_spread_and_interval(candidate_db):
    ids, structures, _ = unlabelled_rows(connect(candidate_db))
    sel = score_candidates(structures, ids, {"ens": EnsembleEMT(), "lj": gold_lj()}, None)
    np.testing.assert_allclose(sel.epistemic_std, 0.2)
    np.testing.assert_allclose(sel.conformal_half_width, 0.5)  # LJ has none: mean of the rest
    np.testing.assert_allclose(sel.score, np.hypot(sel.disagreement, 0.2) + 0.5)


class HalfOutsideEMT(EnsembleEMT):
    """EnsembleEMT that judges every other structure outside its domain, and calls those
    far lower in energy (as a collapsed structure would be)."""

    implemented_properties = [*EnsembleEMT.implemented_properties, "in_domain"]

    def predict(self, structures, properties=("energy",)):
        out = super().predict(structures, properties)
        outside = np.arange(len(structures)) % 2 == 1
        out["energy"] = np.where(outside, out["energy"] - 50.0, out["energy"])
        out["in_domain"] = ~outside
        return out


def test_out_of_domain_structures_are_never_selected(candidate_db):
    ids, structures, _ = unlabelled_rows(connect(candidate_db))
    sel = score_candidates(structures, ids, {"ens": HalfOutsideEMT()}, energy_window=1.0)
    inside_ids = set(ids[::2].tolist())
    assert len(sel) > 0 and set(sel.row_ids.tolist()) <= inside_ids
    assert sel.relative_energy.min() == pytest.approx(0.0)  # relative to the inside minimum
