"""A short plain-text summary of an isomer database, for `db build` and `db info`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_au20.database.rows import ROW_SPLITS, IsomerSet


@dataclass(frozen=True)
class Summary:
    """Counts and ranges that describe a database at a glance."""

    n_rows: int
    energy_min: float
    energy_max: float
    delta_e_max: float
    bucket_sizes: dict[str, int]
    split_sizes: dict[str, int]
    n_groups: int
    n_multi_groups: int
    largest_group: int
    n_outliers: int


def summarize(isomers: IsomerSet) -> Summary:
    """Summary of a loaded isomer set (energies in eV)."""
    if len(isomers) == 0:
        raise ValueError("the database holds no isomer rows")
    _, sizes = np.unique(isomers.groups, return_counts=True)
    return Summary(
        n_rows=len(isomers),
        energy_min=float(isomers.energies.min()),
        energy_max=float(isomers.energies.max()),
        delta_e_max=float(isomers.delta_e.max()),
        bucket_sizes={b: int((isomers.buckets == b).sum()) for b in ("low", "mid", "high")},
        split_sizes={
            s: int((isomers.splits == s).sum())
            for s in ROW_SPLITS
            if s != "new" or (isomers.splits == s).any()
        },
        n_groups=len(sizes),
        n_multi_groups=int((sizes > 1).sum()),
        largest_group=int(sizes.max()),
        n_outliers=int(isomers.is_outlier.sum()),
    )


def format_summary(summary: Summary, metadata: dict | None = None) -> str:
    """Two-column table of the summary (and key metadata when given)."""
    rows = [
        ("isomers", str(summary.n_rows)),
        ("energy range (eV)", f"{summary.energy_min:.5f} .. {summary.energy_max:.5f}"),
        ("ΔE max (eV)", f"{summary.delta_e_max:.4f}"),
        ("buckets low/mid/high", "/".join(str(v) for v in summary.bucket_sizes.values())),
        *((f"split {name}", str(n)) for name, n in summary.split_sizes.items()),
        ("duplicate groups", str(summary.n_groups)),
        ("groups with 2+ members", f"{summary.n_multi_groups} (largest {summary.largest_group})"),
        ("outliers (robust z > 3)", str(summary.n_outliers)),
    ]
    if metadata:
        edges = metadata.get("bucket_edges")
        rows += [
            ("level of theory", str(metadata.get("level", "not recorded"))),
            ("split scheme", str(metadata.get("split_scheme"))),
            ("bucket edges ΔE (eV)", ", ".join(f"{e:.4f}" for e in edges) if edges else "-"),
            ("dataset hash", str(metadata.get("dataset_hash", "-"))[:16]),
        ]
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)
