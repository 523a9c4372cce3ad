"""The KRR energy is continuous where neighbours leave the descriptor, forces stay its
gradient there, and any input evaluates in bounded memory or is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms

from ase_au20.calculators.krr import KRRAu20
from ase_au20.structures import au20_ground_state

PADDING_SIGMAS = np.sqrt(-2 * np.log(1e-3))  # dscribe's own neighbour padding, in sigmas
STEP = 2e-4  # Å


def _scan_across(calc: KRRAu20, radius: float, steps: int = 101) -> np.ndarray:
    """Energies while the outermost Td atom moves outward across ``radius`` from a partner."""
    atoms = au20_ground_state()
    centre = atoms.positions.mean(axis=0)
    i = int(np.argmax(np.linalg.norm(atoms.positions - centre, axis=1)))
    direction = (atoms.positions[i] - centre) / np.linalg.norm(atoms.positions[i] - centre)
    # the first partner j whose distance to i reaches `radius` when i moves by t >= 0
    offsets = atoms.positions[i] - atoms.positions
    b = offsets @ direction
    c = (offsets**2).sum(axis=1) - radius**2
    t = -b + np.sqrt(np.maximum(b**2 - c, 0.0))
    t[(c >= 0) | (np.arange(len(atoms)) == i)] = np.inf
    crossing = float(t.min())
    assert np.isfinite(crossing)
    energies = []
    for s in crossing + STEP * (np.arange(steps) - steps // 2):
        moved = atoms.copy()
        moved.positions[i] += s * direction
        energies.append(calc.get_property("energy", moved))
    return np.array(energies)


def _radii(calc: KRRAu20) -> tuple[float, float]:
    """dscribe's default neighbour cutoff and ours, for this model's SOAP settings."""
    settings = calc.model.settings
    return settings.r_cut + PADDING_SIGMAS * settings.sigma, settings.neighbour_radius


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_energy_is_continuous_across_every_descriptor_cutoff(
    which: str, tiny_krr_dir, shipped_model
) -> None:
    calc = KRRAu20(model=tiny_krr_dir if which == "tiny" else shipped_model("krr"))
    for radius in _radii(calc):
        energies = _scan_across(calc, radius)
        assert np.abs(np.diff(energies, 2)).max() < 1e-5, radius  # eV over 2e-4 Å steps


def test_forces_are_the_gradient_with_an_atom_in_its_own_group(tiny_krr_dir) -> None:
    """An atom beyond the neighbour radius is described on its own; forces still match."""
    calc = KRRAu20(model=tiny_krr_dir)
    atoms = au20_ground_state()
    atoms.positions[0] += [calc.model.settings.neighbour_radius + 5.0, 0.3, -0.2]
    atoms.positions[1:] += np.random.default_rng(3).normal(0.0, 0.03, (19, 3))
    forces = calc.get_property("forces", atoms)
    for a, x in ((0, 0), (1, 2), (5, 1)):
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[a, x] += sign * 1e-4
            shifted.append(calc.get_property("energy", moved))
        assert forces[a, x] == pytest.approx(-(shifted[0] - shifted[1]) / 2e-4, abs=1e-4)
    assert np.abs(forces[0]).max() < 1e-8  # it sees nobody


def test_groups_equal_the_whole_when_they_see_each_other(tiny_krr_dir) -> None:
    """Splitting into groups changes nothing when every pair is inside the radius."""
    calc = KRRAu20(model=tiny_krr_dir)
    atoms = au20_ground_state()
    featurizer = calc.model.featurizer
    np.testing.assert_allclose(featurizer.raw(atoms), featurizer._raw(atoms), atol=1e-12)


SCRIPT = """
import json, resource, sys
import numpy as np
from ase_au20.calculators.krr import KRRAu20
from ase_au20.structures import au20_ground_state
calc = KRRAu20(model=sys.argv[1])
far = au20_ground_state(); far.positions[0] = [1600.0, 1600.0, 1600.0]
scaled = au20_ground_state(); scaled.positions *= 1000.0
out = [calc.get_property("energy", a) for a in (far, scaled)]
out.append(float(np.abs(calc.get_property("forces", scaled)).max()))
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"values": out, "rss_mb": rss_mb}))
"""


def test_memory_is_bounded_whatever_the_extent(shipped_model) -> None:
    """One atom 2,800 Å away used to take 0.67 GB, the Td scaled x1000 over 23 GB."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
    result = subprocess.run(
        [sys.executable, "-c", limit + SCRIPT, str(shipped_model("krr"))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert all(np.isfinite(report["values"]))
    assert report["rss_mb"] < 1024


def test_coordinates_beyond_the_bound_are_refused(tiny_krr_dir) -> None:
    atoms = au20_ground_state()
    atoms.positions[3] = [1e300, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"coordinates beyond 1e\+04 Å.*atom\(s\) \[3\]"):
        KRRAu20(model=tiny_krr_dir).get_property("energy", atoms)
    single = Atoms("Au20", positions=au20_ground_state().positions + 9e3)
    assert np.isfinite(KRRAu20(model=tiny_krr_dir).get_property("energy", single))
