"""ASE plugin registration and lazy imports: listing our calculators costs no torch/dscribe."""

from __future__ import annotations

import json
import subprocess
import sys

from ase._4.plugins import PluginCollection

HEAVY = ("torch", "dscribe")


def _modules_after(code: str) -> set[str]:
    """Top-level module names imported by ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_package_does_not_load_torch_or_dscribe() -> None:
    loaded = _modules_after("import ase_au20")
    assert "ase_au20" in loaded
    assert not loaded & set(HEAVY)


def test_calculator_classes_import_without_torch() -> None:
    loaded = _modules_after("from ase_au20 import SchNetAu20, KRRAu20")
    assert "ase_au20.calculators.schnet" in loaded
    assert "ase_au20.calculators.krr" in loaded
    assert not loaded & set(HEAVY)


def test_plugin_collection_lists_every_calculator() -> None:
    from ase_au20.calculators.dftb import DFTBAu20
    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.calculators.schnet import SchNetAu20

    calculators = PluginCollection.from_entry_points().calculators
    ours = {p.name: p for p in calculators if p.package == "ase_au20"}
    assert set(ours) == {
        "schnet_au20",
        "krr_au20",
        "committee_au20",
        "xtb_delta_au20",
        "dftb_au20",
    }
    assert ours["schnet_au20"].implementation is SchNetAu20
    assert ours["krr_au20"].implementation is KRRAu20
    assert ours["dftb_au20"].implementation is DFTBAu20
    assert "Fihey" in ours["dftb_au20"].citation  # the tables' rights holders require it
    assert ours["krr_au20"].module.__name__ == "ase_au20.calculators.plugin"


def test_collecting_plugins_does_not_load_torch() -> None:
    loaded = _modules_after("from ase._4.plugins import plugins; plugins.calculators")
    assert "ase_au20.calculators.plugin" in loaded
    assert not loaded & set(HEAVY)


def test_ase_info_plugins_shows_package() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ase", "info", "--plugins"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    section = out[out.index("ase_au20 ") :]
    assert "CalculatorPlugin" in section
    assert "schnet_au20" in section and "krr_au20" in section


def test_get_calculator_class_finds_every_model_type_by_its_plugin_name() -> None:
    from ase.calculators.calculator import get_calculator_class

    import ase_au20.calculators  # noqa: F401  (registers the plugin names)
    from ase_au20.models.registry import MODELS

    for entry in MODELS.values():
        factory = get_calculator_class(entry.plugin_name)
        assert factory.__name__ == entry.calculator.split(":")[1]


def test_a_db_row_names_its_calculator_so_ase_can_rebuild_it(tmp_path) -> None:
    import pytest
    from ase.calculators.calculator import get_calculator_class
    from ase.db import connect

    from ase_au20 import KRRAu20, au20_ground_state

    atoms = au20_ground_state()
    atoms.calc = KRRAu20()
    energy = atoms.get_potential_energy()
    db = connect(tmp_path / "rows.db")
    row = db.get(id=db.write(atoms))
    assert row.calculator == "krr_au20"  # the plugin name, not "krrau20"
    rebuilt = get_calculator_class(row.calculator)(**row.calculator_parameters)
    assert isinstance(rebuilt, KRRAu20)
    assert rebuilt.get_potential_energy(row.toatoms()) == pytest.approx(energy, abs=1e-9)
    other_card = {**row.calculator_parameters, "model_card_sha256": "f" * 64}
    with pytest.warns(UserWarning, match="pass model=DIR of that model"):
        get_calculator_class(row.calculator)(**other_card)
