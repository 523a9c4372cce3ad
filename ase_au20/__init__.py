"""ase-au20: machine-learned Au20 energy models as ASE calculators, database and workflows.

Heavy dependencies (torch, dscribe) load only when a calculator or model is used, so
``import ase_au20`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ase_au20._version import __version__

_LAZY = {
    "SchNetAu20": "ase_au20.calculators.schnet",
    "KRRAu20": "ase_au20.calculators.krr",
    "CommitteeAu20": "ase_au20.calculators.committee",
    "XtbDeltaAu20": "ase_au20.calculators.xtb_delta",
    "DFTBAu20": "ase_au20.calculators.dftb",
    "Au20Calculator": "ase_au20.calculators.base",
    "build_database": "ase_au20.database",
    "load_rows": "ase_au20.database",
    "connect": "ase_au20.database",
    "au20_ground_state": "ase_au20.structures",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import public names on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_au20' has no attribute {name!r}")
