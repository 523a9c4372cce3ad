"""Fixtures for model tests: a tiny SOAP setting and a tiny KRR trained on the synthetic db."""

from __future__ import annotations

from pathlib import Path

import pytest

from ase_au20.models.krr.soap import SoapSettings
from ase_au20.models.krr.training import KRRSearch, TrainResult, train_krr

TINY_SOAP = SoapSettings(r_cut=5.0, n_max=3, l_max=2, sigma=0.5)


@pytest.fixture(scope="session")
def tiny_soap() -> SoapSettings:
    """SOAP small enough (18 features) for finite differences in a blink."""
    return TINY_SOAP


@pytest.fixture(scope="session")
def tiny_search() -> KRRSearch:
    """A 4-point grid that trains in well under a second on the synthetic db."""
    return KRRSearch(
        r_cut=(5.0,), n_max=(3,), l_max=(2,), sigma=(0.5,), zeta=(2, 3), lam=(1e-3, 1e-5)
    )


@pytest.fixture(scope="session")
def tiny_delta_search() -> KRRSearch:
    """A one-point sparse grid with the zero-force term, for the xtb-delta model."""
    return KRRSearch(
        r_cut=(5.0,),
        n_max=(3,),
        l_max=(2,),
        sigma=(0.5,),
        zeta=(3,),
        lam=(1e-3,),
        n_sparse=60,
        zero_force_weight=(1.0,),
    )


@pytest.fixture(scope="session")
def tiny_krr(
    synthetic_db: Path, tiny_search: KRRSearch, tmp_path_factory: pytest.TempPathFactory
) -> TrainResult:
    """KRR trained, calibrated and saved by ``train_krr`` on the synthetic EMT database."""
    out = tmp_path_factory.mktemp("tiny_krr") / "krr"
    return train_krr(synthetic_db, out, tiny_search, progress=False)
