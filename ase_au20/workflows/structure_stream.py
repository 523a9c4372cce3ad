"""Structures one at a time from extended xyz, .traj, xyz folders and ASE database URLs.

Screening inputs hold up to millions of structures, so they are read lazily (``ase.io.iread``
and database cursors): memory does not grow with the input. Every frame of a file is read
unless ``file@index`` says otherwise; a database ``URL@selection`` gives every row it selects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ase import Atoms

from ase_au20.database.labelled_inputs import FOLDER_SUFFIXES, source_kind


def _file_frames(path: Path, index: str | None) -> Iterator[tuple[str, Atoms]]:
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
            yield f"{url}@id={row.id}", row.toatoms()
    except (KeyError, SyntaxError) as exc:
        raise ValueError(f"{url}: bad selection {selection!r} ({exc})") from None


def stream_structures(sources: list[str | os.PathLike[str]]) -> Iterator[tuple[str, Atoms]]:
    """(label, Atoms) of every structure of ``sources``, in order; the label says where it
    came from (``file@frame``, ``URL@id=N``)."""
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
        where = text if "://" in text else str(Path(text).absolute())
        described.append(where if index is None else f"{where}@{index}")
    return described
