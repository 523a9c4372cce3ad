"""Domain of applicability (issue 18, item 1): every DFTB1 isomer and thermal geometry inside,
every unphysical cluster outside, and the calculators say so."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

from ase_au20.calculators.base import OutsideDomainWarning
from ase_au20.database import load_rows
from ase_au20.geometry.unphysical_clusters import KINDS, unphysical_corpus
from ase_au20.models import load_model
from ase_au20.models.domain import DOMAIN_NAME, Domain, attach_domain
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.md import thermal_snapshots


@pytest.fixture(scope="module")
def shipped_domain(shipped_model) -> Domain:
    return load_model(shipped_model("krr")).domain


@pytest.mark.data
def test_every_dft_isomer_is_inside(shipped_domain: Domain, real_db: Path) -> None:
    rows = load_rows(real_db)
    verdict = shipped_domain.verdict(rows.atoms)
    assert len(rows) == 899 and verdict.in_domain.all(), verdict.score.max()


def test_thermal_geometries_are_inside(shipped_domain: Domain) -> None:
    frames = thermal_snapshots(au20_ground_state(), EMT(), 150)
    assert shipped_domain.verdict(frames).in_domain.mean() >= 0.99
    rng = np.random.default_rng(3)
    rattled = []
    for _ in range(150):
        atoms = au20_ground_state()
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        rattled.append(atoms)
    assert shipped_domain.verdict(rattled).in_domain.mean() >= 0.98


@pytest.mark.parametrize("name", ["krr", "schnet"])
def test_every_unphysical_cluster_is_outside(name: str, shipped_model, real_db: Path) -> None:
    # the SchNet's domain is fitted on corpus frames too: their outliers must not open it
    domain = load_model(shipped_model(name)).domain
    bases = load_rows(real_db, "test").atoms[:10]
    corpus = unphysical_corpus(bases, per_kind=10, seed=2)
    verdict = domain.verdict([a for _, a in corpus])
    assert {k for k, _ in corpus} == set(KINDS)
    missed = [k for (k, _), inside in zip(corpus, verdict.in_domain, strict=True) if inside]
    assert not missed


@pytest.mark.data
def test_schnet_domain_keeps_every_isomer_inside(shipped_model, real_db: Path) -> None:
    verdict = load_model(shipped_model("schnet")).domain.verdict(load_rows(real_db).atoms)
    assert verdict.in_domain.all(), verdict.score.max()


def test_outlying_frames_do_not_widen_the_domain() -> None:
    from ase_au20.geometry.unphysical_clusters import gas_like

    isomers = thermal_snapshots(au20_ground_state(), EMT(), 40)[::4]
    rng = np.random.default_rng(0)
    frames = []
    for k in range(200):
        atoms = au20_ground_state()
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        frames.append(gas_like(atoms, rng) if k == 0 else atoms)  # one gas-like frame in 200
    gas = gas_like(au20_ground_state(), np.random.default_rng(9))
    fitted = Domain.fit(isomers, frames)
    assert fitted.limits["pieces"] == 1.5
    assert not fitted.verdict([gas]).in_domain[0]
    assert fitted.verdict(frames[1:]).in_domain.mean() >= 0.95
    # as plain training structures, the same frames open the domain to a gas
    assert Domain.fit([*isomers, *frames]).verdict([gas]).in_domain[0]


def test_calculator_flags_a_collapsed_cluster_and_widens_its_interval(shipped_model) -> None:
    from ase_au20.calculators.krr import KRRAu20

    calc = KRRAu20(shipped_model("krr"))
    good = au20_ground_state()
    collapsed = au20_ground_state()
    collapsed.positions *= 1.68 / 2.62  # closest pair 1.68 Å, as in the issue
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutsideDomainWarning)
        inside = calc.predict([good], ("energy", "in_domain", "domain_score"))
    assert inside["in_domain"][0] and inside["domain_score"][0] <= 1.0
    with pytest.warns(OutsideDomainWarning, match="outside the model's domain"):
        out = calc.predict(
            [collapsed], ("energy", "energy_std", "energy_uncertainty", "in_domain", "domain_score")
        )
    assert not out["in_domain"][0] and out["domain_score"][0] > 1.0
    raw = calc.calibrator.half_width(out["energy"], 0.9, mondrian=True, spread=out["energy_std"])
    assert out["energy_uncertainty"][0] == pytest.approx(raw[0] * out["domain_score"][0] ** 2)
    assert out["energy_uncertainty"][0] > raw[0]
    with warnings.catch_warnings():  # one warning per calculator, not one per call
        warnings.simplefilter("error", OutsideDomainWarning)
        collapsed.calc = calc
        assert collapsed.calc.get_property("in_domain", collapsed) is False
    assert {"in_domain", "domain_score"} <= set(calc.implemented_properties)


def test_domain_file_is_listed_hashed_and_checked(tiny_krr_dir: Path, tmp_path: Path) -> None:
    import shutil

    card = json.loads((tiny_krr_dir / "card.json").read_text())
    assert DOMAIN_NAME in card["files"] and card["domain"]["checks"][0] == "shortest_pair"
    copy = tmp_path / "m"
    shutil.copytree(tiny_krr_dir, copy)
    loaded = load_model(copy).domain
    assert loaded.limits == pytest.approx(load_model(tiny_krr_dir).domain.limits)
    with np.load(copy / DOMAIN_NAME) as data:
        arrays = dict(data)
    arrays["limits"] = arrays["limits"] * 2
    np.savez(copy / DOMAIN_NAME, **arrays)
    with pytest.raises(ValueError, match="domain.npz"):
        load_model(copy)
    (copy / DOMAIN_NAME).unlink()
    with pytest.raises(ValueError, match="domain.npz"):
        load_model(copy)


def test_attach_domain_needs_two_structures(tiny_krr_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least two"):
        attach_domain(tiny_krr_dir, [au20_ground_state()])


@pytest.mark.parametrize("change", [-1, +1])
def test_a_cluster_of_another_size_is_outside_the_domain(shipped_model, change):
    """Au19 and Au21 were "in domain" with intervals narrower than Td's (red-team 13)."""
    from ase import Atom

    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.structures import au20_ground_state

    calc = KRRAu20(shipped_model("krr"))
    td = au20_ground_state()
    other = td.copy()
    if change < 0:
        del other[0]
    else:
        other.append(Atom("Au", td.positions[0] + [0.0, 0.0, 2.8]))
    with pytest.warns(UserWarning):
        out = calc.predict([td, other], ["in_domain", "domain_score", "energy_uncertainty"])
    assert out["in_domain"].tolist() == [True, False]
    assert out["domain_score"][1] == pytest.approx(2.0)
    assert out["energy_uncertainty"][1] > 3 * out["energy_uncertainty"][0]


def test_charges_and_magnetic_moments_are_not_ignored_silently(shipped_model):
    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.structures import au20_ground_state

    atoms = au20_ground_state()
    atoms.set_initial_magnetic_moments([0.5] + [0.0] * 19)
    atoms.calc = KRRAu20(shipped_model("krr"))
    with pytest.warns(UserWarning, match="charges or magnetic moments are ignored"):
        atoms.get_potential_energy()


def test_the_calibrated_interval_is_recovered_from_the_grown_one() -> None:
    from ase_au20.models.domain import inside_uncertainty, outside_uncertainty

    half, score = np.array([0.4, 0.4, 0.4]), np.array([0.5, 1.0, 3.0])
    grown = outside_uncertainty(half, score)
    np.testing.assert_allclose(grown, [0.4, 0.4, 3.6])
    np.testing.assert_allclose(inside_uncertainty(grown, score), half)
