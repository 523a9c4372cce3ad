"""Labelled structures from any source `db add` takes: folders, extended xyz, .traj, databases.

A source is a folder (its ``*.xyz``, ``*.extxyz`` and ``*.traj`` entries), a file (ASE's
``file@index`` selects frames; the last frame by default, as ``ase.io.read``) or a database
``URL@selection`` (every labelled row by default). ``<id>.xyz`` files in the dataset's bare
format keep their id; other structures take ``info["cluster_id"]`` when they carry one and
otherwise get the next free id when they are added. A structure without an energy label is
reported, never added.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_au20.database.xyz import (
    N_ATOMS,
    BadFile,
    Isomer,
    XyzError,
    check_cluster_id,
    read_isomer,
    regular_file_problem,
)
from ase_au20.validation import (
    DATABASE_MIN_DISTANCE,
    check_bond_lengths,
    check_cluster,
    check_compact,
)

UNASSIGNED_ID = -1  # an Isomer whose id `db add` assigns
PREDICTED_BY = "predicted_by"  # info key of a frame whose energy is a model's prediction
LEVEL = "level"  # info key of a frame whose energy is a label at that level of theory
# what a workflow's trajectory frame carries beside a model's energy (TrustLog)
PREDICTION_MARKS = ("energy_uncertainty", "domain_score", "in_domain", "energy_std")
FOLDER_SUFFIXES = (".xyz", ".extxyz", ".traj")
DB_SUFFIXES = (".db", ".json")


def split_index(source: str) -> tuple[str, str | None]:
    """``"file@index"`` -> (file, index); a trailing ``@`` part that names a file is kept."""
    if "@" in source and not os.path.exists(source):
        path, index = source.rsplit("@", 1)
        return path, index
    return source, None


def source_kind(source: str | os.PathLike[str]) -> tuple[str, str, str | None]:
    """What ``source`` names — ``"database"``, ``"folder"`` or ``"file"`` — with its path or
    URL and its ``@`` part (ASE index or db selection); ValueError when nothing is there.

    A folder with an ``@`` part is read as a file (and reported as not being one); a
    dangling link counts as a file, so its reader can say what is wrong with it.
    """
    text, index = split_index(os.fspath(source))
    path = Path(text)
    if "://" in text or (path.suffix in DB_SUFFIXES and path.is_file()):
        return "database", text, index
    if path.is_dir() and index is None:
        return "folder", text, index
    if path.exists() or path.is_symlink():
        return "file", text, index
    raise ValueError(f"no such file, folder or database: {text}")


def read_frames(path: Path, index: str | None) -> list[Atoms]:
    """Frames of an ASE-readable file: ``index`` (ASE syntax) or, as ``ase.io.read``, the
    last one."""
    from ase.io import read

    frames = read(path, index=index if index is not None else -1)
    return frames if isinstance(frames, list) else [frames]


def _is_bare_xyz(path: Path) -> bool:
    """Whether an ``<int>.xyz`` file is in the dataset's format: no ``key=value`` on line 2.

    Extended xyz always has ``key=value`` pairs (``Properties=…``) there; a bare file that is
    malformed still goes to the strict parser, which names what is wrong with it.
    """
    if path.suffix != ".xyz" or not path.stem.isdigit():
        return False
    with path.open("rb") as handle:
        handle.readline()
        return b"=" not in handle.readline()


def labelled_isomer(atoms: Atoms, source: str) -> Isomer:
    """An Isomer of an ASE structure with an energy label; XyzError naming what is wrong."""
    if len(atoms) != N_ATOMS:
        raise XyzError(f"{len(atoms)} atoms (an Au{N_ATOMS} structure has {N_ATOMS})")
    if PREDICTED_BY in atoms.info:
        raise XyzError(
            f"its energy is a prediction of {atoms.info[PREDICTED_BY]}, not a label "
            "(label it first: `au20-workflow label`)"
        )
    marks = [key for key in PREDICTION_MARKS if key in atoms.info]
    if marks and LEVEL not in atoms.info:
        raise XyzError(
            f"it carries a model's {marks[0]}: its energy is a prediction, not a label "
            "(label it first: `au20-workflow label`)"
        )
    try:
        check_cluster(atoms, min_distance=DATABASE_MIN_DISTANCE)
        check_compact(atoms)
        check_bond_lengths(atoms)
    except ValueError as err:
        raise XyzError(str(err)) from None
    try:
        energy = float(atoms.get_potential_energy())
    except Exception:  # no calculator, or one without an energy: both mean "unlabelled"
        raise XyzError("no energy label (extended xyz needs energy= in its comment line)") from None
    if not np.isfinite(energy):
        raise XyzError(f"energy label {energy} is not a finite number")
    label = Atoms(atoms.numbers, positions=atoms.get_positions())
    results = {"energy": energy}
    forces = atoms.calc.results.get("forces") if atoms.calc is not None else None
    if forces is not None:
        forces = np.asarray(forces, dtype=float)
        if not np.isfinite(forces).all():
            raise XyzError("forces hold a non-finite (NaN/inf) value")
        results["forces"] = forces
    label.calc = SinglePointCalculator(label, **results)
    cluster_id = atoms.info.get("cluster_id", UNASSIGNED_ID)
    if cluster_id != UNASSIGNED_ID:
        try:
            cluster_id = int(cluster_id)
        except (TypeError, ValueError):
            raise XyzError(f"cluster_id {cluster_id!r} is not an integer") from None
        check_cluster_id(cluster_id)
    level = str(atoms.info.get(LEVEL, ""))
    return Isomer(cluster_id=cluster_id, energy=energy, atoms=label, source=source, level=level)


def _read_file(path: Path, index: str | None, label: str) -> tuple[list[Isomer], list[BadFile]]:
    """Isomers of one file (bare or any ASE format), with a reason for each bad frame."""
    problem = regular_file_problem(path)
    if problem:
        return [], [BadFile(label, problem)]
    try:
        if index is None and _is_bare_xyz(path):
            return [read_isomer(path)], []
        frames = read_frames(path, index)
    except XyzError as err:
        return [], [BadFile(label, str(err))]
    except Exception as err:  # ASE raises many types for malformed files
        return [], [BadFile(label, f"cannot read ({type(err).__name__}: {err})")]
    good, bad = [], []
    for k, atoms in enumerate(frames):
        name = label if len(frames) == 1 else f"{label}@{k}"
        try:
            good.append(labelled_isomer(atoms, name))
        except XyzError as err:
            bad.append(BadFile(name, str(err)))
    return good, bad


def _read_database(url: str, selection: str | None) -> tuple[list[Isomer], list[BadFile]]:
    """Labelled rows (those with an energy) of another database; prediction rows are left."""
    from ase_au20.database.store import connect, shown_url

    good, bad = [], []
    db = connect(url)
    for row in db.select(selection, include_data=False):
        name = f"{shown_url(url)}@id={row.id}"
        if row.get("energy") is None:
            continue
        if {"pred_energy", "predicted_energy"} & set(row.key_value_pairs):
            # a search row of an older version: its energy is a model's prediction
            bad.append(BadFile(name, "a prediction row (pred_energy), not a label"))
            continue
        atoms = row.toatoms()
        if "cluster_id" in row:
            atoms.info["cluster_id"] = row.cluster_id
        try:
            good.append(labelled_isomer(atoms, name))
        except XyzError as err:
            bad.append(BadFile(name, str(err)))
    return good, bad


def read_labelled(
    sources: list[str | os.PathLike[str]], progress: bool = False
) -> tuple[list[Isomer], list[BadFile]]:
    """Every labelled structure of ``sources``, in order, and a reason for each rejected one
    (``progress``: a bar over the files of each folder)."""
    from tqdm.auto import tqdm

    good: list[Isomer] = []
    bad: list[BadFile] = []
    for source in sources:
        kind, text, index = source_kind(source)
        path = Path(text)
        if kind == "database":
            found, rejected = _read_database(text, index)
        elif kind == "folder":
            from ase_au20.database.xyz import xyz_files

            found, rejected = [], []
            entries = xyz_files(path) + sorted(
                p for p in path.iterdir() if p.suffix in FOLDER_SUFFIXES[1:]
            )
            for entry in tqdm(entries, desc="reading", unit="file", disable=not progress):
                more, worse = _read_file(entry, None, entry.name)
                found += more
                rejected += worse
        else:
            found, rejected = _read_file(path, index, path.name)
        good += found
        bad += rejected
    return good, bad
