"""`au20-workflow search`: global-minimum search with any calculator, ranked candidates."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    confidence_option,
    db_option,
    default_out,
    device_option,
    out_options,
    published,
    quiet_option,
    scheduler_options,
    staged_out,
)


@click.command("search")
@click.option(
    "--calc",
    "calc_spec",
    default="krr",
    show_default=True,
    help="krr, schnet, emt or a trained model directory; krr by default: far from the data "
    "the shipped SchNet's minima often collapse (pairs < 2.3 Å)",
)
@click.option(
    "--method",
    type=click.Choice(["basin", "ga", "multistart"]),
    default="multistart",
    show_default=True,
    help="ASE basin hopping, ase-ga cut-and-splice GA, or independent relaxed starts",
)
@click.option(
    "--starts",
    type=click.Choice(["symmetric", "random"]),
    default="symmetric",
    show_default=True,
    help="starts in a random point group (AIRSS-style) or unconstrained random clusters",
)
@click.option(
    "--runs", default=2, show_default=True, type=click.IntRange(min=1), help="independent runs"
)
@scheduler_options(
    "Dask workers the runs share, one core each; the minima do not depend on it. auto: one "
    "per run up to the usable cores (1 for SchNet on a GPU); one runs in this process"
)
@click.option(
    "--steps", default=100, show_default=True, type=int, help="starts / hops / offspring per run"
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="random seed of the starts and moves: the same seed gives the same minima",
)
@db_option("ASE db: match known isomers, store candidates", required=False, name="db_url")
@click.option(
    "--kappa", default=0.0, show_default=True, type=FINITE, help="rank by E − κ·uncertainty"
)
@click.option("--fmax", default=0.05, show_default=True, type=FINITE, help="local relaxation, eV/Å")
@click.option("--temperature", default=0.1, show_default=True, type=FINITE, help="basin kT, eV")
@click.option("--step-size", default=0.5, show_default=True, type=FINITE, help="basin move, Å")
@click.option("--population", default=10, show_default=True, type=int, help="GA population")
@click.option("--shape-match", is_flag=True, help="match fingerprints rescaled to equal mean bond")
@click.option("--no-store", is_flag=True, help="do not write candidates into --db")
@click.option(
    "--verify",
    "verify_spec",
    default=None,
    help="Re-relax the best candidates with this calculator and rank them by its energies: "
    "dftb (DFTB1, the labels' level of theory); verified.csv and verified.xyz (its minima, "
    "labels) in --out.",
)
@click.option(
    "--verify-top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="candidates to verify, best first",
)
@device_option
@out_options("search", "CALC")
@confidence_option
@quiet_option
def search_cmd(
    calc_spec: str,
    method: str,
    starts: str,
    runs: int,
    scheduler: str,
    workers: int | None,
    steps: int,
    seed: int,
    db_url: str | None,
    kappa: float,
    fmax: float,
    temperature: float,
    step_size: float,
    population: int,
    shape_match: bool,
    no_store: bool,
    verify_spec: str | None,
    verify_top: int,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Global-minimum search from random compact starts; ranked candidates in --out (and --db).

    Starts are random clusters with a random point-group symmetry unless --starts random;
    every local minimum is checked (no pair < 2.3 Å, connected at the 3.03 Å bond cutoff),
    de-duplicated and matched against the isomers of --db (sorted pair distances within
    0.1 Å: the package's one duplicate tolerance), and ranked by energy (or E − κ·uncertainty).
    """
    from ase_au20.compute.engine import open_engine
    from ase_au20.workflows.search import SearchSettings, auto_workers
    from ase_au20.workflows.search_run import run_search

    out_dir = default_out(out_dir, "search", Path(calc_spec.replace(":", "-")).name)
    calc = build_calculator(calc_spec, device)
    if workers is None:
        workers = auto_workers(calc, runs)
        if workers == 1 and scheduler == "local":
            scheduler = "none"  # a cluster of one buys nothing
    settings = SearchSettings(
        method=method,
        starts=starts,
        runs=runs,
        steps=steps,
        seed=seed,
        fmax=fmax,
        temperature=temperature,
        step_size=step_size,
        population=population,
    )
    with staged_out(out_dir, overwrite) as stage, open_engine(scheduler, workers) as engine:
        click.echo(f"{runs} {method} run(s) {engine.description}")
        try:
            report = run_search(
                calc,
                settings,
                stage,
                db_url=db_url,
                kappa=kappa,
                scale_invariant=shape_match,
                calc_name=calc_spec,
                store=not no_store,
                progress=not quiet,
                engine=engine,
            )
        except (ValueError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from exc
        verified = None
        if verify_spec is not None and report.candidates:
            verified = _verify(report, verify_spec, verify_top, fmax, stage, quiet)
    report.files = published(report.files, stage, out_dir)
    print_search_report(report)
    if verified is not None:
        click.echo(f"verified by {verify_spec} (eV; the ranking below is the verified one):")
        click.echo(verified.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _verify(report, spec: str, top: int, fmax: float, stage: Path, quiet: bool):
    """Re-relax the ``top`` candidates with ``spec``; write verified.csv and verified.xyz
    into ``stage``; the table in the verified order."""
    from ase.io import write

    from ase_au20.workflows.verify import verify_minima

    best = report.candidates[:top]
    table, minima = verify_minima(
        [c.atoms for c in best],
        [c.energy for c in best],
        build_calculator(spec, "cpu"),
        fmax=fmax,
        progress=not quiet,
    )
    table.to_csv(stage / "verified.csv", index=False)
    write(stage / "verified.xyz", minima, format="extxyz")
    report.files["verified"] = stage / "verified.csv"
    report.files["verified_xyz"] = stage / "verified.xyz"
    return table


def print_search_report(report, top: int = 10) -> None:
    """Summary lines plus a table of the best candidates."""
    n_valid = int(report.valid.sum())
    click.echo(
        f"minima {len(report.minima)}  valid {n_valid}  distinct {len(report.candidates)}"
        f"  outside the domain {report.n_outside_domain}"
        f"  bond cutoff {report.bond_cutoff:.2f} Å  wall {report.wall_time:.1f} s"
    )
    click.echo(
        f"{'rank':>4} {'E (eV)':>12} {'±u (eV)':>8} {'gap (eV)':>9} {'gap interval':>16}"
        f" {'P(lower)':>8} {'run':>3} {'known id':>8}"
    )
    for rank, c in enumerate(report.candidates[:top]):
        known = str(c.matches_cluster_id) if c.matches_cluster_id >= 0 else "new"
        lo, hi = c.gap_interval
        click.echo(
            f"{rank:>4} {c.energy:>12.4f} {c.uncertainty:>8.3f} {c.gap:>9.3f}"
            f" {f'[{lo:.2f}, {hi:.2f}]':>16} {c.p_below_best:>8.2f} {c.run:>3} {known:>8}"
        )
    click.echo("P(lower): probability that the candidate is really below the lowest one")
    if report.ground_state_id >= 0:
        state = (
            f"found at rank {report.ground_state_rank}"
            if report.found_ground_state
            else "not found"
        )
        click.echo(
            f"ground state (isomer {report.ground_state_id}): {state}; closest "
            f"fingerprint distance {report.ground_state_distance:.3f} Å"
        )
    if report.rows_written or report.rows_skipped:
        click.echo(f"db rows written {report.rows_written}, already present {report.rows_skipped}")
    for kind, path in report.files.items():
        click.echo(f"{kind:<4} {path}")
