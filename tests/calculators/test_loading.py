"""Building calculators: model folders, loaded models, shipped defaults and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import model_files
import numpy as np
import pytest

import ase_au20.models as models_module
from ase_au20.calculators.krr import KRRAu20
from ase_au20.calculators.schnet import SchNetAu20


def test_missing_shipped_model_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(models_module, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ValueError, match="no shipped krr model.*make reproduce"):
        KRRAu20()
    with pytest.raises(ValueError, match="no shipped schnet model.*make reproduce"):
        SchNetAu20()


def test_wrong_folder_or_model_type_is_a_value_error(tmp_path, tiny_schnet_dir) -> None:
    with pytest.raises(ValueError, match="card"):
        KRRAu20(model=tmp_path)
    with pytest.raises(ValueError, match="krr"):
        KRRAu20(model=tiny_schnet_dir)


def test_schnet_dtype_is_checked_and_float64_agrees(tiny_schnet_dir, rattled_au20) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        SchNetAu20(model=tiny_schnet_dir, dtype="float16")
    e32 = SchNetAu20(model=tiny_schnet_dir, device="cpu").get_property("energy", rattled_au20)
    calc64 = SchNetAu20(model=tiny_schnet_dir, device="cpu", dtype="float64")
    assert str(calc64.model.dtype) == "torch.float64"
    assert calc64.get_property("energy", rattled_au20) == pytest.approx(e32, abs=1e-3)


def test_loaded_model_objects_are_accepted(tiny_krr_dir, tiny_schnet_dir, rattled_au20) -> None:
    from ase_au20.models.krr.model import KRRModel
    from ase_au20.models.schnet.network import SchNetModel

    for cls, model_cls, path in (
        (KRRAu20, KRRModel, tiny_krr_dir),
        (SchNetAu20, SchNetModel, tiny_schnet_dir),
    ):
        from_dir = cls(model=path).get_property("energy", rattled_au20)
        from_obj = cls(model=model_cls.load(path)).get_property("energy", rattled_au20)
        assert from_obj == pytest.approx(from_dir, abs=1e-9)


def test_ensemble_spread_reaches_the_calculator(tiny_schnet_dir, rattled_au20) -> None:
    calc = SchNetAu20(model=tiny_schnet_dir, device="cpu")
    assert calc.card["architecture"]["ensemble_size"] == 2
    raw = calc._model_predict([rattled_au20], forces=False)
    assert raw["spread"].shape == (1,) and raw["spread"][0] > 0


def test_an_ensemble_gives_its_members_energies(
    tiny_schnet_dir, tiny_krr_dir, rattled_au20
) -> None:
    calc = SchNetAu20(model=tiny_schnet_dir, device="cpu")
    assert "member_energies" in calc.implemented_properties
    members = calc.get_property("member_energies", rattled_au20)  # one structure: NumPy path
    assert members.shape == (2,)
    assert calc.get_property("energy", rattled_au20) == pytest.approx(members.mean(), abs=1e-9)
    assert calc.get_property("energy_std", rattled_au20) == pytest.approx(
        members.std(ddof=1), abs=1e-9
    )
    batch = calc.predict([rattled_au20, rattled_au20], ("energy", "member_energies"))
    assert batch["member_energies"].shape == (2, 2)  # two structures: torch path
    np.testing.assert_allclose(batch["member_energies"][0], members, atol=1e-4)
    assert "member_energies" not in KRRAu20(model=tiny_krr_dir).implemented_properties


def test_uncalibrated_card_gives_nan_uncertainty_with_one_warning(
    tiny_krr_dir: Path, tmp_path: Path, rattled_au20
) -> None:
    folder = tmp_path / "uncalibrated"
    shutil.copytree(tiny_krr_dir, folder)
    card = model_files.read(folder)
    card["conformal"] = None
    model_files.reseal(folder, card)
    calc = KRRAu20(model=folder)
    with pytest.warns(UserWarning, match="no conformal calibration"):
        half = calc.get_property("energy_uncertainty", rattled_au20)
    assert np.isnan(half)
    assert np.isfinite(calc.get_property("energy", rattled_au20))
