"""The isomer database: xyz files in, ASE db rows with energies, groups and splits out."""

from __future__ import annotations

from ase_au20.database.add import AddReport, add_to_database
from ase_au20.database.build import BuildReport, build_database
from ase_au20.database.rows import IsomerSet, load_rows
from ase_au20.database.store import connect

__all__ = [
    "AddReport",
    "BuildReport",
    "IsomerSet",
    "add_to_database",
    "build_database",
    "connect",
    "load_rows",
]
