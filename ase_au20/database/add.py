"""Adding newly labelled xyz files to an existing database without touching its rows.

New rows are labelled against the stored metadata (energy reference, bucket edges,
outlier centre/scale, duplicate tolerance) so existing labels stay valid; they join the
duplicate group of any existing near-duplicate, and get ``split="new"`` and fold -1 so
no model trained on the old splits mistakes them for training or test data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ase_au20.database.groups import ENERGY_TOLERANCE, duplicate_groups
from ase_au20.database.labels import assign_buckets, robust_outliers
from ase_au20.database.rows import NEW_SPLIT, load_rows
from ase_au20.database.store import (
    connect,
    dataset_hash,
    is_server_url,
    row_key_value_pairs,
    write_rows,
)
from ase_au20.database.xyz import BadFile, read_isomers, xyz_files
from ase_au20.geometry.fingerprint import fingerprint_matrix

REQUIRED_METADATA = (
    "energy_reference",
    "bucket_edges",
    "delta_e_median",
    "delta_e_mad",
    "duplicate_tolerance",
)


@dataclass
class AddReport:
    """What `db add` did: rows added, files skipped as bad or already present, group matches."""

    n_added: int
    bad_files: list[BadFile]
    already_present: list[str]
    n_matching_existing: int
    notes: list[str] = field(default_factory=list)

    @property
    def n_warnings(self) -> int:
        """Malformed files plus notes (files already in the db are not warnings)."""
        return len(self.bad_files) + len(self.notes)


def add_to_database(
    xyz_dir: str | os.PathLike[str],
    db_url: str | os.PathLike[str],
    strict: bool = False,
    progress: bool = False,
) -> AddReport:
    """Append the isomers of ``xyz_dir`` whose ids are not yet in the database."""
    if not is_server_url(db_url) and not Path(db_url).is_file():
        raise ValueError(f"database not found: {db_url} (create it with `db build`)")
    db = connect(db_url)
    metadata = dict(db.metadata)
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(
            f"{db_url} is not an ase-au20 database (metadata lacks {', '.join(missing)})"
        )
    files = xyz_files(Path(xyz_dir))
    isomers, bad = read_isomers(files, progress=progress)
    if strict and bad:
        raise ValueError(
            f"{len(bad)} malformed file(s) in {xyz_dir} (strict mode):\n"
            + "\n".join(str(b) for b in bad)
        )
    if not isomers:
        raise ValueError(
            f"no valid xyz file in {xyz_dir} ({len(files)} .xyz file(s) found)"
            + "".join(f"\n{b}" for b in bad)
        )
    old = load_rows(db)
    known = set(old.ids.tolist())
    already = [i.source for i in isomers if i.cluster_id in known]
    isomers = [i for i in isomers if i.cluster_id not in known]
    report = AddReport(0, bad, already, 0)
    if not isomers:
        return report
    energies = np.array([i.energy for i in isomers])
    reference = float(metadata["energy_reference"])
    delta_e = energies - reference
    if delta_e.min() < 0:
        report.notes.append(
            f"{int((delta_e < 0).sum())} new isomer(s) below the energy reference "
            f"{reference:.5f} eV (negative delta_e; the reference is kept)"
        )
    all_atoms = [*old.atoms, *(i.atoms for i in isomers)]
    all_energies = np.concatenate([old.energies, energies])
    groups = duplicate_groups(
        fingerprint_matrix(all_atoms),
        all_energies,
        tol=float(metadata["duplicate_tolerance"]),
        energy_tol=float(metadata.get("duplicate_energy_tolerance", ENERGY_TOLERANCE)),
        existing=old.groups,
    )[len(old) :]
    report.n_matching_existing = int(np.isin(groups, old.groups).sum())
    buckets = assign_buckets(delta_e, metadata["bucket_edges"])
    outliers = robust_outliers(
        delta_e, float(metadata["delta_e_median"]), float(metadata["delta_e_mad"])
    )
    kvps = [
        row_key_value_pairs(i.cluster_id, de, b, g, o, NEW_SPLIT, -1, i.source)
        for i, de, b, g, o in zip(isomers, delta_e, buckets, groups, outliers, strict=True)
    ]
    ids = [*old.ids.tolist(), *(i.cluster_id for i in isomers)]
    metadata["dataset_hash"] = dataset_hash(ids, all_energies, all_atoms)
    metadata["n_added"] = int(metadata.get("n_added", 0)) + len(isomers)
    with db:
        write_rows(db, [i.atoms for i in isomers], kvps)
        db.metadata = metadata
    report.n_added = len(isomers)
    return report
