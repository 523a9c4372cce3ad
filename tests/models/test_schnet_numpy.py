"""The NumPy SchNet path gives the torch network's outputs and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ase_au20.models.schnet.config import SchNetArchitecture
from ase_au20.models.schnet.network import SchNet, SchNetModel
from ase_au20.models.schnet.numpy_path import NumpySchNet, _softplus_and_sigmoid
from ase_au20.structures import au20_ground_state

ARCH = SchNetArchitecture(
    hidden=16, blocks=3, rbf=16, cutoff=5.0, repulsion_radius=2.2, repulsion_strength=100.0
)
TABLE = {"hyperparameters": {"table_spacing": 0.01}}


def _model(dtype: torch.dtype, members: int = 3) -> SchNetModel:
    torch.manual_seed(1)
    nets = [SchNet(ARCH) for _ in range(members)]
    return SchNetModel(nets, -77.9, 0.2, card=TABLE, device="cpu", dtype=dtype)


def _clusters() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    au20 = au20_ground_state().positions
    far = au20.copy()
    far[19] = [40.0, 0.0, 0.0]  # beyond the cutoff of every other atom
    return {
        "rattled Au20": au20 + rng.normal(0.0, 0.05, au20.shape),
        "compressed (repulsion on)": 0.75 * au20,
        "one atom far away": far,
        "dimer": np.array([[0.0, 0.0, 0.0], [0.3, 0.2, 2.1]]),
        "single atom": np.zeros((1, 3)),
    }


@pytest.mark.parametrize("name", list(_clusters()))
@pytest.mark.parametrize(
    ("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"]
)
def test_numpy_path_matches_torch(name: str, dtype: torch.dtype, rtol: float) -> None:
    model = _model(dtype)
    positions = _clusters()[name]
    assert model.numpy_path is not None
    h_np, grad_np = model._evaluate(positions[None], forces=True)
    h_torch, grad_torch = model._evaluate_torch(positions[None], forces=True)
    scale_h = max(1.0, np.abs(h_torch).max())
    scale_g = max(1.0, np.abs(grad_torch).max())
    np.testing.assert_allclose(h_np, h_torch, rtol=0, atol=rtol * scale_h)
    np.testing.assert_allclose(grad_np, grad_torch, rtol=0, atol=rtol * scale_g)
    energy_only, none = model._evaluate(positions[None], forces=False)
    assert none is None
    np.testing.assert_allclose(energy_only, h_np, rtol=0, atol=1e-12)


def test_a_stack_of_structures_is_each_structure_alone() -> None:
    """One disjoint graph of several clusters: no message crosses between them."""
    model = _model(torch.float64)
    rng = np.random.default_rng(3)
    base = _clusters()["rattled Au20"]
    stack = np.stack([base + rng.normal(0.0, 0.1, base.shape) for _ in range(3)])
    stack[1] *= 0.8  # repulsion on in one of them
    h_np, grad_np = model._evaluate(stack, forces=True)
    h_torch, grad_torch = model._evaluate_torch(stack, forces=True)
    np.testing.assert_allclose(h_np, h_torch, rtol=0, atol=1e-10)
    np.testing.assert_allclose(grad_np, grad_torch, rtol=0, atol=1e-10)
    for k in range(3):
        h_one, grad_one = model._evaluate(stack[k : k + 1], forces=True)
        np.testing.assert_allclose(h_one[:, 0], h_np[:, k], rtol=0, atol=1e-12)
        np.testing.assert_allclose(grad_one[0], grad_np[k], rtol=0, atol=1e-12)


def test_gradient_is_the_derivative_of_the_members_mean_energy() -> None:
    net = _model(torch.float64).numpy_path
    positions = _clusters()["compressed (repulsion on)"][None]
    _, grad = net(positions)
    step = 1e-5
    for atom, axis in ((0, 0), (9, 1), (19, 2)):
        plus, minus = positions.copy(), positions.copy()
        plus[0, atom, axis] += step
        minus[0, atom, axis] -= step
        mean_total = (net(plus, False)[0] - net(minus, False)[0]).sum(-1).mean()
        numeric = mean_total / (2 * step)
        assert grad[0, atom, axis] == pytest.approx(numeric, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_and_sigmoid_match_torch_over_the_whole_range(dtype: type) -> None:
    a = np.array([-200.0, -40.0, -17.0, -1.0, 0.0, 1e-3, 5.0, 59.0, 61.0, 200.0], dtype=dtype)
    ssp, sig = _softplus_and_sigmoid(a)
    reference = torch.from_numpy(a.astype(np.float64))
    expected_ssp = (torch.nn.functional.softplus(reference) - np.log(2.0)).numpy()
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert ssp.dtype == dtype and sig.dtype == dtype
    np.testing.assert_allclose(ssp, expected_ssp, rtol=tol, atol=tol)
    np.testing.assert_allclose(sig, torch.sigmoid(reference).numpy(), rtol=tol, atol=tol)


def test_numpy_path_needs_a_frozen_table_on_cpu() -> None:
    torch.manual_seed(0)
    exact = SchNetModel([SchNet(ARCH)], -77.9, 0.2, device="cpu", dtype=torch.float64)
    assert exact.numpy_path is None  # exact filters: torch path only
    with pytest.raises(ValueError, match="frozen filter table"):
        NumpySchNet.from_networks(exact.networks)
