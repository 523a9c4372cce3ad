"""The ASE contract of both calculators: results, caching, batching, bad input, warnings."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from ase import Atoms

from ase_au20.calculators.base import (
    MEMBERS,
    PROPERTIES,
    SPREAD,
    OutsideDomainWarning,
    summarise_card,
)


def _spy_on_model(calc) -> list[bool]:
    """Record the ``forces`` flag of every call the calculator makes to its model."""
    calls: list[bool] = []
    original = calc.model.predict

    def predict(structures, forces=False, **kwargs):
        calls.append(bool(forces))
        return original(structures, forces=forces, **kwargs)

    calc.model.predict = predict
    return calls


def test_every_implemented_property_through_get_property(make_calc, rattled_au20) -> None:
    calc = make_calc()
    assert set(calc.implemented_properties) - {SPREAD, MEMBERS} == set(PROPERTIES)
    atoms = rattled_au20
    values = {p: calc.get_property(p, atoms) for p in calc.implemented_properties}
    if SPREAD in values:  # the tiny SchNet is a two-network ensemble
        assert np.isfinite(values[SPREAD]) and values[SPREAD] > 0
    if MEMBERS in values:
        assert values[MEMBERS].shape == (2,) and values[MEMBERS].mean() == values["energy"]
    energy = values["energy"]
    assert isinstance(energy, float) and np.isfinite(energy)
    assert values["free_energy"] == energy
    assert values["forces"].shape == (20, 3) and np.all(np.isfinite(values["forces"]))
    assert values["energies"].shape == (20,)
    half = values["energy_uncertainty"]
    assert np.isfinite(half) and half > 0
    np.testing.assert_allclose(values["energy_interval"], [energy - half, energy + half])
    # total energy on the label scale: close to the card's reference (lowest training label)
    assert abs(energy - calc.card["energy_reference"]) < 20.0
    atoms.calc = calc
    assert atoms.get_potential_energy() == energy


def test_energies_sum_to_energy(make_calc, rattled_au20) -> None:
    calc = make_calc()
    rattled_au20.calc = calc
    assert (
        abs(rattled_au20.get_potential_energies().sum() - rattled_au20.get_potential_energy())
        < 1e-6
    )


def test_energy_only_call_skips_forces_and_forces_call_is_one_pass(make_calc, rattled_au20):
    calc = make_calc()
    calls = _spy_on_model(calc)
    rattled_au20.calc = calc
    rattled_au20.get_potential_energy()
    assert calls == [False]
    assert "forces" not in calc.results
    moved = rattled_au20.copy()
    moved.positions[0, 0] += 0.01
    moved.calc = calc
    moved.get_forces()
    assert calls == [False, True]
    moved.get_potential_energy()
    calc.get_property("energy_interval", moved)
    assert calls == [False, True], "energy must come from the forces pass"


def test_repeated_calls_are_cached(make_calc, rattled_au20) -> None:
    calc = make_calc()
    calls = _spy_on_model(calc)
    rattled_au20.calc = calc
    e1, f1 = rattled_au20.get_potential_energy(), rattled_au20.get_forces()
    e2, f2 = rattled_au20.get_potential_energy(), rattled_au20.get_forces()
    assert e1 == e2 and np.array_equal(f1, f2)
    assert calls == [False, True]
    rattled_au20.positions[3] += 0.02
    assert rattled_au20.get_potential_energy() != e1
    assert calls == [False, True, False]


def test_predict_matches_single_calls(make_calc) -> None:
    from ase_au20.structures import au20_ground_state

    rng = np.random.default_rng(3)
    structures = []
    for _ in range(4):
        atoms = au20_ground_state()
        atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
        structures.append(atoms)
    calc = make_calc()
    before = [a.copy() for a in structures]
    batch = calc.predict(structures, properties=PROPERTIES)
    for atoms, original in zip(structures, before, strict=True):  # inputs are only read
        assert atoms == original and atoms.calc is None
    assert batch["energy"].shape == (4,)
    assert batch["forces"].shape == (4, 20, 3)
    assert batch["energies"].shape == (4, 20)
    assert batch["energy_interval"].shape == (4, 2)
    single = make_calc()
    for i, atoms in enumerate(structures):
        for prop in PROPERTIES:
            np.testing.assert_allclose(
                batch[prop][i], single.get_property(prop, atoms), rtol=1e-6, atol=1e-5
            )
    empty = calc.predict([], properties=PROPERTIES)
    assert empty["energy"].shape == (0,) and empty["forces"].shape == (0, 0, 3)
    energy_only = calc.predict(structures)
    assert set(energy_only) == {"energy"}
    np.testing.assert_allclose(energy_only["energy"], batch["energy"], rtol=1e-9)


def test_predict_rejects_unknown_property_and_names_bad_structure(make_calc) -> None:
    from ase_au20.structures import au20_ground_state

    calc = make_calc()
    good = au20_ground_state()
    with pytest.raises(ValueError, match="unknown properties.*stress"):
        calc.predict([good], properties=("energy", "stress"))
    bad = good.copy()
    bad.positions[5] = np.nan
    with pytest.raises(ValueError, match=r"structure 1: non-finite \(NaN/inf\) positions"):
        calc.predict([good, bad])


def _bad_structure(kind: str) -> Atoms:
    """The Td pyramid broken in one way."""
    from ase_au20.structures import au20_ground_state

    atoms = au20_ground_state()
    if kind == "empty":
        return Atoms()
    if kind == "non-Au":
        atoms.symbols[4] = "Ag"
    elif kind == "inf":
        atoms.positions[2, 1] = np.inf
    elif kind == "nan":
        atoms.positions[7, 0] = np.nan
    elif kind == "too-close":
        atoms.positions[1] = atoms.positions[0] + [1.2, 0.0, 0.0]
    return atoms


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "empty Atoms"),
        ("non-Au", "only Au atoms are supported, found: Ag"),
        ("inf", r"non-finite \(NaN/inf\) positions for atom\(s\) \[2\]"),
        ("nan", r"non-finite \(NaN/inf\) positions for atom\(s\) \[7\]"),
        ("too-close", r"closer than 1.5 Å \(closest pair 1.200 Å\)"),
    ],
)
def test_bad_input_raises_value_error(make_calc, kind: str, message: str) -> None:
    atoms = _bad_structure(kind)
    atoms.calc = make_calc()
    with pytest.raises(ValueError, match=message):
        atoms.get_potential_energy()
    with pytest.raises(ValueError, match=message):
        atoms.calc.predict([atoms], properties=("energy", "forces"))


def test_periodic_cell_warns_once_and_is_treated_as_isolated(make_calc, rattled_au20) -> None:
    calc = make_calc()
    isolated = calc.get_property("energy", rattled_au20)
    periodic = rattled_au20.copy()
    periodic.set_cell([9.0, 9.0, 9.0])  # smaller than the cluster: images would overlap
    periodic.pbc = True
    periodic.calc = calc
    with pytest.warns(OutsideDomainWarning, match="treated as an isolated cluster"):
        energy = periodic.get_potential_energy()
    assert energy == pytest.approx(isolated, abs=1e-9)
    periodic.positions[0] += 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        periodic.get_potential_energy()


def test_size_other_than_20_warns_but_works(make_calc, rattled_au20) -> None:
    calc = make_calc()
    small = rattled_au20[:19]
    small.calc = calc
    with pytest.warns(OutsideDomainWarning, match="19 atoms is outside the training domain"):
        energy = small.get_potential_energy()
    assert np.isfinite(energy)
    assert small.get_forces().shape == (19, 3)


def test_far_atom_beyond_cutoff_gets_defined_energy_and_forces(make_calc, rattled_au20) -> None:
    atoms = rattled_au20.copy()
    atoms.positions[0] = [30.0, 0.0, 0.0]
    atoms.calc = make_calc()
    assert np.isfinite(atoms.get_potential_energy())
    forces = atoms.get_forces()
    assert np.all(np.isfinite(forces))
    np.testing.assert_allclose(forces[0], 0.0, atol=1e-8)


def test_confidence_changes_interval_and_clears_cache(make_calc, rattled_au20) -> None:
    calc = make_calc(confidence=0.8)
    rattled_au20.calc = calc
    narrow = rattled_au20.calc.get_property("energy_uncertainty", rattled_au20)
    calc.set(confidence=0.95)
    assert calc.results == {}
    wide = calc.get_property("energy_uncertainty", rattled_au20)
    assert wide > narrow
    with pytest.raises(ValueError, match="confidence must be between 0 and 1"):
        calc.set(confidence=1.5)
    with pytest.raises(ValueError, match="outside"):
        make_calc(confidence=0.999)


def test_mondrian_and_global_intervals_come_from_the_card(make_calc, rattled_au20) -> None:
    from ase_au20.models.conformal import bucket_of

    for mondrian in (True, False):
        calc = make_calc(confidence=0.9, mondrian=mondrian)
        energy = calc.get_property("energy", rattled_au20)
        conformal = calc.card["conformal"]
        if mondrian:
            bucket = bucket_of(
                np.array([energy - conformal["energy_reference"]]), conformal["bucket_edges"]
            )[0]
            expected = conformal["mondrian"][bucket]["quantiles"]["0.9"]
        else:
            expected = conformal["global"]["0.9"]
        if conformal["normalised"]:  # scores were divided by the spread (plus its offset)
            spread = calc.get_property(SPREAD, rattled_au20)
            expected *= spread + conformal.get("spread_offset", 0.0)
        score = calc.get_property("domain_score", rattled_au20)  # widened outside the domain
        expected *= max(1.0, score) ** 2
        assert calc.get_property("energy_uncertainty", rattled_au20) == pytest.approx(expected)


def test_describe_prints_card_summary(make_calc, capsys) -> None:
    calc = make_calc()
    assert calc.describe() is None  # a REPL must not echo the summary a second time
    text = capsys.readouterr().out
    assert text.strip() == summarise_card(calc.card, calc.confidence, calc.mondrian)
    buffer = io.StringIO()
    calc.describe(file=buffer)
    assert buffer.getvalue() == text and capsys.readouterr().out == ""
    assert f"ase-au20 model: {calc.card['model_type']}" in text
    assert "energy reference" in text and "confidence 0.9" in text
    assert calc.card["training_ids_sha256"][:16] in text


def test_calculator_pickles_after_use_and_gives_the_same_results(make_calc, rattled_au20):
    # Search workers receive the calculator pickled; dscribe's SOAP and threadpoolctl hold
    # ctypes handles that the calculator must leave out and rebuild.
    import pickle

    calc = make_calc()
    atoms = rattled_au20.copy()
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    clone = pickle.loads(pickle.dumps(calc))
    copy = rattled_au20.copy()
    copy.calc = clone
    assert copy.get_potential_energy() == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(copy.get_forces(), forces, atol=1e-9)
