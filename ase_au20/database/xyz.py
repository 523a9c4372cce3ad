"""Reading the dataset's xyz files with one precise reason for every file that is rejected.

Format (see the dataset README): line 1 the atom count, line 2 the total energy in eV as a
bare number, then one ``Au x y z`` line per atom (Å). ``ase.io`` would either guess or fail
with a generic message, so a small strict parser gives each bad file a one-line reason.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_au20.validation import (
    DATABASE_MIN_DISTANCE,
    check_bond_lengths,
    check_cluster,
    check_compact,
)

N_ATOMS = 20  # every isomer in an Au20 database has exactly this many atoms
MAX_CLUSTER_ID = 2**63 - 1  # the largest integer SQLite (and PostgreSQL bigint) stores


class XyzError(ValueError):
    """A file that is not a valid Au20 isomer; the message is the one-line reason."""


@dataclass(frozen=True)
class Isomer:
    """One parsed isomer: its id (file stem), total energy (eV), geometry, file name and the
    level of theory of its energy when the file says (``""``: the database's)."""

    cluster_id: int
    energy: float
    atoms: Atoms
    source: str
    level: str = ""


@dataclass(frozen=True)
class BadFile:
    """A rejected file and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.source}: {self.reason}"


def cluster_id_of(path: Path) -> int:
    """The integer isomer id of ``<id>.xyz``; XyzError for any other stem or one too large."""
    try:
        cluster_id = int(path.stem)
    except ValueError:
        raise XyzError(f"file name stem {path.stem!r} is not an integer isomer id") from None
    check_cluster_id(cluster_id)
    return cluster_id


def check_cluster_id(cluster_id: int) -> None:
    """XyzError for an id that a database integer column cannot hold or that is negative."""
    if not 0 <= cluster_id <= MAX_CLUSTER_ID:
        raise XyzError(f"isomer id {cluster_id} is outside 0..{MAX_CLUSTER_ID} (SQLite integers)")


def regular_file_problem(path: Path) -> str:
    """Why ``path`` is not a readable regular file (``""`` when it is one); never opens it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "dangling symbolic link" if path.is_symlink() else "no such file"
    except OSError as err:
        return f"cannot stat: {err.strerror or err}"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    return "not a regular file"


def _parse_float(token: str, what: str) -> float:
    """float(token) with a reason naming ``what`` on failure or a non-finite value."""
    try:
        value = float(token)
    except ValueError:
        raise XyzError(f"{what} is not a number: {token!r}") from None
    if not math.isfinite(value):
        raise XyzError(f"{what} is not finite: {token!r}")
    return value


def parse_xyz_text(text: str, n_atoms: int = N_ATOMS) -> tuple[float, Atoms]:
    """Parse the text of one isomer file into (energy, Atoms); XyzError with the reason."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise XyzError("empty file")
    count_line = lines[0].strip()
    try:
        count = int(count_line)
    except ValueError:
        raise XyzError(f"line 1 must be the atom count, found {count_line!r}") from None
    if count != n_atoms:
        raise XyzError(f"wrong atom count on line 1: {count} (an Au{n_atoms} file has {n_atoms})")
    if len(lines) < 2 or not lines[1].strip():
        raise XyzError("missing energy on line 2")
    energy_tokens = lines[1].split()
    if len(energy_tokens) != 1:
        raise XyzError(f"line 2 must be a bare energy in eV, found {lines[1].strip()!r}")
    energy = _parse_float(energy_tokens[0], "energy on line 2")
    atom_lines = lines[2:]
    if len(atom_lines) < count:
        raise XyzError(f"truncated: {len(atom_lines)} atom lines, line 1 declares {count}")
    if len(atom_lines) > count:
        raise XyzError(f"{len(atom_lines)} atom lines, line 1 declares {count}")
    symbols, positions = [], []
    for lineno, line in enumerate(atom_lines, start=3):
        fields = line.split()
        if len(fields) != 4:
            raise XyzError(f"line {lineno}: expected 'Au x y z', found {line.strip()!r}")
        if fields[0] != "Au":
            raise XyzError(f"line {lineno}: element {fields[0]!r} is not Au")
        symbols.append(fields[0])
        positions.append([_parse_float(v, f"line {lineno} coordinate") for v in fields[1:]])
    atoms = Atoms(symbols, positions=np.array(positions))
    try:
        check_cluster(atoms, min_distance=DATABASE_MIN_DISTANCE)
        check_compact(atoms)
        check_bond_lengths(atoms)
    except ValueError as err:
        raise XyzError(str(err)) from None
    return energy, atoms


def read_isomer(path: Path, n_atoms: int = N_ATOMS) -> Isomer:
    """Read one ``<id>.xyz`` file; the Atoms carry a SinglePointCalculator with the energy."""
    cluster_id = cluster_id_of(path)
    problem = regular_file_problem(path)
    if problem:
        raise XyzError(problem)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise XyzError(
            f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None
    energy, atoms = parse_xyz_text(text, n_atoms=n_atoms)
    atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return Isomer(cluster_id=cluster_id, energy=energy, atoms=atoms, source=path.name)


def xyz_files(folder: Path) -> list[Path]:
    """The ``*.xyz`` entries of ``folder``, numeric stems first in id order, then the rest.

    Directories, FIFOs and dangling links named ``*.xyz`` are listed too, so the reader
    reports each instead of skipping it silently.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"xyz folder not found: {folder}")

    def key(path: Path) -> tuple[int, int, str]:
        stem = path.stem
        return (0, int(stem), "") if stem.lstrip("-").isdigit() else (1, 0, stem)

    return sorted((p for p in folder.iterdir() if p.suffix == ".xyz"), key=key)


def read_isomers(
    paths: Iterable[Path], n_atoms: int = N_ATOMS, progress: bool = True
) -> tuple[list[Isomer], list[BadFile]]:
    """Read every file, keeping good isomers and a reason for each bad or duplicate-id file."""
    from tqdm.auto import tqdm

    paths = list(paths)
    good: list[Isomer] = []
    bad: list[BadFile] = []
    seen: dict[int, str] = {}
    for path in tqdm(paths, desc="reading xyz", unit="file", disable=not progress):
        try:
            isomer = read_isomer(path, n_atoms=n_atoms)
        except XyzError as err:
            bad.append(BadFile(path.name, str(err)))
            continue
        except OSError as err:
            bad.append(BadFile(path.name, f"cannot read: {err.strerror or err}"))
            continue
        if isomer.cluster_id in seen:
            bad.append(
                BadFile(
                    path.name, f"id {isomer.cluster_id} already read from {seen[isomer.cluster_id]}"
                )
            )
            continue
        seen[isomer.cluster_id] = path.name
        good.append(isomer)
    return good, bad
