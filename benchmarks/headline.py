"""The README's headline figures, written from a benchmark's JSON (never copied by hand).

``truth.py`` calls ``headline_text`` and ``write_headline`` after a full run; the README
keeps the block between ``<!-- headline:begin -->`` and ``<!-- headline:end -->``, and
``tests/test_readme.py`` checks that it is what ``docs/benchmarks/truth.json`` says.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
HEADLINE_MODEL = "schnet"  # the model a user gets from `SchNetAu20()`


def _span(values: list[float], digits: int) -> str:
    low, high = min(values), max(values)
    return (
        f"{low:.{digits}f}"
        if f"{low:.{digits}f}" == f"{high:.{digits}f}"
        else (f"{low:.{digits}f}–{high:.{digits}f}")
    )


def headline_text(report: dict[str, Any]) -> str:
    """A few sentences of the shipped SchNet's figures against the reference, from ``report``
    (the content of truth.json)."""
    scores = report["families"][HEADLINE_MODEL]
    # the families the workflows visit: not the verdict, not the unphysical clusters
    families = [n for n in scores if n != "domain verdict" and not n.startswith("unphysical")]
    off = [n for n in families if n != "test isomers"]
    unphysical = [n for n in scores if n.startswith("unphysical")]
    td = report["td"]
    k_ratio = td[HEADLINE_MODEL]["global_k"] / td["dftb"]["global_k"]
    energy_off = _span([scores[n]["energy_mae"] for n in off], 2)
    forces = _span([scores[n]["force_mae"] for n in families], 2)
    coverage = _span([scores[n]["coverage"] for n in families], 2)
    return (
        "`SchNetAu20()` against the reference, per family of structures the workflows visit "
        "(fixed test isomers and their descendants only): energy MAE "
        f"{scores['test isomers']['energy_mae']:.3f} eV on the test isomers and {energy_off} "
        f"eV on rattled isomers, MD frames and search minima; force MAE {forces} eV/Å; 90 % "
        f"intervals cover {coverage} per family; global K at Td {k_ratio:.2f} of the "
        "reference's."
        + "".join(
            f" Its domain verdict flags {100 * (1 - scores[n]['in_domain']):.0f} % of the "
            f"{n.split()[0]} clusters."
            for n in unphysical
        )
    )


def write_headline(report: dict[str, Any], readme: Path) -> None:
    """Replace the README's headline block by ``headline_text(report)``."""
    text = readme.read_text()
    block = f"{BEGIN}\n{headline_text(report)}\n{END}"
    new, count = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), block, text, flags=re.S)
    if count != 1:
        raise ValueError(f"{readme} has no headline block ({BEGIN} … {END})")
    readme.write_text(new)
