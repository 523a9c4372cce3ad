"""Structures one at a time from extended xyz, .traj, xyz folders and ASE database URLs.

Screening inputs hold up to millions of structures, so they are read lazily (``ase.io.iread``
and database cursors): memory does not grow with the input. Every frame of a file is read
unless ``file@index`` says otherwise; a database ``URL@selection`` gives every row it selects.
Frames of whole ``.xyz``/``.extxyz`` files come as their text, split at the atom-count
lines and parsed where they are used (:func:`parse_frames`), so that the parsing runs on the
screen's workers rather than in the one process that reads the stream.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from ase_au20.database.labelled_inputs import FOLDER_SUFFIXES, source_kind
from ase_au20.database.store import shown_url

XYZ_SUFFIXES = (".xyz", ".extxyz")
Frame = Atoms | str  # a parsed structure, or one frame of (extended) xyz text


def _xyz_text_frames(path: Path) -> Iterator[tuple[str, str]]:
    """Each frame of an (extended) xyz file as its text: count line, comment, atom lines."""
    with path.open() as handle:
        k = 0
        for count_line in handle:
            if not count_line.strip():
                continue  # blank lines between frames, as ASE allows
            try:
                n_atoms = int(count_line.split()[0])
            except ValueError:
                raise ValueError(
                    f"{path}: frame {k} starts with {count_line.strip()[:40]!r}, not an atom count"
                ) from None
            lines = [count_line, *(next(handle, "") for _ in range(n_atoms + 1))]
            if not lines[-1]:
                raise ValueError(f"{path}: frame {k} ends early ({n_atoms} atoms announced)")
            yield f"{path}@{k}", "".join(lines)
            k += 1


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


def parse_frames(frames: list[Frame]) -> list[Atoms]:
    """Atoms of each frame: plain xyz text directly, other text through ASE's extxyz reader."""
    from io import StringIO

    from ase.io import read

    out: list[Atoms] = []
    for frame in frames:
        if isinstance(frame, Atoms):
            out.append(frame)
            continue
        atoms = _plain_frame(frame)
        out.append(atoms if atoms is not None else read(StringIO(frame), format="extxyz"))
    return out


def _file_frames(path: Path, index: str | None) -> Iterator[tuple[str, Frame]]:
    if index is None and path.suffix in XYZ_SUFFIXES:
        yield from _xyz_text_frames(path)
        return

    from ase.io import iread

    try:
        for k, atoms in enumerate(iread(path, index=index if index is not None else ":")):
            yield f"{path}@{k}" if index is None else f"{path}@{index}#{k}", atoms
    except (ValueError, KeyError, IndexError, OSError, StopIteration) as exc:
        raise ValueError(f"{path}: cannot read structures ({type(exc).__name__}: {exc})") from exc


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
