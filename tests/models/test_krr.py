"""SOAP+KRR: exact forces, per-atom energies, the ζ=2 collapse, weighting, save/load errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import model_files
import numpy as np
import pytest
from ase import Atoms

from ase_au20.database import load_rows
from ase_au20.models.krr.kernels import average_gram, sparse_features
from ase_au20.models.krr.model import KRRModel, _power_pair
from ase_au20.models.krr.soap import SoapFeaturizer
from ase_au20.structures import au20_ground_state


@pytest.fixture(scope="module")
def train_set(synthetic_db: Path, tiny_soap):
    """Synthetic train+val isomers and their normalised tiny-SOAP vectors."""
    rows = load_rows(synthetic_db, ("train", "val"))
    return rows, SoapFeaturizer(tiny_soap).normalised_many(rows.atoms), tiny_soap


def _fit(train_set, **kwargs) -> KRRModel:
    rows, units, soap = train_set
    return KRRModel.fit(units, rows.energies, soap, lam=1e-4, **kwargs)


def _rattled(seed: int = 3) -> Atoms:
    atoms = au20_ground_state()
    atoms.rattle(0.05, seed=seed)
    return atoms


def _fd_forces(model: KRRModel, atoms: Atoms, h: float = 1e-3) -> np.ndarray:
    forces = np.zeros((len(atoms), 3))
    for a in range(len(atoms)):
        for x in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, x] += h
            minus.positions[a, x] -= h
            e = model.predict([plus, minus])["energy"]
            forces[a, x] = -(e[0] - e[1]) / (2 * h)
    return forces


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel": "average", "zeta": 2},
        {"kernel": "average", "zeta": 3},
        {"kernel": "rbf", "gamma": 5.0},
        {"kernel": "average", "zeta": 4, "n_sparse": 60},
    ],
    ids=["average-z2", "average-z3", "rbf", "sparse-z4"],
)
def test_forces_match_central_differences(train_set, kwargs) -> None:
    model = _fit(train_set, **kwargs)
    atoms = _rattled()
    out = model.predict([atoms], forces=True)
    assert out["forces"].shape == (1, 20, 3)
    fd = _fd_forces(model, atoms)
    assert np.abs(fd).max() > 0.05  # a rattled cluster has real forces to compare
    assert np.abs(out["forces"][0] - fd).max() <= 1e-3


@pytest.mark.parametrize("kwargs", [{"zeta": 2}, {"zeta": 4}, {"kernel": "rbf", "gamma": 5.0}])
def test_per_atom_energies_sum_to_energy_for_any_size(train_set, kwargs) -> None:
    model = _fit(train_set, **kwargs)
    small = au20_ground_state()[:7]
    single = Atoms("Au", positions=[[0.0, 0.0, 0.0]])
    out = model.predict([_rattled(), small, single], forces=True)
    assert out["energies"].shape == (3, 20)
    assert np.isfinite(out["energies"]).sum(axis=1).tolist() == [20, 7, 1]  # NaN-padded
    for total, parts, n in zip(out["energy"], out["energies"], (20, 7, 1), strict=True):
        assert abs(parts[:n].sum() - total) < 1e-6
    assert np.allclose(out["forces"][2, :1], 0.0, atol=1e-10)  # one atom feels no force


def test_zeta2_quadratic_form_equals_explicit_environment_sum(train_set) -> None:
    """E = mean_i p̂_iᵀ W p̂_i with W = Σ α_m mean_j p̂_j p̂_jᵀ is the average kernel at ζ=2."""
    rows, units, soap = train_set
    quad = _fit(train_set, zeta=2)
    coef = np.linalg.solve(  # recover α from W via the explicit kernel prediction
        average_gram(units, zetas=[2])[2] + 1e-4 * np.eye(len(units)),
        rows.energies / 20 - float(quad.arrays["e0"]),
    )
    explicit = KRRModel(
        soap,
        {"kernel": "average", "zeta": 2, "lambda": 1e-4},
        {
            "e0": quad.arrays["e0"],
            "environments": np.concatenate(units).astype(np.float32),
            "env_coef": np.repeat(coef / 20, 20),
        },
    )
    test = [_rattled(s) for s in range(3)]
    a, b = quad.predict(test, forces=True), explicit.predict(test, forces=True)
    assert np.allclose(a["energy"], b["energy"], atol=1e-4)
    assert np.allclose(a["forces"], b["forces"], atol=1e-4)


def test_sparse_on_all_environments_equals_the_full_solution(train_set) -> None:
    """Subset of regressors on every training environment spans the representer solution."""
    rows, units, _ = train_set
    full = _fit(train_set, zeta=3)
    sparse = _fit(train_set, zeta=3, n_sparse=10**6)
    assert sparse.hyperparameters["n_sparse"] == sum(len(u) for u in units)
    few = _fit(train_set, zeta=3, n_sparse=40)
    test = [_rattled(s) for s in range(3)]
    e_full, e_sparse = full.predict(test)["energy"], sparse.predict(test)["energy"]
    assert np.abs(e_full - e_sparse).max() < 1e-3
    assert np.abs(e_full - few.predict(test)["energy"]).max() > 1e-3  # 40 points do differ


def test_fit_reproduces_kernel_ridge_solution(train_set) -> None:
    rows, units, soap = train_set
    model = _fit(train_set, zeta=3)
    gram = average_gram(units, zetas=[3])[3]
    target = rows.energies / 20 - float(model.arrays["e0"])
    alpha = np.linalg.solve(gram + 1e-4 * np.eye(len(units)), target)
    # the model stores its environments in float32: predict with those on the right side
    stored = [u.astype(np.float32).astype(float) for u in units]
    cross = np.array([[((u @ q.T) ** 3).mean() for q in stored] for u in units])
    expected = 20 * (float(model.arrays["e0"]) + cross @ alpha)
    assert np.allclose(model.predict(rows.atoms)["energy"], expected, atol=1e-5)


def test_invariant_to_rotation_and_permutation(train_set) -> None:
    model = _fit(train_set, zeta=2)
    atoms = _rattled()
    moved = atoms[np.random.default_rng(0).permutation(20)]
    moved.rotate(37, "x")
    moved.rotate(-81, "z")
    moved.translate([1.0, -2.0, 0.5])
    e = model.predict([atoms, moved])["energy"]
    assert abs(e[0] - e[1]) < 1e-8


def test_outlier_downweighting_relaxes_the_fit_to_that_row(train_set) -> None:
    rows, units, soap = train_set
    weights = np.ones(len(units))
    weights[0] = 1e-3
    plain = KRRModel.fit(units, rows.energies, soap, lam=1e-2)
    weighted = KRRModel.fit(units, rows.energies, soap, lam=1e-2, sample_weight=weights)
    res = [
        abs(m.predict([rows.atoms[0]])["energy"][0] - rows.energies[0]) for m in (plain, weighted)
    ]
    assert res[1] > res[0]


def test_bad_arguments_are_value_errors(train_set) -> None:
    rows, units, soap = train_set
    with pytest.raises(ValueError, match="unknown kernel"):
        KRRModel.fit(units, rows.energies, soap, kernel="linear")
    with pytest.raises(ValueError, match="zeta must be a positive integer"):
        KRRModel.fit(units, rows.energies, soap, zeta=1.5)
    with pytest.raises(ValueError, match="structures for"):
        KRRModel.fit(units, rows.energies[:-1], soap)
    with pytest.raises(ValueError, match="empty Atoms"):
        _fit(train_set).predict([Atoms()])


def test_save_load_round_trip(tiny_krr, tmp_path: Path) -> None:
    loaded = KRRModel.load(tiny_krr.directory)
    atoms = _rattled()
    a = tiny_krr.model.predict([atoms], forces=True)
    b = loaded.predict([atoms], forces=True)
    assert np.array_equal(a["energy"], b["energy"])
    assert np.array_equal(a["forces"], b["forces"])
    assert loaded.card["features"]["n_features"] == 18  # n_max=3, l_max=2: 6 * 3
    assert loaded.card["hyperparameters"] == tiny_krr.model.hyperparameters


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_truncated_weights_are_a_clear_error(tiny_krr, tmp_path: Path) -> None:
    bad = _copy(tiny_krr.directory, tmp_path / "m")
    data = (bad / "weights.npz").read_bytes()
    (bad / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="does not match its model card"):
        KRRModel.load(bad)
    card = model_files.read(bad)
    card.pop("files")
    model_files.reseal(bad, card)
    with pytest.raises(ValueError, match=r"weights\.npz not listed in 'files'"):
        KRRModel.load(bad)
    model_files.reseal(bad, card, rehash=("weights.npz",))  # a card crafted for the bad file
    with pytest.raises(ValueError, match="unreadable weights file"):
        KRRModel.load(bad)


def test_card_that_does_not_match_weights_is_a_clear_error(tiny_krr, tmp_path: Path) -> None:
    bad = _copy(tiny_krr.directory, tmp_path / "m")
    card = model_files.read(bad)
    card["features"].update(n_max=4, n_features=30)  # weights were written for 18 features
    model_files.reseal(bad, card)
    with pytest.raises(ValueError, match="weights do not match the card"):
        KRRModel.load(bad)
    card["model_type"] = "schnet"
    model_files.reseal(bad, card)
    with pytest.raises(ValueError, match="not 'krr'"):
        KRRModel.load(bad)
    (bad / "card.json").unlink()
    with pytest.raises(ValueError, match="no model card"):
        KRRModel.load(bad)


def test_sparse_model_energy_std_is_the_sor_predictive_std(train_set) -> None:
    rows, units, soap = train_set
    model = _fit(train_set, zeta=3, n_sparse=100)
    assert "energy_std" not in _fit(train_set, zeta=3).predict(rows.atoms[:1])
    q = model.arrays["environments"]
    phi = sparse_features(units, q, 3)
    lhs = phi.T @ phi + 1e-4 * (q @ q.T) ** 3
    lhs += 1e-10 * np.trace(lhs) / len(lhs) * np.eye(len(lhs))
    stretched = au20_ground_state()
    stretched.positions *= 1.25
    test = [rows.atoms[0], _rattled(), stretched]
    phi_t = sparse_features(SoapFeaturizer(soap).normalised_many(test), q, 3)
    expected = 20 * np.sqrt(1e-4 * np.einsum("ij,ij->i", phi_t, np.linalg.solve(lhs, phi_t.T).T))
    std = model.predict(test)["energy_std"]
    assert np.allclose(std, expected, rtol=1e-4)
    assert std[2] > 2 * std[0]  # far from the training data: wider


def test_normalised_calibration_uses_energy_std(synthetic_db: Path, tmp_path: Path) -> None:
    from ase_au20.models.krr.training import KRRSearch, out_of_fold, train_krr

    search = KRRSearch(
        r_cut=(5.0,), n_max=(3,), l_max=(2,), sigma=(0.5,), zeta=(3,), lam=(1e-3,), n_sparse=50
    )
    result = train_krr(synthetic_db, tmp_path / "m", search, progress=False)
    model = KRRModel.load(tmp_path / "m")
    conformal = model.card["conformal"]
    assert conformal["normalised"] is True and "absolute" in conformal
    assert result.metrics["test"]["mean_abs_force"] > 0
    # cross-conformal: calibrated on calib and on every train/val row predicted out of fold
    calib, trainval = load_rows(synthetic_db, "calib"), load_rows(synthetic_db, ("train", "val"))
    assert conformal["n_calib"] == len(calib) + len(trainval)
    assert model.card["metrics"]["calibration_rows"] == {
        "calib": len(calib),
        "out_of_fold": len(trainval),
    }
    # scores divide by std + its median: std alone made the intervals of the isomers nearest
    # the data too narrow (group CV coverage 0.87 near, 0.95 far for xtb-delta)
    calib_std = model.predict(calib.atoms)["energy_std"]
    row = {**model.card["features"], **model.hyperparameters}
    both = np.concatenate([calib_std, out_of_fold(trainval, row).spread])
    assert conformal["spread_offset"] == pytest.approx(np.median(both))


def test_zero_force_term_flattens_the_surface_at_training_minima(train_set) -> None:
    rows, units, soap = train_set
    kwargs = {"zeta": 3, "n_sparse": 100, "structures": rows.atoms}
    free = _fit(train_set, **kwargs)
    flat = _fit(train_set, zero_force_weight=1.0, **kwargs)
    assert flat.hyperparameters["zero_force_weight"] == 1.0

    def mean_force(model: KRRModel) -> float:
        forces = model.predict(rows.atoms[:10], forces=True)["forces"]
        return float(np.linalg.norm(forces, axis=-1).mean())

    assert mean_force(flat) < 0.5 * mean_force(free)
    with pytest.raises(ValueError, match="needs the training structures"):
        _fit(train_set, zeta=3, n_sparse=100, zero_force_weight=1.0)
    with pytest.raises(ValueError, match="sparse average kernel"):
        _fit(train_set, zeta=2, zero_force_weight=1.0, structures=rows.atoms)


@pytest.mark.parametrize("zeta", [1, 2, 3, 6])
def test_power_pair_is_numpy_power(zeta: int) -> None:
    x = np.random.default_rng(zeta).uniform(-1.0, 1.0, (20, 50))
    below, kernel = _power_pair(x, zeta)
    np.testing.assert_allclose(below, x ** (zeta - 1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(kernel, x**zeta, rtol=1e-13, atol=1e-15)
    assert below is not x and kernel is not x
