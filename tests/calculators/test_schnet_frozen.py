"""The frozen SchNet model: CPU inference from ``frozen.npz`` alone, equal to the torch model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import model_files
import numpy as np
import pytest

from ase_au20.models import load_model
from ase_au20.models.schnet.frozen import FrozenSchNetModel, runs_frozen
from ase_au20.models.schnet.network import SchNetModel
from ase_au20.structures import au20_ground_state


def _structures(n: int = 5) -> list:
    rng = np.random.default_rng(4)
    out = []
    for k in range(n):
        atoms = au20_ground_state()
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        if k == 1:
            atoms.positions *= 0.85  # the repulsion prior on
        out.append(atoms)
    return out


def test_cpu_float32_loads_the_frozen_model_and_predicts_as_the_torch_one(tiny_schnet_dir) -> None:
    frozen = load_model(tiny_schnet_dir, device="cpu")
    torch_model = SchNetModel.load(tiny_schnet_dir, device="cpu")
    assert isinstance(frozen, FrozenSchNetModel) and frozen.domain is not None
    assert frozen.ensemble_size == 2 and frozen.has_spread
    structures = _structures()
    ours, theirs = frozen.predict(structures, forces=True), torch_model.predict(structures, True)
    assert ours.keys() == theirs.keys()
    for key in ours:  # the same arrays through the same code
        np.testing.assert_array_equal(ours[key], theirs[key])
    exact = torch_model._evaluate_torch(np.stack([a.positions for a in structures]), True)
    h, grad = frozen.numpy_path(np.stack([a.positions for a in structures]), True)
    np.testing.assert_allclose(h, exact[0], rtol=0, atol=1e-5 * max(1.0, np.abs(h).max()))
    np.testing.assert_allclose(grad, exact[1], rtol=0, atol=1e-5 * max(1.0, np.abs(grad).max()))


def test_float64_and_cuda_load_the_torch_model(tiny_schnet_dir) -> None:
    assert isinstance(load_model(tiny_schnet_dir, device="cpu", dtype="float64"), SchNetModel)
    frozen = load_model(tiny_schnet_dir, device="cpu")
    assert frozen.to("cpu", "float32") is frozen
    assert isinstance(frozen.to("cpu", "float64"), SchNetModel)
    assert not runs_frozen("cuda", "float32") and not runs_frozen("cpu", "float64")
    assert runs_frozen("cpu", "float32")


def test_auto_without_an_nvidia_driver_decides_without_torch(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runs_frozen("auto", "float32")


def test_frozen_arrays_of_another_architecture_are_refused(tiny_schnet_dir, tmp_path) -> None:
    directory = tmp_path / "model"
    shutil.copytree(tiny_schnet_dir, directory)
    with np.load(directory / "frozen.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["tables"] = arrays["tables"][:, :, :1]  # one member where the card lists two
    arrays["embedding"] = arrays["embedding"][:1]
    np.savez(directory / "frozen.npz", **arrays)
    model_files.reseal(directory, model_files.read(directory), rehash=("frozen.npz",))
    with pytest.raises(ValueError, match=r"frozen\.npz holds .*'members': 1.*the card says"):
        load_model(directory, device="cpu")


def test_an_unlisted_frozen_file_is_not_used(tiny_schnet_dir, tmp_path) -> None:
    """A model saved before the frozen arrays existed (or without them) loads on torch."""
    directory = tmp_path / "model"
    shutil.copytree(tiny_schnet_dir, directory)
    card = model_files.read(directory)
    del card["files"]["frozen.npz"]
    (directory / "frozen.npz").unlink()
    model_files.reseal(directory, card)
    assert isinstance(load_model(directory, device="cpu"), SchNetModel)


def test_saving_the_frozen_model_copies_a_loadable_directory(tiny_schnet_dir, tmp_path) -> None:
    frozen = load_model(tiny_schnet_dir, device="cpu")
    copy = load_model(frozen.save(tmp_path / "copy"), device="cpu")
    structures = _structures(2)
    np.testing.assert_array_equal(
        copy.predict(structures)["energy"], frozen.predict(structures)["energy"]
    )


def test_the_shipped_calculators_run_on_the_cpu_without_torch() -> None:
    code = (
        "import sys, json; from ase_au20 import SchNetAu20, CommitteeAu20, au20_ground_state; "
        "atoms = au20_ground_state(); atoms.calc = SchNetAu20(device='cpu'); "
        "atoms.get_forces(); atoms.calc = CommitteeAu20(device='cpu'); atoms.get_forces(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "torch" not in json.loads(out.stdout.splitlines()[-1])


def test_the_shipped_frozen_arrays_are_the_shipped_networks() -> None:
    """``frozen.npz`` in the package is what the shipped state dicts freeze to.

    The filter tables are evaluated by torch in float32, whose kernels round differently on
    other CPUs (4.8e-7 at most between two x86 hosts); frozen arrays of other weights differ
    by orders of magnitude more."""
    from ase_au20.models.schnet.numpy_path import NumpySchNet

    shipped = Path(load_model("schnet", device="cpu").directory)
    rebuilt = NumpySchNet.from_networks(SchNetModel.load(shipped, device="cpu").networks)
    stored = NumpySchNet.load(shipped / "frozen.npz")
    for key, value in rebuilt.arrays.items():
        np.testing.assert_allclose(stored.arrays[key], value, rtol=1e-5, atol=2e-6, err_msg=key)
