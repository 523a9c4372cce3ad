"""``au20-workflow analyze``: stability analysis of the isomer database."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    check_out,
    confidence_option,
    db_option,
    default_out,
    out_options,
    published,
    quiet_option,
    reference_option,
    staged_out,
)


@click.command("analyze")
@db_option("isomer database (from `au20-workflow db build`)", name="db")
@out_options("analyze", "DB")
@click.option(
    "--n-lowest",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="distinct low-energy isomers in the structural table",
)
@click.option(
    "--symmetry-tol", default=0.1, show_default=True, type=FINITE, help="point-group tolerance, Å"
)
@click.option(
    "--calc",
    "calc_spec",
    default=None,
    help="Also ask a model which of the lowest isomers could be the ground state: its "
    "predicted gap to the lowest, the gap's interval and P(lower) (any --calc of the "
    "workflows; none by default).",
)
@reference_option(
    "Re-evaluate the lowest isomers with this calculator beside their labels, a check that "
    "the database and its ordering are the reference's (reference_check.csv)"
)
@confidence_option
@quiet_option
def analyze_cmd(
    db: str,
    out_dir: Path | None,
    overwrite: bool,
    n_lowest: int,
    symmetry_tol: float,
    calc_spec: str | None,
    reference_spec: str | None,
    quiet: bool,
) -> None:
    """ΔE statistics, the lowest distinct isomers, g(r) and a structural table.

    Writes analysis.h5, energy_distribution.png, rdf.png, ground_state.xyz and
    lowest_isomers.csv to --out (with --calc also ground_state_contest.csv, with
    --reference also reference_check.csv). Deterministic: there is nothing random to seed.
    """
    start = time.perf_counter()
    from ase_au20.database import connect, load_rows
    from ase_au20.workflows.analysis import run_analysis
    from ase_au20.workflows.analysis_report import format_report, write_outputs

    out_dir = default_out(out_dir, "analyze", Path(db.rstrip("/")).stem)
    check_out(out_dir, overwrite)
    try:
        isomers = load_rows(db)
        if len(isomers) < 2:
            raise ValueError(f"{db} holds {len(isomers)} isomer(s); the analysis needs two")
        result = run_analysis(
            isomers, n_lowest=n_lowest, symmetry_tol=symmetry_tol, progress=not quiet
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    metadata = connect(db).metadata
    parameters = {
        "db": str(db),
        "n_lowest": n_lowest,
        "symmetry_tol": symmetry_tol,
        "dataset_hash": metadata.get("dataset_hash"),
        "energy_reference": metadata.get("energy_reference"),
    }
    contest = None
    if calc_spec is not None:
        from ase_au20.cli.workflow_options import build_calculator
        from ase_au20.workflows.analysis import ground_state_contest

        contest = ground_state_contest(build_calculator(calc_spec, "auto"), result)
        parameters["calc"] = calc_spec
    check = None
    if reference_spec is not None:
        from ase_au20.cli.workflow_options import build_calculator
        from ase_au20.workflows.analysis import recheck_with_reference

        check = recheck_with_reference(build_calculator(reference_spec, "cpu"), result)
        parameters["reference"] = reference_spec
    with staged_out(out_dir, overwrite) as stage:
        files = write_outputs(result, stage, parameters)
        if contest is not None:
            files["contest"] = stage / "ground_state_contest.csv"
            contest.to_csv(files["contest"], index=False)
        if check is not None:
            files["reference"] = stage / "reference_check.csv"
            check.to_csv(files["reference"], index=False)
        paths = published(files, stage, out_dir)
    click.echo(format_report(result))
    if contest is not None:
        click.echo(f"which could be the ground state, by {calc_spec} (gaps in eV):")
        click.echo(contest.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if check is not None:
        worst = float(check["difference"].abs().max())
        same = bool(
            (check["reference_gap"].argsort().values == check["label_gap"].argsort().values).all()
        )
        click.echo(f"the lowest isomers re-evaluated by {reference_spec} beside their labels (eV):")
        click.echo(check.to_string(index=False, float_format=lambda v: f"{v:.5f}"))
        click.echo(
            f"largest |reference − label| {worst:.2e} eV; "
            f"{'the same' if same else 'a different'} order"
        )
    for kind, path in paths.items():
        click.echo(f"{kind:<20}{path}")
    click.echo(f"wall time {time.perf_counter() - start:.1f} s")
