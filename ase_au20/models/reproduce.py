"""Regenerate the shipped models from a seed-split database, deterministically.

    python -m ase_au20.models.reproduce --db au20-seed.db --out ase_au20/models/pretrained

Steps: SOAP+KRR (group-aware CV over SHIPPED_KRR_SEARCH on train+val, refit, conformal on
calib, test score) → the GFN1-xTB Δ model (SHIPPED_DELTA_SEARCH; GFN1 results cached) →
SchNet trained on the energies and reference forces of the database's isomers and corpus
(``schnet.fit.fit_schnet`` with ``schnet.config.force_config()``, then continued with
``finetune_config``, as the shipped ensemble was after its active round; the corpus comes
first, from ``au20-workflow sample``, as ``make reproduce`` runs it) → the committee of KRR and
SchNet (``committee.training.fit_committee``). All are deterministic: KRR and the committee
are closed-form, SchNet is seeded. Prints the run time of each step.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH, KRRSearch
from ase_au20.models.krr.training import train_krr


def reproduce(
    db: str | Path,
    out: str | Path,
    schnet: bool = True,
    progress: bool = True,
    search: KRRSearch = SHIPPED_KRR_SEARCH,
    config: Any = None,
    delta_search: KRRSearch | None = None,
    finetune: bool = True,
) -> dict[str, float]:
    """Train and save ``out/krr``, ``out/xtb-delta`` and (with ``schnet``) ``out/schnet``
    taught by the KRR and ``out/committee``; returns the seconds of each step.

    ``search``, ``delta_search`` and ``config`` (a SchNetConfig) replace the shipped
    recipes, and ``finetune=False`` leaves out SchNet's second round, for tests.
    """
    from ase_au20.models.xtb_delta.cache import BaselineCache
    from ase_au20.models.xtb_delta.training import SHIPPED_DELTA_SEARCH, train_xtb_delta

    out = Path(out)
    times: dict[str, float] = {}
    start = time.perf_counter()
    krr = train_krr(db, out / "krr", search, progress=progress)
    times["krr"] = time.perf_counter() - start
    _report("KRR", krr.metrics, times["krr"])
    start = time.perf_counter()
    delta = train_xtb_delta(
        db,
        out / "xtb-delta",
        delta_search or SHIPPED_DELTA_SEARCH,
        cache=BaselineCache(),
        progress=progress,
    )
    times["xtb-delta"] = time.perf_counter() - start
    _report("xtb-delta", delta.metrics, times["xtb-delta"])
    if not schnet:
        print(f"reproduce: total {sum(times.values()):.0f} s")
        return times
    from ase_au20.models.committee.config import CommitteeConfig
    from ase_au20.models.committee.training import fit_committee
    from ase_au20.models.schnet.config import finetune_config, force_config
    from ase_au20.models.schnet.fit import fit_schnet

    config = config or force_config()
    cpus = os.cpu_count() or 1
    if config.workers > cpus:
        print(
            f"SchNet: {cpus} CPU(s), training with workers={cpus} instead of "
            f"{config.workers}: the weights differ from the shipped ones by rounding only"
        )
        config = replace(config, workers=cpus)
    start = time.perf_counter()
    # a recipe that distils (kd_*, vkd) learns from this KRR
    taught = config.kd_lambda > 0 or config.kd_atom_weight > 0 or config.vkd > 0
    teacher = krr.model if taught else None
    model = fit_schnet(db, out / "schnet", config, teacher=teacher, progress=progress)
    if finetune and config.force_weight > 0:  # the shipped ensemble's second round
        again = finetune_config(start_from=str(out / "schnet"), workers=config.workers)
        model = fit_schnet(db, out / "schnet", again, progress=progress)
    times["schnet"] = time.perf_counter() - start
    test = model.card["metrics"].get("test", {})
    print(f"SchNet: test MAE {test.get('mae', float('nan')):.3f} eV, {times['schnet']:.0f} s")
    start = time.perf_counter()
    members = CommitteeConfig((str(out / "krr"), str(out / "schnet")))
    committee = fit_committee(db, out / "committee", members)
    times["committee"] = time.perf_counter() - start
    test = committee.card["metrics"].get("test", {})
    print(
        f"committee: weights {committee.weights.tolist()}, "
        f"test MAE {test.get('mae', float('nan')):.3f} eV, {times['committee']:.0f} s"
    )
    print(f"reproduce: total {sum(times.values()):.0f} s")
    return times


def _report(name: str, metrics: dict[str, Any], seconds: float) -> None:
    """One line: CV and test MAE of a KRR-type model and its training time."""
    test_mae = metrics.get("test", {}).get("mae", float("nan"))
    print(
        f"{name}: CV MAE {metrics['cv']['mae']:.3f} eV, test MAE {test_mae:.3f} eV, {seconds:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="seed-split database (db build --split seed)")
    parser.add_argument(
        "--out", required=True, help="folder that receives krr/, xtb-delta/, schnet/, committee/"
    )
    parser.add_argument(
        "--no-schnet", action="store_true", help="only the KRR and xtb-delta models"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if not Path(args.db).is_file():
        parser.error(f"database not found: {args.db}")
    reproduce(args.db, args.out, schnet=not args.no_schnet, progress=not args.quiet)


if __name__ == "__main__":
    main()
