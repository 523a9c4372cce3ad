"""SchNet network and SchNetModel: shapes, exact forces, invariances, files and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import model_files
import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from ase_au20.models.card import new_card
from ase_au20.models.domain import attach_domain
from ase_au20.models.schnet.config import SchNetArchitecture
from ase_au20.models.schnet.network import SchNet, SchNetModel, torch_threads
from ase_au20.structures import au20_ground_state

TINY = SchNetArchitecture(hidden=16, blocks=2, rbf=16, cutoff=5.0)


def tiny_model(members: int = 1, seed: int = 0, dtype: torch.dtype = torch.float64) -> SchNetModel:
    """Untrained tiny model on CPU with a full card so it can be saved."""
    torch.manual_seed(seed)
    model = SchNetModel(
        [SchNet(TINY) for _ in range(members)], -77.9, 0.2, device="cpu", dtype=dtype
    )
    model.card.update(
        new_card(
            "schnet",
            model.card["architecture"],
            {"seed": seed},
            {"rbf": TINY.rbf, "cutoff": TINY.cutoff},
            -1557.2,
            [4.0, 7.0],
            [1, 2, 3],
            "test",
        )
    )
    return model


@pytest.fixture()
def rattled() -> Atoms:
    atoms = au20_ground_state()
    atoms.rattle(0.05, seed=3)
    return atoms


def test_shapes_and_per_atom_sum_with_mixed_sizes(rattled: Atoms) -> None:
    small = rattled[:13]
    out = tiny_model(members=2).predict([rattled, small, rattled], forces=True)
    assert out["energy"].shape == (3,) and out["energy_std"].shape == (3,)
    assert out["energies"].shape == (3, 20) and out["forces"].shape == (3, 20, 3)
    assert np.isnan(out["energies"][1, 13:]).all() and np.isnan(out["forces"][1, 13:]).all()
    np.testing.assert_allclose(np.nansum(out["energies"], axis=1), out["energy"], atol=1e-9)
    assert out["energy"][0] == pytest.approx(out["energy"][2], abs=1e-12)
    assert abs(out["energy"][0] - out["energy"][1]) > 50.0  # 7 fewer atoms of ~-78 eV


def test_forces_match_central_differences_in_float64(rattled: Atoms) -> None:
    model = tiny_model()
    forces = model.predict([rattled], forces=True)["forces"][0]
    h, numeric = 1e-3, np.zeros((len(rattled), 3))
    for i in range(len(rattled)):
        for k in range(3):
            plus, minus = rattled.positions.copy(), rattled.positions.copy()
            plus[i, k] += h
            minus[i, k] -= h
            e = model.predict([plus, minus])["energy"]
            numeric[i, k] = -(e[0] - e[1]) / (2 * h)
    assert np.abs(forces).max() > 1e-3  # a non-trivial check
    assert np.abs(forces - numeric).max() < 1e-6


def test_rotation_translation_permutation_invariance(rattled: Atoms) -> None:
    model = tiny_model()
    rot = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    perm = np.random.default_rng(0).permutation(len(rattled))
    moved = rattled.positions[perm] @ rot.T + np.array([1.0, -2.0, 0.5])
    ref, new = (model.predict([p], forces=True) for p in (rattled.positions, moved))
    assert new["energy"][0] == pytest.approx(ref["energy"][0], abs=1e-9)
    np.testing.assert_allclose(new["energies"][0], ref["energies"][0][perm], atol=1e-9)
    np.testing.assert_allclose(new["forces"][0], ref["forces"][0][perm] @ rot.T, atol=1e-9)


def test_ensemble_energy_is_member_mean_and_std_is_their_spread(rattled: Atoms) -> None:
    ensemble = tiny_model(members=3)
    singles = [
        SchNetModel([net], -77.9, 0.2, device="cpu", dtype=torch.float64)
        for net in ensemble.networks
    ]
    energies = np.array([m.predict([rattled])["energy"][0] for m in singles])
    out = ensemble.predict([rattled])
    assert out["energy"][0] == pytest.approx(energies.mean(), abs=1e-9)
    assert out["energy_std"][0] == pytest.approx(energies.std(ddof=1), abs=1e-9)
    assert "energy_std" not in singles[0].predict([rattled])


def test_energy_then_forces_calls_share_the_pair_cache(rattled: Atoms) -> None:
    model = tiny_model(dtype=torch.float32)
    energy = model.predict([rattled])["energy"]  # inference mode first
    out = model.predict([rattled], forces=True)
    assert out["energy"][0] == pytest.approx(energy[0], abs=1e-3)
    assert np.isfinite(out["forces"]).all()


def test_tabulated_filters_match_exact_ones(rattled: Atoms) -> None:
    torch.manual_seed(1)
    net = SchNet(TINY).double()
    pos = torch.as_tensor(np.stack([rattled.positions, rattled.positions[::-1]]))
    with torch.no_grad():
        exact = net(pos)
        table = net(pos, table_spacing=0.005)
    assert torch.allclose(exact, table, atol=1e-6)
    assert not torch.equal(exact, table)  # it really is a different code path


def test_save_load_round_trip(tmp_path: Path, rattled: Atoms) -> None:
    model = tiny_model(members=2)
    model.save(tmp_path / "m")
    other = rattled.copy()
    other.rattle(0.05, seed=9)
    attach_domain(tmp_path / "m", [rattled, other])
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "card.json",
        "domain.npz",
        "member_0.pt",
        "member_1.pt",
    ]
    loaded = SchNetModel.load(tmp_path / "m", device="cpu", dtype=torch.float64)
    a, b = model.predict([rattled], forces=True), loaded.predict([rattled], forces=True)
    for key in ("energy", "energies", "forces", "energy_std"):
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.card["target_scaling"] == {"atom_mean": -77.9, "atom_std": 0.2}


def test_save_needs_a_complete_card(tmp_path: Path) -> None:
    bare = SchNetModel([SchNet(TINY)], -77.9, 0.2, device="cpu")
    with pytest.raises(ValueError, match="new_card"):
        bare.save(tmp_path / "m")


def test_card_that_does_not_match_weights_is_a_clear_error(tmp_path: Path) -> None:
    directory = tiny_model().save(tmp_path / "m")
    card = model_files.read(directory)
    card["architecture"]["hidden"] = 32
    model_files.reseal(directory, card)
    with pytest.raises(ValueError, match=r"member_0\.pt: weights do not match"):
        SchNetModel.load(directory)


def test_truncated_or_missing_weights_are_clear_errors(tmp_path: Path) -> None:
    directory = tiny_model(members=2).save(tmp_path / "m")
    member = directory / "member_1.pt"
    member.write_bytes(member.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"member_1\.pt"):
        SchNetModel.load(directory)
    member.unlink()
    with pytest.raises(ValueError, match=r"member_1\.pt: missing"):
        SchNetModel.load(directory)


def test_corrupt_file_without_checksum_is_a_clear_error(tmp_path: Path) -> None:
    directory = tiny_model().save(tmp_path / "m")
    (directory / "member_0.pt").write_bytes(b"not a torch file")
    model_files.reseal(directory, model_files.read(directory), rehash=("member_0.pt",))
    with pytest.raises(ValueError, match=r"member_0\.pt: cannot read weights"):
        SchNetModel.load(directory)


def test_wrong_model_type_and_bad_input(tmp_path: Path) -> None:
    directory = tiny_model().save(tmp_path / "m")
    card = json.loads((directory / "card.json").read_text())
    card["model_type"] = "krr"
    (directory / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="not 'schnet'"):
        SchNetModel.load(directory)
    model = tiny_model()
    with pytest.raises(ValueError, match="at least one structure"):
        model.predict([])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        model.predict([np.zeros((4, 2))])
    with pytest.raises(ValueError, match="positive integer"):
        SchNetArchitecture(hidden=0)


def test_chunks_on_parallel_threads_give_the_serial_results_in_order(rattled: Atoms) -> None:
    rng = np.random.default_rng(1)
    structures = [rattled[: 20 - (k % 3)] for k in range(23)]  # three sizes, ragged chunks
    for atoms in structures:
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    model = tiny_model(members=2)
    with torch_threads(1):
        serial = model.predict(structures, forces=True, batch_size=4)
    with torch_threads(3):
        threaded = model.predict(structures, forces=True, batch_size=4)
        assert torch.get_num_threads() == 3  # the worker threads leave the caller's setting
    for key in ("energy", "energies", "forces", "energy_std"):
        np.testing.assert_array_equal(threaded[key], serial[key])
    single = [model.predict([atoms])["energy"][0] for atoms in structures[:4]]
    np.testing.assert_allclose(threaded["energy"][:4], single, rtol=0, atol=1e-9)


def test_frozen_filter_table_gives_consistent_energies_and_exact_forces(rattled: Atoms) -> None:
    torch.manual_seed(0)
    nets = [SchNet(TINY)]
    exact = SchNetModel(nets, -77.9, 0.2, device="cpu", dtype=torch.float64)
    tabled = SchNetModel(
        nets, -77.9, 0.2, card={"hyperparameters": {"table_spacing": 0.01}}, dtype=torch.float64
    )
    a, b = exact.predict([rattled], forces=True), tabled.predict([rattled], forces=True)
    assert tabled.table_spacing == 0.01 and exact.table_spacing is None
    assert 0 < abs(a["energy"][0] - b["energy"][0]) < 1e-4
    assert tabled.predict([rattled])["energy"][0] == pytest.approx(b["energy"][0], abs=1e-10)
    h, forces = 1e-4, b["forces"][0]
    for i, k in ((0, 0), (7, 1), (19, 2)):
        plus, minus = rattled.positions.copy(), rattled.positions.copy()
        plus[i, k] += h
        minus[i, k] -= h
        e = tabled.predict([plus, minus])["energy"]
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(forces[i, k], abs=1e-6)


def test_repulsion_prior_adds_k_r_minus_d_cubed_below_its_radius_only() -> None:
    torch.manual_seed(0)
    plain = SchNet(TINY)
    repulsive = SchNet(
        SchNetArchitecture(
            **{**TINY.__dict__, "repulsion_radius": 2.2, "repulsion_strength": 100.0}
        )
    )
    repulsive.load_state_dict(plain.state_dict())  # the prior has no weights
    models = [
        SchNetModel([net], -77.9, 0.2, device="cpu", dtype=torch.float64)
        for net in (plain, repulsive)
    ]
    dimer = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    far = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.3]])
    (a, b) = (m.predict([dimer, far], forces=True) for m in models)
    assert b["energy"][0] - a["energy"][0] == pytest.approx(100.0 * 0.2**3, rel=1e-9)  # 0.8 eV
    np.testing.assert_allclose(b["energies"][0] - a["energies"][0], [0.4, 0.4], rtol=1e-9)
    assert b["forces"][0][1, 2] - a["forces"][0][1, 2] == pytest.approx(3 * 100.0 * 0.2**2)
    assert b["energy"][1] == pytest.approx(a["energy"][1], abs=1e-12)  # zero above 2.2 Å
    with pytest.raises(ValueError, match="below the cutoff"):
        SchNetArchitecture(cutoff=5.0, repulsion_radius=5.0)
    old_card = {k: v for k, v in TINY.__dict__.items() if not k.startswith("repulsion")}
    assert SchNetArchitecture.from_dict(old_card).repulsion_radius == 0.0  # older cards load
