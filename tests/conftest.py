"""Shared fixtures: the real Au20 dataset (when present) and a small synthetic EMT dataset."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.optimize import BFGS
from bad_xyz_cases import BAD_XYZ_CASES, SPECIAL_XYZ_CASES
from isomer_files import random_compact_au20, write_isomer_xyz

from ase_au20.database.local_postgres import create_database, postgres_bin, postgres_server

REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_COUNT = 40  # random relaxed clusters; 4 near-duplicate copies are added on top


def _dataset_dir() -> Path:
    """``$AU20_DATA`` or ``../shared/data/au20`` beside the repository."""
    default = REPO_ROOT.parent / "shared" / "data" / "au20"
    return Path(os.environ.get("AU20_DATA", default)).expanduser().resolve()


@pytest.fixture(scope="session")
def au20_data_dir() -> Path:
    """The real dataset folder; skipped when missing, a failure when CI=true."""
    path = _dataset_dir()
    if not (path / "xyz").is_dir():
        _skip_or_fail(f"Au20 dataset not found at {path} (set AU20_DATA)")
    return path


def _skip_or_fail(reason: str) -> None:
    """Skip a test whose data or service is missing; in CI (CI=true) that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def headless_browser() -> str:
    """Debian's chromium for screenshot tests; skipped without it, a failure when CI=true."""
    found = next((b for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    if found is None:
        _skip_or_fail("no headless browser (chromium) found: apt-get install chromium")
    return found


@pytest.fixture(scope="session")
def postgres_server_url():
    """A PostgreSQL server on a loopback port for the session (Debian's ``postgresql``:
    initdb + pg_ctl); skipped without the binaries or the driver, a failure when CI=true."""
    if postgres_bin() is None:
        _skip_or_fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    try:
        import ase_db_backends  # noqa: F401
        import psycopg2  # noqa: F401
    except ModuleNotFoundError as err:
        _skip_or_fail(f"{err.name} not installed: pip install -e '.[postgres]'")
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    return create_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def synthetic_xyz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 random Au20 clusters after 3 EMT BFGS steps, plus near-duplicate copies.

    Files 0..39 are distinct; 40 and 41 copy 0 (a group of three), 42 copies 1 and 43
    copies 2 (groups of two), each with 1e-4 Å noise and energy shifted by <= 1e-4 eV.
    """
    folder = tmp_path_factory.mktemp("synthetic_xyz")
    rng = np.random.default_rng(20)
    structures, energies = [], []
    for index in range(SYNTHETIC_COUNT):
        atoms = random_compact_au20(rng)
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=0.05, steps=3)
        energy = float(atoms.get_potential_energy())
        atoms.calc = None
        structures.append(atoms)
        energies.append(energy)
        write_isomer_xyz(folder / f"{index}.xyz", atoms, energy)
    for copy_id, original in zip(range(40, 44), (0, 0, 1, 2), strict=True):
        atoms = structures[original].copy()
        atoms.positions += rng.uniform(-1e-4, 1e-4, atoms.positions.shape)
        energy = energies[original] + rng.uniform(-1e-4, 1e-4)
        write_isomer_xyz(folder / f"{copy_id}.xyz", atoms, energy)
    return folder


@pytest.fixture(scope="session")
def synthetic_db(synthetic_xyz_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SQLite db of the synthetic set with the default group split (every split non-empty)."""
    from ase_au20.database import build_database

    path = tmp_path_factory.mktemp("synthetic_db") / "synthetic.db"
    build_database(synthetic_xyz_dir, path)
    return path


@pytest.fixture(scope="session")
def reference_db(synthetic_xyz_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic geometries labelled by the reference (DFTB1), group split: isomers of
    the level a corpus is labelled at, without the dataset."""
    import warnings

    from ase.io import read

    from ase_au20.calculators.base import OutsideDomainWarning
    from ase_au20.calculators.dftb import DFTBAu20
    from ase_au20.database import build_database

    folder = tmp_path_factory.mktemp("reference_xyz")
    reference = DFTBAu20()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutsideDomainWarning)
        for path in sorted(synthetic_xyz_dir.glob("*.xyz")):
            atoms = read(path, format="xyz")
            atoms.calc = reference
            write_isomer_xyz(folder / path.name, atoms, atoms.get_potential_energy())
    path = tmp_path_factory.mktemp("reference_db") / "reference.db"
    build_database(folder, path)
    return path


@pytest.fixture(scope="session")
def real_db(au20_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 899-isomer db with the prototype's seed split (fixed test ids and folds)."""
    from ase_au20.database import build_database

    path = tmp_path_factory.mktemp("real_db") / "au20-seed.db"
    build_database(
        au20_data_dir / "xyz", path, split="seed", seed_splits=au20_data_dir / "splits_seed"
    )
    return path


@pytest.fixture(scope="session")
def real_db_group(au20_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 899-isomer db with the default group-aware split (seed 0)."""
    from ase_au20.database import build_database

    path = tmp_path_factory.mktemp("real_db_group") / "au20-group.db"
    build_database(au20_data_dir / "xyz", path)
    return path


@pytest.fixture
def bad_xyz_dir(tmp_path: Path, synthetic_xyz_dir: Path) -> tuple[Path, list[str], dict[str, str]]:
    """Folder with 5 good synthetic files, every malformed case and a non-xyz file.

    Returns (folder, good file names, {bad file name: expected reason fragment}).
    """
    folder = tmp_path / "bad_input"
    folder.mkdir()
    good = [f"{i}.xyz" for i in range(5)]
    for name in good:
        (folder / name).write_bytes((synthetic_xyz_dir / name).read_bytes())
    for name, (content, _) in BAD_XYZ_CASES.items():
        (folder / name).write_bytes(content)
    (folder / "120.xyz").mkdir()
    (folder / "121.xyz").symlink_to(folder / "gone.xyz")
    os.mkfifo(folder / "122.xyz")
    (folder / "README.txt").write_text("not an xyz file, ignored\n")
    expected = {name: reason for name, (_, reason) in BAD_XYZ_CASES.items()}
    return folder, good, {**expected, **SPECIAL_XYZ_CASES}


def _shipped(kind: str) -> Path:
    """The shipped pretrained model directory, or skip when it has not been built yet."""
    from ase_au20.paths import PRETRAINED_DIR

    path = PRETRAINED_DIR / kind
    if not (path / "card.json").is_file():
        pytest.skip(f"no shipped {kind} model in {path} (make reproduce)")
    return path


@pytest.fixture(scope="session")
def shipped_model() -> Callable[[str], Path]:
    """``shipped_model("krr"|"schnet"|"committee")``: the pretrained model folder, or skip."""
    return _shipped
