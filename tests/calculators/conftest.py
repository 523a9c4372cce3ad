"""Tiny trained models for calculator tests, and the shipped models when they exist.

The tiny models are fitted in seconds on the synthetic EMT set (tests/conftest.py); their
conformal quantiles come from every synthetic row, because the synthetic calib split is
too small for a 0.9 quantile — they test mechanics, not calibration quality, which is
checked on the shipped models with the real held-out split.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from ase_au20.models.domain import attach_domain

TINY_SOAP = {"r_cut": 5.0, "n_max": 3, "l_max": 2, "sigma": 0.5}


def _card_and_conformal(
    model_type, architecture, hyper, features, pred, rows, meta, train_ids, **spread
):
    """A card calibrated on ``rows`` (``spread``, ``spread_offset``: a normalised one)."""
    from ase_au20.models.card import new_card
    from ase_au20.models.conformal import ConformalCalibrator
    from ase_au20.models.pair_conformal import PairCalibrator

    calibrator = ConformalCalibrator.fit(
        pred, rows.energies, meta["energy_reference"], meta["bucket_edges"], **spread
    )
    return new_card(
        model_type,
        architecture,
        hyper,
        features,
        meta["energy_reference"],
        meta["bucket_edges"],
        train_ids,
        "group",
        conformal=calibrator.to_dict(),
        pair_conformal=PairCalibrator.fit(pred, rows.energies).to_dict(),
    )


@pytest.fixture(scope="session")
def tiny_krr_dir(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small-SOAP KRR (ζ = 2) fitted on the synthetic train split, saved with its card."""
    from ase_au20.database import connect, load_rows
    from ase_au20.models.krr.model import KRRModel
    from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings

    meta = connect(synthetic_db).metadata
    train, every = load_rows(synthetic_db, "train"), load_rows(synthetic_db)
    settings = SoapSettings(**TINY_SOAP)
    units = SoapFeaturizer(settings).normalised_many(train.atoms)
    model = KRRModel.fit(units, train.energies, settings, kernel="average", zeta=2, lam=1e-3)
    pred = model.predict(every.atoms)["energy"]
    model.card = _card_and_conformal(
        "krr",
        model.architecture,
        model.hyperparameters,
        settings.to_dict(),
        pred,
        every,
        meta,
        train.ids,
    )
    directory = model.save(tmp_path_factory.mktemp("tiny_krr"))
    attach_domain(directory, train.atoms)
    return directory


@pytest.fixture(scope="session")
def tiny_schnet_dir(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-member 16-feature SchNet trained for a few epochs on the synthetic split."""
    from ase_au20.database import connect, load_rows
    from ase_au20.models.schnet.training import SchNetConfig, train_schnet

    meta = connect(synthetic_db).metadata
    train, val = load_rows(synthetic_db, "train"), load_rows(synthetic_db, "val")
    every = load_rows(synthetic_db)
    config = SchNetConfig(
        hidden=16,
        blocks=2,
        rbf=16,
        cutoff=5.0,
        epochs=8,
        batch_size=8,
        lr=5e-3,
        ensemble=2,
        device="cpu",
        seed=0,
    )
    model = train_schnet(train, val, config, progress=False)
    pred = model.predict(every.atoms)["energy"]
    card = _card_and_conformal(
        "schnet",
        model.card["architecture"],
        model.card["hyperparameters"],
        model.card["features"],
        pred,
        every,
        meta,
        train.ids,
    )
    model.card = {**model.card, **{k: v for k, v in card.items() if k not in model.card}}
    directory = model.save(tmp_path_factory.mktemp("tiny_schnet"))
    attach_domain(directory, [*train.atoms, *val.atoms])
    return directory


@pytest.fixture(scope="session")
def tiny_committee_dir(
    synthetic_db: Path, tiny_krr_dir: Path, tiny_schnet_dir: Path, tmp_path_factory
) -> Path:
    """The tiny KRR and SchNet as a 0.6 / 0.4 committee, calibrated on every synthetic row."""
    from ase_au20.database import connect, load_rows
    from ase_au20.models import load_model
    from ase_au20.models.committee.model import CommitteeModel

    meta = connect(synthetic_db).metadata
    every = load_rows(synthetic_db)
    sources = [tiny_krr_dir, tiny_schnet_dir]
    members = [load_model(path, device="cpu") for path in sources]
    committee = CommitteeModel(members, [0.6, 0.4], sources)
    out = committee.predict(every.atoms)
    committee.card = _card_and_conformal(
        "committee",
        {},
        {"weights": [0.6, 0.4]},
        {},
        out["energy"],
        every,
        meta,
        every.ids,
        spread=out["energy_std"],
        spread_offset=0.05,
    )
    directory = committee.save(tmp_path_factory.mktemp("tiny_committee"))
    attach_domain(directory, every.atoms)
    return directory


@pytest.fixture(scope="session")
def calculator_factories(
    tiny_krr_dir: Path, tiny_schnet_dir: Path, tiny_committee_dir: Path
) -> dict[str, Callable]:
    """name -> factory(**kwargs) building that calculator on its tiny model."""
    from ase_au20.calculators.committee import CommitteeAu20
    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.calculators.schnet import SchNetAu20

    return {
        "krr": lambda **kw: KRRAu20(model=tiny_krr_dir, **kw),
        "schnet": lambda **kw: SchNetAu20(model=tiny_schnet_dir, device="cpu", **kw),
        "committee": lambda **kw: CommitteeAu20(model=tiny_committee_dir, device="cpu", **kw),
    }


CALCULATORS = ["krr", "schnet", "committee"]


@pytest.fixture(params=CALCULATORS)
def make_calc(request: pytest.FixtureRequest, calculator_factories: dict) -> Callable:
    """Each calculator (tiny model) in turn: ``make_calc(**kwargs)``."""
    return calculator_factories[request.param]


@pytest.fixture(params=CALCULATORS)
def make_calc_fp64(request: pytest.FixtureRequest, calculator_factories: dict) -> Callable:
    """Each calculator in double precision (SchNet float64; KRR always is)."""
    factory = calculator_factories[request.param]
    if request.param in ("schnet", "committee"):
        return lambda **kw: factory(dtype="float64", **kw)
    return factory


@pytest.fixture
def rattled_au20() -> Atoms:
    """The Td pyramid rattled by 0.05 Å (fixed seed)."""
    from ase_au20.structures import au20_ground_state

    atoms = au20_ground_state()
    atoms.positions += np.random.default_rng(7).normal(0.0, 0.05, atoms.positions.shape)
    return atoms
