"""Building an isomer database from a folder of xyz files: parse, label, group, split, write."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ase_au20._version import __version__
from ase_au20.database.groups import duplicate_groups, group_sizes
from ase_au20.database.labels import (
    OUTLIER_Z,
    assign_buckets,
    bucket_edges,
    implausible_energies,
    robust_center_scale,
    robust_outliers,
)
from ase_au20.database.splits import (
    CALIB_FRACTION,
    N_FOLDS,
    TEST_FRACTION,
    VAL_FOLD,
    group_split,
    seed_split,
)
from ase_au20.database.store import (
    KEY_DESCRIPTIONS,
    connect,
    dataset_hash,
    fresh_database,
    is_server_url,
    row_key_value_pairs,
    shown_url,
    temp_path_beside,
    write_rows,
)
from ase_au20.database.writer_lock import writer_lock
from ase_au20.database.xyz import N_ATOMS, BadFile, Isomer, read_isomers, xyz_files
from ase_au20.geometry.conventions import DUPLICATE_TOLERANCE
from ase_au20.geometry.fingerprint import fingerprint_matrix

SPLIT_SCHEMES = ("group", "seed")


@dataclass
class BuildReport:
    """What a build did: rows written, files skipped with reasons, groups, split sizes."""

    db: str
    n_rows: int
    bad_files: list[BadFile]
    n_groups: int
    n_multi_groups: int
    split_sizes: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def n_warnings(self) -> int:
        """Skipped files plus split notes."""
        return len(self.bad_files) + len(self.notes)


def split_implausible(
    isomers: list[Isomer], centre: float | None = None
) -> tuple[list[Isomer], list[BadFile]]:
    """Isomers whose energy is plausible, and a BadFile for each of the others."""
    reasons = implausible_energies(np.array([i.energy for i in isomers]), N_ATOMS, centre)
    good = [i for i, r in zip(isomers, reasons, strict=True) if not r]
    bad = [BadFile(i.source, r) for i, r in zip(isomers, reasons, strict=True) if r]
    return good, bad


# the level of theory of the shipped isomer labels (``../shared/data/dftb``)
SHIPPED_LEVEL = "dftb1-auorg-1-1"


def refuse_existing(db_path: str | os.PathLike[str]) -> None:
    """ValueError if ``db_path`` (a file or server URL) holds rows already."""
    if not is_server_url(db_path):
        path = Path(db_path)
        if not path.is_file() or path.stat().st_size == 0:
            return
    rows = len(connect(db_path))
    if rows:
        raise ValueError(
            f"{shown_url(db_path)} already holds {rows} rows: pass --overwrite to replace it, "
            "or `db add` to extend it"
        )


def build_database(
    xyz_dir: str | os.PathLike[str],
    db_path: str | os.PathLike[str],
    split: str = "group",
    seed_splits: str | os.PathLike[str] | None = None,
    seed: int = 0,
    strict: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    level: str = SHIPPED_LEVEL,
) -> BuildReport:
    """Build the isomer database at ``db_path``; with ``overwrite`` rebuild one that holds
    rows already, replacing it atomically (ValueError without it: nothing is destroyed
    unasked).

    ``split="seed"`` needs ``seed_splits`` (default: ``splits_seed`` beside ``xyz_dir``).
    With ``strict`` any malformed file raises ValueError before anything is written.
    """
    if split not in SPLIT_SCHEMES:
        raise ValueError(f"unknown split scheme {split!r}: use one of {', '.join(SPLIT_SCHEMES)}")
    if not overwrite:
        refuse_existing(db_path)
    if not is_server_url(db_path):
        temp_path_beside(db_path)  # fail before the slow part if the output is unwritable
    xyz_dir = Path(xyz_dir)
    files = xyz_files(xyz_dir)
    if split == "seed":
        seed_splits = Path(seed_splits) if seed_splits else xyz_dir.parent / "splits_seed"
    isomers, bad = read_isomers(files, progress=progress)
    isomers, implausible = split_implausible(isomers)
    bad = bad + implausible
    if strict and bad:
        raise ValueError(
            f"{len(bad)} malformed file(s) in {xyz_dir} (strict mode):\n"
            + "\n".join(str(b) for b in bad)
        )
    if not isomers:
        raise ValueError(
            f"no valid Au{N_ATOMS} xyz file in {xyz_dir} ({len(files)} .xyz file(s) found)"
            + "".join(f"\n{b}" for b in bad)
        )
    ids = np.array([i.cluster_id for i in isomers])
    energies = np.array([i.energy for i in isomers])
    atoms = [i.atoms for i in isomers]
    reference = float(energies.min())
    delta_e = energies - reference
    edges = bucket_edges(delta_e)
    buckets = assign_buckets(delta_e, edges)
    median, mad = robust_center_scale(delta_e)
    outliers = robust_outliers(delta_e, median, mad)
    groups = duplicate_groups(fingerprint_matrix(atoms))
    if split == "group":
        assignment = group_split(groups, buckets, seed=seed)
    else:
        assignment = seed_split(ids, groups, seed_splits, seed=seed)
    kvps = [
        row_key_value_pairs(*values)
        for values in zip(
            ids,
            delta_e,
            buckets,
            groups,
            outliers,
            assignment.splits,
            assignment.folds,
            [i.source for i in isomers],
            [i.level or level for i in isomers],
            strict=True,
        )
    ]
    metadata = {
        "units": {"energy": "eV", "length": "Å"},
        "level": level,
        "dataset_hash": dataset_hash(ids, energies, atoms),
        "split_scheme": split,
        "split_parameters": {
            "seed": seed,
            "test_fraction": TEST_FRACTION if split == "group" else None,
            "calib_fraction": CALIB_FRACTION,
            "n_folds": N_FOLDS,
            "val_fold": VAL_FOLD,
            "seed_splits": str(seed_splits) if split == "seed" else None,
        },
        "energy_reference": reference,
        "bucket_edges": edges,
        "duplicate_tolerance": DUPLICATE_TOLERANCE,
        "delta_e_median": median,
        "delta_e_mad": mad,
        "outlier_z": OUTLIER_Z,
        "n_atoms": N_ATOMS,
        "ase_au20_version": __version__,
    }
    metadata["key_descriptions"] = KEY_DESCRIPTIONS
    with writer_lock(db_path):
        if not overwrite:  # another process may have written it meanwhile
            refuse_existing(db_path)
        with fresh_database(db_path) as db:
            write_rows(db, atoms, kvps)
            db.metadata = metadata
    sizes = group_sizes(groups)
    return BuildReport(
        db=str(db_path),
        n_rows=len(isomers),
        bad_files=bad,
        n_groups=len(sizes),
        n_multi_groups=sum(1 for n in sizes.values() if n > 1),
        split_sizes={
            name: int((assignment.splits == name).sum())
            for name in ("train", "val", "calib", "test")
        },
        notes=assignment.notes,
    )
