"""Reading structures the way ASE does: any format, ``file@index``, the last frame by default.

Errors name the file and the problem. Database rows are read as ``URL@selection``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms

from ase_au20.database.labelled_inputs import FOLDER_SUFFIXES, read_frames, source_kind
from ase_au20.database.store import shown_url
from ase_au20.validation import check_cluster


def _frames(path: Path, index: str | None) -> list[Atoms]:
    """Frames of ``path`` at ``index`` (ASE syntax; the last one by default)."""
    try:
        frames = read_frames(path, index)
    except Exception as exc:  # ASE raises many types for malformed files
        raise ValueError(f"{path}: cannot read a structure ({type(exc).__name__}: {exc})") from exc
    if not frames or not all(isinstance(a, Atoms) for a in frames):
        raise ValueError(f"{path}: file holds no structure")
    return frames


def read_cluster(source: str | os.PathLike) -> Atoms:
    """One checked Au cluster: ``file`` (its last frame), ``file@index`` or ``db@selection``."""
    structures = read_structures([source])
    if len(structures) != 1:
        raise ValueError(
            f"{os.fspath(source)}: selects {len(structures)} structures, one is needed"
        )
    atoms = structures[0][1]
    try:
        check_cluster(atoms)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(source)}: {exc}") from exc
    atoms.info.clear()
    atoms.calc = None
    return atoms


def read_structures(sources: list[str | os.PathLike]) -> list[tuple[str, Atoms]]:
    """(name, Atoms) of every structure in ``sources``: folders (their xyz/extxyz/traj files,
    last frame each), ``file@index`` and database ``URL@selection`` (every row by default)."""
    out: list[tuple[str, Atoms]] = []
    for source in sources:
        kind, text, index = source_kind(source)
        path = Path(text)
        if kind == "database":
            from ase_au20.database import connect

            try:
                rows = list(connect(text).select(index))
            except (ValueError, KeyError, SyntaxError) as exc:
                raise ValueError(f"{source}: bad selection {index!r} ({exc})") from None
            out += [(f"{shown_url(text)}@id={row.id}", row.toatoms()) for row in rows]
        elif kind == "folder":
            for entry in sorted(p for p in path.iterdir() if p.suffix in FOLDER_SUFFIXES):
                out += [(entry.name, a) for a in _frames(entry, None)]
        else:
            frames = _frames(path, index)
            if len(frames) == 1:
                out.append((path.name, frames[0]))
            else:
                out += [(f"{path.name}@{k}", a) for k, a in enumerate(frames)]
    return out
