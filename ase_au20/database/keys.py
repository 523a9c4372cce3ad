"""What each key-value pair of our database rows means, with its unit: the one list that
the web view, ``db info`` and the docs read.

Labels (a row's ``energy``: the DFTB1 reference or an oracle) and predictions (``pred_*``)
are apart by name.
"""

from __future__ import annotations

from typing import NamedTuple


class KeyMeaning(NamedTuple):
    """A short column title, a sentence and a unit ("" when dimensionless)."""

    short: str
    long: str
    unit: str = ""


KEYS: dict[str, KeyMeaning] = {
    # labelled isomers (db build, db add)
    "cluster_id": KeyMeaning("isomer", "Isomer number of the source file (<id>.xyz)"),
    "delta_e": KeyMeaning(
        "ΔE", "DFTB1 energy above the database's energy reference (lowest label)", "eV"
    ),
    "bucket": KeyMeaning("bucket", "ΔE bucket (low / mid / high) for Mondrian intervals"),
    "dup_group": KeyMeaning(
        "dup. group", "Near-duplicate group: rows within the duplicate tolerance share it"
    ),
    "is_outlier": KeyMeaning("outlier", "ΔE far from the median (robust z-score)"),
    "split": KeyMeaning("split", "train / val / calib / test, whole duplicate groups at once"),
    "fold": KeyMeaning("fold", "Cross-validation fold of a train/val row (group-aware)"),
    "source": KeyMeaning("source", "File, database row or workflow the row came from"),
    "level": KeyMeaning(
        "level",
        "Level of theory of the energy label: dftb1-auorg-1-1 (the shipped data), a DFT setting",
    ),
    # the labelled corpus (sample): reference energies and forces of non-isomer geometries
    "family": KeyMeaning(
        "family", "How a corpus frame was drawn: rattle, md, relax or active (a label with forces)"
    ),
    "parent": KeyMeaning("parent", "Isomer a corpus frame descends from (-1: none)"),
    "amplitude": KeyMeaning("σ", "Gaussian rattle amplitude per coordinate", "Å"),
    "temperature": KeyMeaning("T", "Thermostat temperature of the MD that made the frame", "K"),
    "step": KeyMeaning("step", "MD or optimiser step of the frame in its trajectory"),
    # predictions (search, screen, dbio.write_prediction): never a row's energy
    "pred_energy": KeyMeaning("E pred.", "Predicted energy (not a label)", "eV"),
    "pred_uncertainty": KeyMeaning(
        "± pred.", "Half-width of the predicted energy's conformal interval", "eV"
    ),
    "pred_std": KeyMeaning("σ pred.", "Epistemic spread of the prediction", "eV"),
    "pred_lo": KeyMeaning("E lo", "Lower end of the prediction interval", "eV"),
    "pred_hi": KeyMeaning("E hi", "Upper end of the prediction interval", "eV"),
    "confidence": KeyMeaning("confidence", "Coverage the prediction interval targets"),
    "in_domain": KeyMeaning(
        "in domain", "Inside the model's domain of applicability (False: extrapolation)"
    ),
    "model": KeyMeaning("model", "Model that made the prediction"),
    "model_card_sha256": KeyMeaning("card", "SHA-256 of that model's card"),
    "lcb": KeyMeaning("LCB", "Search ranking score E − κ·uncertainty", "eV"),
    "search_rank": KeyMeaning("rank", "Rank among the search's candidates (0: lowest)"),
    "search_run": KeyMeaning("run", "Search run that found the candidate"),
    "matches_cluster_id": KeyMeaning(
        "matches", "Labelled isomer the candidate matches (-1: none, a new structure)"
    ),
    "match_distance": KeyMeaning("match dist.", "Fingerprint distance to that isomer", "Å"),
    "screen_run": KeyMeaning("screen run", "Screening run that wrote the row"),
    "screen_index": KeyMeaning("screen index", "Position of the structure in the screen's input"),
    "converged": KeyMeaning("converged", "The pre-relaxation of a screen reached its fmax"),
}
