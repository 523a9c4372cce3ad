"""The labelled corpus: reference energies *and forces* of many geometries beside the isomers.

A corpus row is a label (a row's ``energy`` and ``forces``, from the reference) of a
structure that is not an isomer: a rattled isomer, an MD frame, a relaxation step. It has no
``cluster_id`` (the isomer readers skip it) and carries ``family`` (how it was drawn),
``parent`` (the isomer it descends from, -1 for none), ``source`` (the task that made it,
one per trajectory or batch, the unit `sample` resumes by), ``split`` (its parent's) and
``level``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.core import Database

from ase_au20.database.store import connect

NO_PARENT = -1
ISOMER_FAMILY = "isomer"  # the family name of the database's isomers beside the corpus's


@dataclass
class Corpus:
    """Labelled frames of one cluster size; every field has one entry per frame."""

    positions: np.ndarray  # (n, N, 3) Å
    energies: np.ndarray  # (n,) eV, the reference's
    forces: np.ndarray  # (n, N, 3) eV/Å, the reference's
    families: np.ndarray  # (n,) str
    parents: np.ndarray  # (n,) int, NO_PARENT for none
    splits: np.ndarray  # (n,) str
    sources: np.ndarray  # (n,) str
    levels: np.ndarray  # (n,) str, the level of theory of each label

    def __len__(self) -> int:
        return len(self.energies)

    def subset(self, selection: np.ndarray | Sequence[int] | Sequence[bool]) -> Corpus:
        """The frames picked by a boolean mask or integer indices."""
        index = np.asarray(selection)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return Corpus(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def atoms(self, i: int) -> Atoms:
        """Frame ``i`` as Atoms with its labels in a SinglePointCalculator."""
        atoms = Atoms(f"Au{self.positions.shape[1]}", positions=self.positions[i])
        atoms.calc = SinglePointCalculator(atoms, energy=self.energies[i], forces=self.forces[i])
        return atoms

    @classmethod
    def concatenate(cls, parts: Sequence[Corpus]) -> Corpus:
        """One corpus of ``parts`` in order."""
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


def _open(db: Database | str | os.PathLike[str]) -> Database:
    """An open database; a path that does not exist is an error, not a new empty file."""
    if isinstance(db, Database):
        return db
    if "://" not in str(db) and not os.path.isfile(db):
        raise ValueError(f"database not found: {db}")
    return connect(db)


def load_corpus(
    db: Database | str | os.PathLike[str],
    split: str | Sequence[str] | None = None,
    families: Sequence[str] | None = None,
) -> Corpus:
    """The corpus rows of ``db``, optionally of some splits and families, in row order."""
    db = _open(db)
    splits = None if split is None else {split} if isinstance(split, str) else set(split)
    wanted = set(families) if families is not None else None
    # one split is a query the database answers itself (most callers want one)
    query = {"split": split} if isinstance(split, str) else {}
    rows = [
        row
        for row in db.select("family", include_data=False, **query)
        if (splits is None or row.split in splits) and (wanted is None or row.family in wanted)
    ]
    if not rows:
        return _empty()
    return Corpus(
        positions=np.stack([row.positions for row in rows]),
        energies=np.array([row.energy for row in rows], dtype=float),
        forces=np.stack([row.forces for row in rows]),
        families=np.array([row.family for row in rows], dtype=str),
        parents=np.array([row.parent for row in rows], dtype=int),
        splits=np.array([row.split for row in rows], dtype=str),
        sources=np.array([row.source for row in rows], dtype=str),
        levels=np.array([row.get("level", "") for row in rows], dtype=str),
    )


def _empty() -> Corpus:
    return Corpus(
        np.zeros((0, 0, 3)),
        np.zeros(0),
        np.zeros((0, 0, 3)),
        np.zeros(0, dtype=str),
        np.zeros(0, dtype=int),
        np.zeros(0, dtype=str),
        np.zeros(0, dtype=str),
        np.zeros(0, dtype=str),
    )


def balanced_by_family(corpus: Corpus, per_family: int) -> Corpus:
    """At most ``per_family`` frames of each family, spread evenly over its rows (the same
    frames every time), so that no family outweighs the others."""
    keep = []
    for name in sorted(set(corpus.families.tolist())):
        rows = np.flatnonzero(corpus.families == name)
        keep.append(rows[np.linspace(0, len(rows) - 1, min(per_family, len(rows))).astype(int)])
    return corpus.subset(np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int))


def check_one_level(corpus: Corpus, level: str | None) -> None:
    """ValueError unless every frame of ``corpus`` is labelled at ``level`` (the isomers'):
    a model never learns two levels of theory as one surface."""
    other = sorted(set(corpus.levels.tolist()) - {level})
    if other:
        raise ValueError(
            f"corpus frames labelled at {', '.join(other)} beside isomers at {level}: a model "
            "learns one level of theory"
        )


def corpus_sources(db: Database) -> set[str]:
    """The ``source`` of every corpus row already in ``db``: the tasks `sample` has done."""
    return {row.source for row in db.select("family", include_data=False)}


def write_frames(
    db: Database,
    positions: np.ndarray,
    energies: np.ndarray,
    forces: np.ndarray,
    keys: dict[str, object],
    per_frame: dict[str, Iterable[object]] | None = None,
) -> None:
    """Write labelled frames as rows in one transaction (a task is in the database whole or
    not at all); ``keys`` go on every row, ``per_frame`` values one per frame."""
    per_frame = {k: list(v) for k, v in (per_frame or {}).items()}
    with db:
        for i, (pos, energy, force) in enumerate(zip(positions, energies, forces, strict=True)):
            atoms = Atoms(f"Au{len(pos)}", positions=pos)
            atoms.calc = SinglePointCalculator(atoms, energy=float(energy), forces=force)
            db.write(atoms, **keys, **{k: v[i] for k, v in per_frame.items()})


def family_table(corpus: Corpus) -> str:
    """Frames per family and split, with each family's energy span and mean |F|."""
    if len(corpus) == 0:
        return "corpus: none (au20-workflow sample adds one)"
    names = sorted(set(corpus.families.tolist()))
    splits = ("train", "val", "calib", "test")
    head = f"{'family':<8}{'frames':>8}" + "".join(f"{s:>7}" for s in splits)
    lines = [
        f"corpus: {len(corpus)} labelled frames with forces",
        head + "   E/atom span (eV)  mean |F| (eV/Å)",
    ]
    for name in names:
        mask = corpus.families == name
        per_atom = corpus.energies[mask] / corpus.positions.shape[1]
        force = np.linalg.norm(corpus.forces[mask], axis=-1).mean()
        counts = "".join(f"{int((corpus.splits[mask] == s).sum()):>7}" for s in splits)
        lines.append(
            f"{name:<8}{int(mask.sum()):>8}{counts}   {per_atom.min():.3f} .. {per_atom.max():.3f}"
            f"   {force:8.3f}"
        )
    return "\n".join(lines)
