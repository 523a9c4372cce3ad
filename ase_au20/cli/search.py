"""CLI verbs that explore, prioritise and label structures: ``search``, ``select``, ``label``
and ``energy-map``."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    calc_option,
    db_option,
    default_out,
    device_option,
    out_options,
    published,
    quiet_option,
    read_input_cluster,
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
@device_option
@out_options("search", "CALC")
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
    report.files = published(report.files, stage, out_dir)
    print_search_report(report)


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


@click.command("select")
@db_option("ASE db holding unlabelled (search) rows", name="db_url")
@click.option(
    "--n", "n_select", default=20, show_default=True, type=int, help="structures to export"
)
@click.option(
    "--calcs",
    default="schnet,krr",
    show_default=True,
    help="comma-separated calculators whose disagreement is scored",
)
@click.option(
    "--energy-window",
    default=1.0,
    show_default=True,
    type=FINITE,
    help="eV above the lowest mean prediction; negative: no window",
)
@device_option
@out_options("select", "DB")
@quiet_option
def select_cmd(
    db_url: str,
    n_select: int,
    calcs: str,
    energy_window: float,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
) -> None:
    """Export the --n unlabelled structures most worth a reference calculation (DFTB1, or
    your DFT), with a CSV of scores."""
    from ase_au20.workflows.select import select_from_db

    names = [name.strip() for name in calcs.split(",") if name.strip()]
    if not names:
        raise click.ClickException("--calcs needs at least one calculator")
    calculators = {name: build_calculator(name, device) for name in names}
    window = None if energy_window < 0 else energy_window
    out_dir = default_out(out_dir, "select", Path(db_url).stem)
    with staged_out(out_dir, overwrite) as stage:
        try:
            selection, files = select_from_db(db_url, calculators, n_select, stage, window)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    files = published(files, stage, out_dir)
    click.echo(
        f"pool {selection.pool_size}  within window {len(selection)}  "
        f"exported {min(n_select, len(selection))}  left out {selection.n_left_out} "
        "(already labelled or out of domain)"
    )
    click.echo(
        f"{'rank':>4} {'row':>6} {'score':>8} {'disagree':>9} {'epist.':>8} "
        f"{'±u':>7} {'ΔE':>7}  (eV)"
    )
    for rank in range(min(n_select, len(selection), 10)):
        click.echo(
            f"{rank:>4} {selection.row_ids[rank]:>6} {selection.score[rank]:>8.3f} "
            f"{selection.disagreement[rank]:>9.3f} {selection.epistemic_std[rank]:>8.3f} "
            f"{selection.conformal_half_width[rank]:>7.3f} {selection.relative_energy[rank]:>7.3f}"
        )
    click.echo(f"csv  {files['csv']}")


@click.command("energy-map")
@click.argument("file", required=False)
@calc_option()
@device_option
@out_options("energy-map", "FILE")
@quiet_option
def energy_map_cmd(
    file: str | None, calc_spec: str, device: str, out_dir: Path | None, overwrite: bool
) -> None:
    """Per-atom energy map of FILE: PDB (B-factor), VMD script, 3D PNG and HDF5 in --out.

    FILE is any ASE-readable file (FILE@INDEX picks a frame, the last by default) or a
    database row (au20.db@id=318); without it, the built-in tetrahedral Au20 ground state.
    """
    import numpy as np

    from ase_au20.workflows.energy_maps import write_energy_map

    atoms, name, label = read_input_cluster(file)
    calc = build_calculator(calc_spec, device)
    out_dir = default_out(out_dir, "energy-map", name)
    with staged_out(out_dir, overwrite) as stage:
        try:
            emap, files = write_energy_map(
                atoms, calc, stage, name, {"input": label, "calc": calc_spec}
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    files = published(files, stage, out_dir)
    order = np.argsort(emap.energies)
    click.echo(f"total {emap.total:.4f} eV; per-atom spread {np.ptp(emap.energies) * 1000:.1f} meV")
    click.echo(f"{'atom':>4} {'E_i (eV)':>12} {'E_i − min (meV)':>16}")
    for i in [*order[:3], *order[-3:]]:
        click.echo(f"{i:>4} {emap.energies[i]:>12.4f} {emap.relative[i] * 1000:>16.1f}")
    for kind, path in files.items():
        click.echo(f"{kind:<4} {path}")


@click.command("label")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--calc",
    "calc_spec",
    required=True,
    help="The oracle: dftb (DFTB1 with the auorg-1-1 tables, the level of theory of the "
    "shipped labels: exact, ~7 ms a structure), any ASE calculator as module:factory (a DFT "
    "code through ASE), or emt for quick checks; the other ase-au20 models are refused "
    "(their energies are predictions).",
)
@click.option(
    "--single-point", is_flag=True, help="Evaluate each structure as it is instead of relaxing."
)
@click.option("--fmax", default=0.05, show_default=True, type=FINITE, help="relaxation, eV/Å")
@click.option("--steps", default=200, show_default=True, type=int, help="maximum BFGS steps")
@out_options("label", "SOURCE")
@quiet_option
def label_cmd(
    sources: tuple[str, ...],
    calc_spec: str,
    single_point: bool,
    fmax: float,
    steps: int,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Label structures (e.g. a `select` folder) with an oracle calculator for `db add`.

    SOURCES are folders (their xyz/extxyz/traj files), files (FILE@INDEX) or database rows
    (URL@SELECTION). Each structure is relaxed (or evaluated with --single-point) and
    written to --out as extended xyz with energy= and forces, ready for
    `au20-workflow db add OUT --db DB`.
    """
    from ase_au20.workflows.label import label_structures

    calc = build_calculator(calc_spec, "cpu")
    out_dir = default_out(out_dir, "label", Path(sources[0].split("@")[0]).name)
    with staged_out(out_dir, overwrite) as stage:
        try:
            report = label_structures(
                list(sources),
                calc,
                stage,
                calc_spec,
                single_point=single_point,
                fmax=fmax,
                steps=steps,
                progress=not quiet,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    for name, reason in report.failed:
        click.echo(f"warning: {name}: the oracle failed ({reason})", err=True)
    for name in report.not_converged:
        click.echo(f"warning: {name}: not converged to fmax={fmax} eV/Å in {steps} steps", err=True)
    click.echo(f"labelled {len(report.files)} structure(s) into {out_dir}")
    if report.energies:
        click.echo(f"energies {min(report.energies):.6f} to {max(report.energies):.6f} eV")
    click.echo(f"next: au20-workflow db add {out_dir} --db DB")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} structure(s) could not be labelled")
