"""What a committee is built from (no numerical imports: the CLI reads it for --help)."""

from __future__ import annotations

from dataclasses import dataclass

from ase_au20.settings import setting


@dataclass(frozen=True)
class CommitteeConfig:
    """The members of a committee and the rows that weigh them."""

    members: tuple[str, ...] = setting(
        ("krr", "schnet"),
        "Comma-separated members: registered model names (the shipped models) or trained "
        "model directories.",
    )
    weight_split: str = setting(
        "calib",
        "Rows whose MAE picks the weights (val is in-sample for a KRR trained on train+val).",
        choices=("val", "calib"),
    )
