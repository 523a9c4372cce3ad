"""Model files are checked as a whole: every way a card or its weights can be wrong is
refused with its own clear message, also through the CLI (no traceback)."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import model_files
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ase_au20.cli import main
from ase_au20.models import load_model


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


def _edit(directory: Path, change) -> None:
    """Apply ``change(card)`` and write the card back without resealing (a hand edit)."""
    card = model_files.read(directory)
    change(card)
    (directory / "card.json").write_text(json.dumps(card))


HAND_EDITS = {
    "r_cut": lambda c: c["features"].update(r_cut=6.0),
    "zeta": lambda c: c["hyperparameters"].update(zeta=4),
    "files entry removed": lambda c: c.pop("files"),
    "metrics": lambda c: c["metrics"].update(test={"mae": 0.01}),
}


@pytest.mark.parametrize("edit", list(HAND_EDITS))
def test_hand_edited_card_is_refused(edit, tiny_krr_dir, tmp_path) -> None:
    directory = _copy(tiny_krr_dir, tmp_path)
    _edit(directory, HAND_EDITS[edit])
    with pytest.raises(ValueError, match="card was edited after the model was saved"):
        load_model(directory)


def test_edited_schnet_cutoff_and_table_spacing_are_refused(tiny_schnet_dir, tmp_path) -> None:
    directory = _copy(tiny_schnet_dir, tmp_path)
    _edit(directory, lambda c: c["architecture"].update(cutoff=6.0))
    with pytest.raises(ValueError, match="card was edited"):
        load_model(directory, device="cpu")
    card = model_files.read(directory)
    card["architecture"]["cutoff"] = 5.0
    card["hyperparameters"]["table_spacing"] = 0
    model_files.reseal(directory, card)  # even a consistent card cannot divide by zero
    with pytest.raises(ValueError, match="table_spacing must be a positive number"):
        load_model(directory, device="cpu")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(package_version="99.0.0"), "newer major version"),
        (lambda c: c.update(model_type="gaussian-process"), "unknown model_type"),
        (
            lambda c: c["conformal"]["global"].update({"0.9": -0.5}),
            "quantile -0.5 is negative",
        ),
        (
            lambda c: c["conformal"]["mondrian"]["mid"]["quantiles"].update({"0.95": 1e-6}),
            "decrease with the confidence level",
        ),
    ],
)
def test_consistent_but_wrong_cards_are_refused(change, message, tiny_krr_dir, tmp_path):
    directory = _copy(tiny_krr_dir, tmp_path)
    card = model_files.read(directory)
    change(card)
    (directory / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match=message):
        load_model(directory)


def test_non_finite_weights_are_refused_at_load(tiny_krr_dir, tiny_schnet_dir, tmp_path):
    krr = _copy(tiny_krr_dir, tmp_path / "k")
    with np.load(krr / "weights.npz") as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays["e0"] = np.array(math.nan)
    np.savez(krr / "weights.npz", **arrays)
    model_files.reseal(krr, model_files.read(krr), rehash=("weights.npz",))
    with pytest.raises(ValueError, match="'e0' is not finite"):
        load_model(krr)
    schnet = _copy(tiny_schnet_dir, tmp_path / "s")
    state = torch.load(schnet / "member_0.pt", weights_only=True)
    state["head2.bias"][0] = math.nan
    torch.save(state, schnet / "member_0.pt")
    model_files.reseal(schnet, model_files.read(schnet), rehash=("member_0.pt",))
    with pytest.raises(ValueError, match=r"non-finite \(NaN/inf\) weights in head2\.bias"):
        load_model(schnet, device="cpu", dtype="float64")  # float64: the torch networks
    with np.load(schnet / "frozen.npz") as data:  # float32 on the CPU: the frozen arrays
        arrays = {k: data[k].copy() for k in data.files}
    arrays["head2_b"][0] = math.inf
    np.savez(schnet / "frozen.npz", **arrays)
    model_files.reseal(schnet, model_files.read(schnet), rehash=("frozen.npz",))
    with pytest.raises(ValueError, match=r"frozen\.npz: non-finite \(NaN/inf\) values in head2_b"):
        load_model(schnet, device="cpu")


@pytest.mark.parametrize(
    "write",
    [
        lambda d: (d / "card.json").write_text("[1, 2, 3]"),
        lambda d: (d / "card.json").write_text("{not json"),
        lambda d: _edit(d, lambda c: c.update(package_version="99.0.0")),
        lambda d: _edit(d, lambda c: c["hyperparameters"].update(table_spacing=0)),
        lambda d: (d / "member_0.pt").write_bytes(b"garbage"),
    ],
)
def test_malformed_cards_give_one_line_through_the_cli(write, tiny_schnet_dir, tmp_path):
    directory = _copy(tiny_schnet_dir, tmp_path)
    write(directory)
    result = CliRunner().invoke(
        main, ["relax", "--calc", str(directory), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot load calculator")
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_names_the_torch_build(tiny_schnet_dir, tmp_path) -> None:
    from ase_au20.calculators.schnet import SchNetAu20

    with pytest.raises(
        ValueError, match=rf"torch {re.escape(torch.__version__)} is a CPU-only build"
    ):
        SchNetAu20(model=tiny_schnet_dir, device="cuda")
    assert str(SchNetAu20(model=tiny_schnet_dir, device="auto").model.device) == "cpu"
    result = CliRunner().invoke(
        main,
        ["relax", "--calc", str(tiny_schnet_dir), "--device", "cuda", "--out", str(tmp_path)],
    )
    assert result.exit_code == 1 and "CPU-only build" in result.output


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../x", ".."])
def test_a_card_listing_a_file_outside_its_folder_is_refused(tiny_krr_dir, tmp_path, name):
    """A resealed card naming a path outside the folder read and hashed it (red-team 12)."""
    krr = _copy(tiny_krr_dir, tmp_path / "k")
    card = model_files.read(krr)
    card["files"][name] = "0" * 64
    model_files.reseal(krr, card)
    with pytest.raises(ValueError, match="not a file of the model's folder"):
        load_model(krr)
