"""Structures one at a time from extended xyz, .traj, xyz folders and ASE database URLs.

Screening inputs hold up to millions of structures, so they are read lazily (``ase.io.iread``
and database cursors): memory does not grow with the input. Every frame of a file is read
unless ``file@index`` says otherwise; a database ``URL@selection`` gives every row it selects.
Frames of whole ``.xyz``/``.extxyz`` files come as their text, split at the atom-count
lines and parsed where they are used (:func:`parse_frames`), so that the parsing runs on the
screen's workers rather than in the one process that reads the stream. A bad input — a
malformed frame, a file that is not text, a dangling link, a folder or FIFO where a file
should be — is one ``Unreadable`` frame naming why, and the stream goes on; nothing but a
regular file is ever opened.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ase_au20.database.labelled_inputs import FOLDER_SUFFIXES, source_kind
from ase_au20.database.store import shown_url
from ase_au20.database.xyz import regular_file_problem

XYZ_SUFFIXES = (".xyz", ".extxyz")


@dataclass(frozen=True)
class Unreadable:
    """A frame or file of the input that holds no structure, and why."""

    reason: str


Frame = Atoms | str | Unreadable  # a parsed structure, one frame of xyz text, or a bad one


def _atom_count(line: str) -> int | None:
    """The atom count a frame's first line announces, or None."""
    fields = line.split()
    try:
        return int(fields[0]) if len(fields) == 1 and int(fields[0]) > 0 else None
    except ValueError:
        return None


def _xyz_text_frames(path: Path) -> Iterator[tuple[str, Frame]]:
    """Each frame of an (extended) xyz file as its text: count line, comment, atom lines.
    A line where a count should be is an ``Unreadable`` frame, and reading resumes at the
    next line that is a count; a file that is not text is one."""
    k = 0
    try:
        with path.open() as handle:
            pending = next(handle, None)
            while pending is not None:
                if not pending.strip():
                    pending = next(handle, None)
                    continue  # blank lines between frames, as ASE allows
                n_atoms = _atom_count(pending)
                if n_atoms is None:
                    yield (
                        f"{path}@{k}",
                        Unreadable(f"starts with {pending.strip()[:40]!r}, not an atom count"),
                    )
                    k += 1
                    pending = next(handle, None)
                    while pending is not None and _atom_count(pending) is None:
                        pending = next(handle, None)
                    continue
                lines = [pending, *(next(handle, "") for _ in range(n_atoms + 1))]
                if not lines[-1]:
                    yield f"{path}@{k}", Unreadable(f"ends early ({n_atoms} atoms announced)")
                    return
                yield f"{path}@{k}", "".join(lines)
                k += 1
                pending = next(handle, None)
    except UnicodeDecodeError:
        yield f"{path}@{k}", Unreadable("not a text file (undecodable bytes)")


def _plain_frame(text: str) -> Atoms | None:
    """Atoms of an xyz frame whose atom lines are ``symbol x y z`` and which has no cell, or
    None for anything else (ASE parses those). 0.10 against 0.35 ms per Au20 frame with
    ``ase.io.read``; parsing is a sixth of a SchNet screen's time per structure."""
    lines = text.splitlines()
    n_atoms = int(lines[0].split()[0])
    if "Lattice=" in lines[1] or len(lines) < n_atoms + 2:
        return None
    fields = [line.split() for line in lines[2 : n_atoms + 2]]
    if any(len(f) != 4 or f[0] not in atomic_numbers for f in fields):
        return None
    try:
        positions = np.array([f[1:] for f in fields], dtype=float)
    except ValueError:
        return None
    return Atoms([atomic_numbers[f[0]] for f in fields], positions=positions)


def parse_frames(frames: list[Frame]) -> tuple[list[Atoms], dict[int, str]]:
    """Atoms of each frame (plain xyz text directly, other text through ASE's extxyz
    reader) and, by index, why a frame holds none (an empty Atoms stands in for it)."""
    from io import StringIO

    from ase.io import read

    out: list[Atoms] = []
    failed: dict[int, str] = {}
    for i, frame in enumerate(frames):
        if isinstance(frame, Atoms):
            out.append(frame)
            continue
        if isinstance(frame, Unreadable):
            failed[i] = frame.reason
            out.append(Atoms())
            continue
        atoms = _plain_frame(frame)
        if atoms is None:
            try:
                atoms = read(StringIO(frame), format="extxyz")
            except Exception as exc:  # ASE's reader raises many kinds for a malformed frame
                failed[i] = f"malformed frame ({type(exc).__name__}: {exc})"
                atoms = Atoms()
        out.append(atoms)
    return out, failed


def _file_frames(path: Path, index: str | None) -> Iterator[tuple[str, Frame]]:
    """The frames of one file; an ``Unreadable`` one for a path that is not a regular file
    (never opened: a FIFO would block) and for the rest of a file ASE cannot read on."""
    problem = regular_file_problem(path)
    if problem:
        yield str(path), Unreadable(problem)
        return
    if index is None and path.suffix in XYZ_SUFFIXES:
        yield from _xyz_text_frames(path)
        return

    from ase.io import iread

    k = 0
    try:
        for k, atoms in enumerate(iread(path, index=index if index is not None else ":")):
            yield f"{path}@{k}" if index is None else f"{path}@{index}#{k}", atoms
    except Exception as exc:  # ASE's readers raise many kinds for a corrupt file
        label = f"{path}@{k + 1}" if index is None else f"{path}@{index}"
        yield label, Unreadable(f"cannot read on ({type(exc).__name__}: {exc})")


def _database_rows(url: str, selection: str | None) -> Iterator[tuple[str, Atoms]]:
    from ase_au20.database import connect

    try:
        for row in connect(url).select(selection, include_data=False):
            yield f"{shown_url(url)}@id={row.id}", row.toatoms()
    except (KeyError, SyntaxError) as exc:
        raise ValueError(f"{shown_url(url)}: bad selection {selection!r} ({exc})") from None


def stream_frames(sources: list[str | os.PathLike[str]]) -> Iterator[tuple[str, Frame]]:
    """(label, frame) of every structure of ``sources``, in order: the label says where it
    came from (``file@frame``, ``URL@id=N``), the frame is Atoms or xyz text."""
    for source in sources:
        kind, text, index = source_kind(source)
        if kind == "database":
            yield from _database_rows(text, index)
        elif kind == "folder":
            for entry in sorted(p for p in Path(text).iterdir() if p.suffix in FOLDER_SUFFIXES):
                yield from _file_frames(entry, None)
        else:
            yield from _file_frames(Path(text), index)


def describe_sources(sources: list[str | os.PathLike[str]]) -> list[str]:
    """Each source as an absolute path (with its ``@`` part) or as the URL given: the same
    inputs give the same description wherever the command is run from."""
    described = []
    for source in sources:
        kind, text, index = source_kind(source)
        where = shown_url(text) if "://" in text else str(Path(text).absolute())
        described.append(where if index is None else f"{where}@{index}")
    return described


def source_states(sources: list[str | os.PathLike[str]]) -> list[str]:
    """What each source holds now, cheaply: size and modification time of a file (of every
    structure file of a folder, hashed), so that a changed input is a new screen run, not a
    resumed one. A server database has no such state here ("server")."""
    states = []
    for source in sources:
        kind, text, _ = source_kind(source)
        path = Path(text)
        if "://" in text:
            states.append("server")
        elif kind == "folder":
            digest = hashlib.sha256()
            for entry in sorted(path.iterdir()):
                if entry.suffix in FOLDER_SUFFIXES and entry.is_file():
                    info = entry.stat()
                    digest.update(f"{entry.name}:{info.st_size}:{info.st_mtime_ns};".encode())
            states.append(digest.hexdigest()[:16])
        else:
            info = path.stat()
            states.append(f"{info.st_size}:{info.st_mtime_ns}")
    return states
