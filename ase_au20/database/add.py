"""Adding newly labelled structures to an existing database without touching its rows.

New rows are labelled against the stored metadata (energy reference, bucket edges,
outlier centre/scale, duplicate tolerance) so existing labels stay valid. A structure
whose fingerprint matches an existing row (or an earlier one of the same batch) within the
duplicate tolerance is reported, not added twice. New duplicate groups get a split drawn
group-aware with the build's fractions, so `train --db` learns from the train rows among
them and `evaluate` scores the test rows. The read-modify-write runs under the database's
writer lock, so concurrent `db add` runs neither duplicate rows nor merge groups falsely.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ase_au20.database.build import split_implausible
from ase_au20.database.groups import duplicate_groups
from ase_au20.database.labelled_inputs import UNASSIGNED_ID, read_labelled
from ase_au20.database.labels import assign_buckets, robust_outliers
from ase_au20.database.migrate import require_migrated
from ase_au20.database.rows import load_rows
from ase_au20.database.splits import extend_split
from ase_au20.database.store import (
    connect,
    dataset_hash,
    is_server_url,
    row_key_value_pairs,
    shown_url,
    write_rows,
)
from ase_au20.database.writer_lock import writer_lock
from ase_au20.database.xyz import N_ATOMS, BadFile, Isomer
from ase_au20.geometry.fingerprint import fingerprint_matrix, max_deviation

REQUIRED_METADATA = (
    "energy_reference",
    "bucket_edges",
    "delta_e_median",
    "delta_e_mad",
    "duplicate_tolerance",
)


@dataclass
class Match:
    """A new structure left out because an existing (or earlier new) row has its geometry."""

    source: str
    cluster_id: int  # the row it matches
    distance: float  # Å, fingerprint distance
    energy_difference: float  # eV, new label − stored label

    def __str__(self) -> str:
        return (
            f"{self.source} matches isomer {self.cluster_id} ({self.distance:.4f} Å; "
            f"labels differ by {self.energy_difference:+.6f} eV): not added"
        )


@dataclass
class AddReport:
    """What `db add` did: rows added (with their splits), files skipped, matches."""

    n_added: int
    bad_files: list[BadFile]
    already_present: list[str]
    matches: list[Match] = field(default_factory=list)
    added_ids: list[int] = field(default_factory=list)
    split_sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n_warnings(self) -> int:
        """Malformed files plus notes (matches and ids already present are not warnings)."""
        return len(self.bad_files) + len(self.notes)


def _open_au20_database(db_url: str | os.PathLike[str]):
    """The database and its metadata; ValueError unless it is an ase-au20 database."""
    if not is_server_url(db_url) and not Path(db_url).is_file():
        raise ValueError(f"database not found: {shown_url(db_url)} (create it with `db build`)")
    db = connect(db_url)
    metadata = dict(db.metadata)
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(
            f"{shown_url(db_url)} is not an ase-au20 database (metadata lacks {', '.join(missing)})"
        )
    return db, metadata


def _unique_ids(isomers: list[Isomer], known: set[int]) -> tuple[list[Isomer], list[BadFile]]:
    """Give unassigned isomers the next free ids; a BadFile for an id repeated in the batch."""
    taken = set(known) | {i.cluster_id for i in isomers if i.cluster_id != UNASSIGNED_ID}
    next_id = max(taken, default=-1) + 1
    out, bad, seen = [], [], {}
    for isomer in isomers:
        cluster_id = isomer.cluster_id
        if cluster_id == UNASSIGNED_ID:
            cluster_id, next_id = next_id, next_id + 1
        elif cluster_id in seen:
            reason = f"id {cluster_id} already read from {seen[cluster_id]}"
            bad.append(BadFile(isomer.source, reason))
            continue
        seen[cluster_id] = isomer.source
        out.append(Isomer(cluster_id, isomer.energy, isomer.atoms, isomer.source, isomer.level))
    return out, bad


def _match_geometries(
    isomers: list[Isomer],
    old_fps: np.ndarray,
    old_ids: np.ndarray,
    old_energies: np.ndarray,
    tol: float,
) -> tuple[list[Isomer], list[Match]]:
    """Isomers whose fingerprint is new, and a Match for each one seen before (in order)."""
    fps = [*old_fps]
    ids, energies = [*old_ids.tolist()], [*old_energies.tolist()]
    kept, matches = [], []
    if not isomers:
        return kept, matches
    new_fps = fingerprint_matrix([i.atoms for i in isomers])
    for isomer, fp in zip(isomers, new_fps, strict=True):
        if fps:
            dist = max_deviation(fp[None], np.asarray(fps))[0]
            closest = int(dist.argmin())
            if dist[closest] < tol:
                matches.append(
                    Match(
                        isomer.source,
                        ids[closest],
                        float(dist[closest]),
                        isomer.energy - energies[closest],
                    )
                )
                continue
        kept.append(isomer)
        fps.append(fp)
        ids.append(isomer.cluster_id)
        energies.append(isomer.energy)
    return kept, matches


def add_to_database(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    db_url: str | os.PathLike[str],
    strict: bool = False,
    progress: bool = False,
    level: str | None = None,
) -> AddReport:
    """Append the labelled structures of ``sources`` (see ``labelled_inputs``) that are new;
    each row records the level of theory its frame names (``label`` writes it), else
    ``level``, else the database's."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    _open_au20_database(db_url)  # refuse a wrong database before reading the inputs
    isomers, bad = read_labelled(list(sources), progress=progress)
    with writer_lock(db_url):
        # a fresh connection: ASE caches the metadata it read, and another writer may have
        # changed it since (a stale copy written back would undo that writer's update)
        db, metadata = _open_au20_database(db_url)
        require_migrated(db, db_url)
        old = load_rows(db)
        centre = float(np.median(old.energies)) / N_ATOMS if len(old) else None
        isomers, implausible = split_implausible(isomers, centre)
        bad += implausible
        if strict and bad:
            raise ValueError(
                f"{len(bad)} rejected input(s) (strict mode):\n" + "\n".join(str(b) for b in bad)
            )
        if not isomers and not bad:
            raise ValueError(f"no labelled structure in {', '.join(map(str, sources))}")
        known = set(old.ids.tolist())
        already = [i.source for i in isomers if i.cluster_id in known]
        isomers = [i for i in isomers if i.cluster_id not in known]
        isomers, repeated = _unique_ids(isomers, known)
        bad += repeated
        tol = float(metadata["duplicate_tolerance"])
        isomers, matches = _match_geometries(
            isomers, fingerprint_matrix(old.atoms), old.ids, old.energies, tol
        )
        report = AddReport(0, bad, already, matches)
        if not isomers:
            return report
        _write_new_rows(db, metadata, old, isomers, report, level)
    return report


def _write_new_rows(
    db, metadata: dict, old, isomers: list[Isomer], report: AddReport, level: str | None
) -> None:
    """Label, group and split the new isomers and write them with the updated metadata;
    each row's ``level`` is its file's, else ``level``, else the database's."""
    energies = np.array([i.energy for i in isomers])
    reference = float(metadata["energy_reference"])
    delta_e = energies - reference
    if delta_e.min() < 0:
        report.notes.append(
            f"{int((delta_e < 0).sum())} new isomer(s) below the energy reference "
            f"{reference:.6f} eV (negative delta_e; the reference is kept)"
        )
    all_atoms = [*old.atoms, *(i.atoms for i in isomers)]
    all_energies = np.concatenate([old.energies, energies])
    groups = duplicate_groups(
        fingerprint_matrix(all_atoms),
        tol=float(metadata["duplicate_tolerance"]),
        existing=old.groups,
    )[len(old) :]
    seed = int(metadata.get("split_parameters", {}).get("seed", 0) or 0)
    seed += int(metadata.get("n_added", 0))  # a different draw for every batch
    assignment = extend_split(old.splits, old.folds, groups, seed=seed)
    buckets = assign_buckets(delta_e, metadata["bucket_edges"])
    outliers = robust_outliers(
        delta_e, float(metadata["delta_e_median"]), float(metadata["delta_e_mad"])
    )
    levels = [i.level or level or metadata.get("level", "") for i in isomers]
    others = sorted({lv for lv in levels if lv and lv != metadata.get("level", lv)})
    if others:
        report.notes.append(
            f"labels at level {', '.join(others)} join a database at level "
            f"{metadata['level']}: select rows by `level` to train a model of one level"
        )
    kvps = [
        row_key_value_pairs(i.cluster_id, de, b, g, o, s, f, i.source, lv)
        for i, de, b, g, o, s, f, lv in zip(
            isomers,
            delta_e,
            buckets,
            groups,
            outliers,
            assignment.splits,
            assignment.folds,
            levels,
            strict=True,
        )
    ]
    ids = [*old.ids.tolist(), *(i.cluster_id for i in isomers)]
    metadata["dataset_hash"] = dataset_hash(ids, all_energies, all_atoms)
    metadata["n_added"] = int(metadata.get("n_added", 0)) + len(isomers)
    with db:
        write_rows(db, [i.atoms for i in isomers], kvps)
        db.metadata = metadata
    report.n_added = len(isomers)
    report.added_ids = [i.cluster_id for i in isomers]
    names, counts = np.unique(assignment.splits, return_counts=True)
    report.split_sizes = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
