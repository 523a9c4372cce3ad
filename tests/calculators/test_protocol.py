"""Any model of the protocol behind one calculator; the registry every consumer reads;
one calculator shared by threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from ase._4.plugins import PluginCollection

from ase_au20.calculators.base import SPREAD, Au20Calculator
from ase_au20.calculators.factory import CALCULATOR_NAMES, make_calculator
from ase_au20.models.card import summarise_card
from ase_au20.models.domain import Domain
from ase_au20.models.protocol import Model
from ase_au20.models.registry import MODELS, calculator_class, model_class
from ase_au20.structures import au20_ground_state


def _thermal_copies(n: int = 6) -> list:
    copies = []
    for seed in range(n):
        atoms = au20_ground_state()
        atoms.rattle(0.08, seed=seed)
        copies.append(atoms)
    return copies


PAIR_DOMAIN = Domain.fit(_thermal_copies())


class PairModel:
    """A toy model of the protocol: E = Σ_pairs (r − 2.9)², no card file."""

    has_spread = False

    def __init__(self) -> None:
        self.card = {"model_type": "pair", "conformal": None, "energy_reference": 0.0}
        self.domain = PAIR_DOMAIN

    def predict(self, structures, forces=False):
        energies, all_forces = [], []
        for atoms in structures:
            diff = atoms.positions[:, None] - atoms.positions[None]
            dist = np.linalg.norm(diff, axis=-1) + np.eye(len(atoms))
            term = np.triu((dist - 2.9) ** 2, 1)
            energies.append(term.sum(axis=1) / 2 + term.sum(axis=0) / 2)
            grad = 2 * (dist - 2.9) / dist * (1 - np.eye(len(atoms)))
            all_forces.append(-(grad[..., None] * diff).sum(axis=1))
        out = {"energy": np.array([e.sum() for e in energies]), "energies": np.stack(energies)}
        if forces:
            out["forces"] = np.stack(all_forces)
        return out

    def save(self, directory):
        raise NotImplementedError("a toy")

    @classmethod
    def load(cls, directory, **options):
        return cls()


def test_a_model_of_the_protocol_needs_no_calculator_of_its_own() -> None:
    assert isinstance(PairModel(), Model)
    atoms = au20_ground_state()
    atoms.rattle(0.05, seed=1)
    with pytest.warns(UserWarning, match="no conformal calibration"):
        atoms.calc = Au20Calculator(PairModel())
        energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    moved = atoms.copy()
    moved.positions[4, 1] += 1e-5
    moved.calc = Au20Calculator(PairModel())
    with pytest.warns(UserWarning):
        numeric = -(moved.get_potential_energy() - energy) / 1e-5
    assert forces[4, 1] == pytest.approx(numeric, abs=1e-3)


def test_objects_outside_the_protocol_are_refused() -> None:
    with pytest.raises(TypeError, match="does not follow the model protocol"):
        Au20Calculator(object())
    with pytest.raises(ValueError, match="needs a model"):
        Au20Calculator()


def test_every_registered_model_has_a_calculator_plugin_and_a_cli_name() -> None:
    plugins = {p.name: p for p in PluginCollection.from_entry_points().calculators}
    for name, entry in MODELS.items():
        calculator = calculator_class(name)
        assert issubclass(calculator, Au20Calculator)
        assert calculator.default_model == name
        assert plugins[entry.plugin_name].implementation is calculator
        assert name in CALCULATOR_NAMES
        assert callable(model_class(name).load)


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_models_load_by_name_through_make_calculator(name, shipped_model) -> None:
    shipped_model(name)
    calc = make_calculator(name, device="cpu")
    assert isinstance(calc, calculator_class(name))
    assert isinstance(calc.model, Model)
    atoms = au20_ground_state()
    atoms.calc = calc
    assert -1560 < atoms.get_potential_energy() < -1550
    assert (SPREAD in calc.implemented_properties) == calc.model.has_spread
    assert calc.name == MODELS[name].plugin_name  # a db row's calculator column
    by_plugin_name = make_calculator(MODELS[name].plugin_name.upper(), device="cpu")
    assert by_plugin_name.card["sha256"] == calc.card["sha256"]


def test_a_calculator_of_one_type_refuses_a_model_of_another(tiny_schnet_dir) -> None:
    from ase_au20.calculators.krr import KRRAu20

    with pytest.raises(ValueError, match="KRRAu20 takes krr models, not a schnet model"):
        KRRAu20(model=tiny_schnet_dir)
    assert (
        Au20Calculator(tiny_schnet_dir, load_options={"device": "cpu"}).card["model_type"]
        == "schnet"
    )


def _structures(n: int) -> list:
    out = []
    for seed in range(n):
        atoms = au20_ground_state()
        atoms.positions += np.random.default_rng(seed).normal(0.0, 0.08, atoms.positions.shape)
        out.append(atoms)
    return out


def test_one_calculator_shared_by_threads_gives_the_serial_results(make_calc) -> None:
    structures = _structures(12)
    serial_calc = make_calc()
    serial = []
    for atoms in structures:
        serial.append(
            (serial_calc.get_property("energy", atoms), serial_calc.get_property("forces", atoms))
        )
    shared = make_calc()
    results: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for rep in range(6):
                for k in range(worker, len(structures) + worker):
                    k %= len(structures)
                    atoms = structures[k].copy()
                    atoms.calc = shared
                    results[(worker, rep * 100 + k)] = (
                        atoms.get_potential_energy(),
                        atoms.get_forces(),
                    )
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, key), (energy, forces) in results.items():
        want_e, want_f = serial[key % 100]
        assert energy == pytest.approx(want_e, abs=1e-9)
        np.testing.assert_allclose(forces, want_f, atol=1e-9)


def test_calc_takes_module_factory(tmp_path) -> None:
    from ase.calculators.emt import EMT
    from click.testing import CliRunner

    from ase_au20.cli import main

    assert isinstance(make_calculator("ase.calculators.emt:EMT"), EMT)
    with pytest.raises(ValueError, match="cannot import 'no_such_module'"):
        make_calculator("no_such_module:thing")
    with pytest.raises(ValueError, match="has no attribute 'NoSuch'"):
        make_calculator("ase.calculators.emt:NoSuch")
    with pytest.raises(ValueError, match="returned Atoms, not an ASE calculator"):
        make_calculator("ase_au20.structures:au20_ground_state")
    out = tmp_path / "relax"
    result = CliRunner().invoke(
        main, ["relax", "--calc", "ase.calculators.emt:EMT", "--out", str(out), "--fmax", "1.0"]
    )
    assert result.exit_code == 0, result.output
    assert any(out.glob("*.h5"))


def test_describe_and_isomer_set_are_readable(tiny_krr_dir, synthetic_db) -> None:
    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.database import load_rows

    calc = KRRAu20(model=tiny_krr_dir)
    reference = calc.card["energy_reference"]
    assert f"energy reference: {reference!r} eV" in summarise_card(calc.card, 0.9, True)
    text = repr(load_rows(synthetic_db))
    assert text.startswith("IsomerSet(44 isomers: ") and len(text) < 200
