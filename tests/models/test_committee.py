"""The committee: weights chosen on held-out rows, its spread, its card and its CLI verb."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from ase_au20.cli import main
from ase_au20.database import load_rows
from ase_au20.models import load_model
from ase_au20.models.committee.config import CommitteeConfig
from ase_au20.models.committee.model import CommitteeModel
from ase_au20.models.committee.training import best_weights, fit_committee, weight_grid


def test_weight_grid_covers_the_simplex() -> None:
    grid = weight_grid(3, step=0.5)
    assert grid.tolist() == [
        [0.0, 0.0, 1.0],
        [0.0, 0.5, 0.5],
        [0.0, 1.0, 0.0],
        [0.5, 0.0, 0.5],
        [0.5, 0.5, 0.0],
        [1.0, 0.0, 0.0],
    ]
    assert np.allclose(weight_grid(2).sum(axis=1), 1.0) and len(weight_grid(2)) == 21


def test_best_weights_recover_a_known_mixture() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    a, b = truth + rng.normal(0, 0.3, 200), truth + rng.normal(0, 0.3, 200)
    assert best_weights(np.stack([a, b]), truth)[0] == pytest.approx(0.5, abs=0.15)
    # one exact member still leaves the other a step: the spread stays a disagreement
    assert best_weights(np.stack([truth, b]), truth).tolist() == [0.95, 0.05]


def test_spread_is_the_weighted_member_disagreement(tiny_krr) -> None:
    class Constant:
        has_spread = False

        def __init__(self, value):
            self.value, self.card = value, {}

        def predict(self, structures, forces=False):
            n = len(structures)
            out = {"energy": np.full(n, self.value), "energies": np.full((n, 20), self.value / 20)}
            if forces:
                out["forces"] = np.full((n, 20, 3), self.value)
            return out

    committee = CommitteeModel([Constant(1.0), Constant(3.0)], [0.75, 0.25], ["a", "b"])
    out = committee.predict([None, None], forces=True)
    assert out["energy"].tolist() == [1.5, 1.5]
    assert out["energy_std"][0] == pytest.approx(np.sqrt(0.75 * 0.25) * 2.0)
    assert out["forces"][0, 0, 0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="sum to 1"):
        CommitteeModel([Constant(1.0), Constant(3.0)], [0.7, 0.7], ["a", "b"])


def test_fit_committee_on_the_synthetic_database(
    synthetic_db, tiny_krr, tmp_path, monkeypatch
) -> None:
    """Two KRR members (one trained twice as strongly regularised) through the CLI verb."""
    from ase_au20.models.krr.training import train_krr

    weak = train_krr(
        synthetic_db, tmp_path / "weak", tiny_krr_search_with_lambda(1e-1), progress=False
    )
    result = CliRunner().invoke(
        main,
        [
            "train",
            "committee",
            "--db",
            str(synthetic_db),
            "--members",
            f"{tiny_krr.directory},{weak.directory}",
            "--out",
            str(tmp_path / "committee"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "weights (calib MAE" in result.output
    committee = load_model(tmp_path / "committee")
    weights = committee.card["hyperparameters"]["weights"]
    calib = load_rows(synthetic_db, "calib")
    members = np.stack([m.predict(calib.atoms)["energy"] for m in committee.members])
    assert np.isclose(sum(weights), 1.0)
    assert np.abs(np.array(weights) @ members - calib.energies).mean() == pytest.approx(
        np.abs(best_weights(members, calib.energies) @ members - calib.energies).mean()
    )
    assert committee.card["conformal"]["normalised"] is True
    assert committee.card["metrics"]["weights"]["split"] == "calib"


def tiny_krr_search_with_lambda(lam: float):
    from ase_au20.models.krr.search import KRRSearch

    return KRRSearch(r_cut=(5.0,), n_max=(3,), l_max=(2,), sigma=(0.5,), lam=(lam,))


def test_a_changed_member_is_refused(synthetic_db, tiny_krr, tmp_path) -> None:
    import model_files

    from ase_au20.models.krr.training import train_krr

    other = train_krr(synthetic_db, tmp_path / "m2", tiny_krr_search_with_lambda(1e-2), False)
    members = CommitteeConfig((str(tiny_krr.directory), str(other.directory)))
    fit_committee(synthetic_db, tmp_path / "c", members)
    card = model_files.read(other.directory)
    card["metrics"]["note"] = "retrained"
    model_files.reseal(other.directory, card)
    with pytest.raises(ValueError, match="not the model this committee was calibrated with"):
        load_model(tmp_path / "c")


def test_shipped_committee_beats_its_members_on_the_fixed_test_set(shipped_model) -> None:
    card = load_model(shipped_model("committee")).card
    test = card["metrics"]["test"]
    krr = load_model(shipped_model("krr")).card["metrics"]["test"]
    assert test["mae"] < krr["mae"]
    assert 0.85 <= test["intervals"]["0.9"]["mondrian"]["coverage"] <= 0.97


def test_a_member_trained_on_the_calib_rows_is_refused(
    synthetic_xyz_dir, tiny_krr, tmp_path
) -> None:
    from ase_au20.database import build_database

    other_split = tmp_path / "seed1.db"  # another draw: some of its calib rows trained tiny_krr
    build_database(synthetic_xyz_dir, other_split, seed=1)
    with pytest.raises(ValueError, match=r"was trained on \d+ of the calib rows .* retrain"):
        members = CommitteeConfig((str(tiny_krr.directory),) * 2)
        fit_committee(other_split, tmp_path / "c", members)
