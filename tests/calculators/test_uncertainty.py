"""Normalised conformal intervals: the half-width scales with the model's own spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ase_au20.models.domain import attach_domain


@pytest.fixture(scope="module")
def normalised_krr_dir(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sparse ζ = 3 KRR (predictive std available) with a spread-normalised calibrator."""
    from ase_au20.database import connect, load_rows
    from ase_au20.models.card import new_card
    from ase_au20.models.conformal import ConformalCalibrator
    from ase_au20.models.krr.model import KRRModel
    from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings

    meta = connect(synthetic_db).metadata
    train, every = load_rows(synthetic_db, "train"), load_rows(synthetic_db)
    settings = SoapSettings(r_cut=5.0, n_max=3, l_max=2, sigma=0.5)
    units = SoapFeaturizer(settings).normalised_many(train.atoms)
    model = KRRModel.fit(units, train.energies, settings, zeta=3, lam=1e-3, n_sparse=60)
    out = model.predict(every.atoms)
    calibrator = ConformalCalibrator.fit(
        out["energy"],
        every.energies,
        meta["energy_reference"],
        meta["bucket_edges"],
        spread=out["energy_std"],
    )
    model.card = new_card(
        "krr",
        model.architecture,
        model.hyperparameters,
        settings.to_dict(),
        meta["energy_reference"],
        meta["bucket_edges"],
        train.ids,
        "group",
        conformal=calibrator.to_dict(),
    )
    directory = model.save(tmp_path_factory.mktemp("normalised_krr"))
    attach_domain(directory, train.atoms)
    return directory


def test_half_width_is_quantile_times_spread(normalised_krr_dir, rattled_au20) -> None:
    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.structures import au20_ground_state

    calc = KRRAu20(model=normalised_krr_dir, confidence=0.9, mondrian=False)
    assert calc.card["conformal"]["normalised"]
    far = au20_ground_state()
    far.positions *= 1.15  # stretched: further from the training data
    structures = [rattled_au20, far]
    out = calc.predict(structures, properties=("energy", "energy_uncertainty", "domain_score"))
    spread = calc.model.predict(structures)["energy_std"]
    q = calc.card["conformal"]["global"]["0.9"]
    grown = np.maximum(out["domain_score"], 1.0) ** 2  # outside the domain: × score²
    np.testing.assert_allclose(out["energy_uncertainty"], q * spread * grown, rtol=1e-9)
    assert out["energy_uncertainty"][0] != pytest.approx(out["energy_uncertainty"][1])
    single = calc.get_property("energy_uncertainty", rattled_au20)
    assert single == pytest.approx(out["energy_uncertainty"][0], rel=1e-9)


def test_energy_std_is_a_result_only_for_models_with_a_spread(
    normalised_krr_dir, shipped_model, rattled_au20
) -> None:
    from ase.calculators.calculator import PropertyNotImplementedError

    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.calculators.schnet import SchNetAu20
    from ase_au20.models.schnet.network import SchNetModel

    krr = KRRAu20(model=normalised_krr_dir)
    assert "energy_std" in krr.implemented_properties
    expected = krr.model.predict([rattled_au20])["energy_std"][0]
    assert expected > 0
    assert krr.get_property("energy_std", rattled_au20) == pytest.approx(expected, rel=1e-9)
    batch = krr.predict([rattled_au20, rattled_au20], properties=("energy_std",))
    np.testing.assert_allclose(batch["energy_std"], [expected, expected], rtol=1e-9)

    ensemble = SchNetAu20(model=shipped_model("schnet"), device="cpu")
    assert len(ensemble.model) == 3 and "energy_std" in ensemble.implemented_properties
    assert ensemble.get_property("energy_std", rattled_au20) > 0
    networks = SchNetModel.load(shipped_model("schnet"), device="cpu").networks
    one = SchNetModel(
        networks[:1],
        ensemble.model.atom_mean,
        ensemble.model.atom_std,
        card={**ensemble.card, "conformal": None},
        device="cpu",
    )
    one.domain = ensemble.domain
    single_network = SchNetAu20(model=one, device="cpu")
    assert "energy_std" not in single_network.implemented_properties
    with pytest.raises(PropertyNotImplementedError):
        single_network.get_property("energy_std", rattled_au20)
    with pytest.raises(ValueError, match="unknown properties"):
        single_network.predict([rattled_au20], properties=("energy_std",))


def test_workflows_ask_for_the_intervals_of_the_family_they_visit(
    tiny_schnet_dir: Path, synthetic_db: Path, tmp_path: Path
) -> None:
    from ase.calculators.emt import EMT

    from ase_au20.calculators.base import intervals_for
    from ase_au20.calculators.schnet import SchNetAu20
    from ase_au20.database import load_rows
    from ase_au20.models.conformal import ConformalCalibrator
    from ase_au20.workflows.md import run_md
    from ase_au20.workflows.relax import relax
    from ase_au20.workflows.search import SearchSettings
    from ase_au20.workflows.search_run import run_search

    calc = SchNetAu20(tiny_schnet_dir, device="cpu")
    families = np.repeat(["isomer", "md", "minima", "active"], 400)
    scale = np.select(
        [families == "md", families == "minima", families == "active"], [1.0, 3.0, 2.0], 0.1
    )
    residuals = np.random.default_rng(0).normal(0.0, 1.0, len(families)) * scale
    calc.calibrator = ConformalCalibrator.fit(
        np.zeros(len(families)), residuals, 0.0, (1.0, 2.0), families=families
    )
    own = {
        name: float(calc.calibrator.half_width(np.zeros(1), 0.9, family=name)[0])
        for name in ("isomer", "md", "minima", "active")
    }
    atoms = load_rows(synthetic_db, "train").atoms[0]  # inside the domain: no widening
    pooled = calc.get_property("energy_uncertainty", atoms)
    with intervals_for(calc, "md"):
        assert calc.get_property("energy_uncertainty", atoms) == pytest.approx(own["md"])
    assert calc.family is None
    assert calc.get_property("energy_uncertainty", atoms) == pytest.approx(pooled)
    calc.set(family="isomer")  # a family chosen by the user is kept
    with intervals_for(calc, "md"):
        assert calc.get_property("energy_uncertainty", atoms) == pytest.approx(own["isomer"])
    calc.set(family=None)
    with intervals_for(EMT(), "md"):  # not one of ours: left alone
        pass
    md = run_md(atoms, calc, "nve", temperature=300, steps=3, timestep=1.0)
    # MD with the model visits the corpus's active family (MD with the model), not the
    # reference's MD frames
    np.testing.assert_allclose(md.trust.arrays()["energy_uncertainty"], own["active"])
    relaxed = relax(atoms, calc, steps=2, warn_outside=False)
    np.testing.assert_allclose(relaxed.trust.arrays()["energy_uncertainty"], own["minima"])
    assert own["isomer"] < pooled < own["minima"] and calc.family is None
    settings = SearchSettings(method="multistart", runs=1, steps=3, starts="symmetric")
    report = run_search(calc, settings, tmp_path / "search")
    assert report.candidates  # the search's candidates are the model's minima
    widths = [c.uncertainty for c in report.candidates]
    np.testing.assert_allclose(widths, own["minima"])
    with pytest.raises(ValueError, match="family must be a family name or None"):
        calc.set(family=3)
