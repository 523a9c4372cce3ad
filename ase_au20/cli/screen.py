"""``au20-workflow screen``: predictions for a stream of structures, into a database."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    KEPT_ON_INTERRUPT,
    build_calculator,
    calc_option,
    current_confidence,
    device_option,
    quiet_option,
    scheduler_options,
)


@click.command("screen")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@calc_option("schnet")
@click.option(
    "--out",
    "url",
    default=None,
    help="ASE database the predictions go to: a file (.db) or a postgresql:// URL; rows of "
    "an earlier, interrupted screen of the same inputs are kept and the screen resumes "
    "[default: ./screen-FIRST_INPUT.db]",
)
@click.option("--relax", is_flag=True, help="relax each structure (FIRE) before predicting")
@click.option(
    "--fmax", default=0.05, show_default=True, type=FINITE, help="relaxation force limit (eV/Å)"
)
@click.option(
    "--relax-steps",
    default=200,
    show_default=True,
    type=click.IntRange(min=1),
    help="optimiser steps per relaxation: a short relaxation, not a converged one",
)
@click.option(
    "--chunk-size",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="structures per Dask task and per database transaction; for a slow model (xtb-delta, "
    "~0.3 s a structure) use 16-32, so the last tasks do not leave workers idle",
)
@scheduler_options("Dask workers of the local cluster, one core each. auto: the usable cores")
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=0), help="lowest shown"
)
@device_option
@quiet_option
def screen_cmd(
    inputs: tuple[str, ...],
    calc_spec: str,
    url: str | None,
    relax: bool,
    fmax: float,
    relax_steps: int,
    chunk_size: int,
    scheduler: str,
    workers: int | None,
    top: int,
    device: str,
    quiet: bool,
) -> None:
    """Energy, 90 % interval, spread and domain verdict of every structure in INPUT...

    INPUT is an extended xyz or .traj file (every frame; file@index selects), a folder of
    such files, or an ASE database URL@selection. Structures are streamed, never held in
    memory together; predictions are written as prediction rows (pred_energy,
    pred_uncertainty, pred_std, in_domain, model: never an energy label), one transaction per
    chunk. A killed screen resumes without duplicates when run again with the same inputs.
    """
    from ase_au20.compute.engine import open_engine
    from ase_au20.database.store import shown_url
    from ase_au20.workflows.any_calculator import ModelIdentity
    from ase_au20.workflows.screen import ScreenSettings, screen

    if url is None:
        url = f"screen-{Path(inputs[0].split('@')[0]).stem or 'input'}.db"
    settings = ScreenSettings(
        relax=relax, fmax=fmax, relax_steps=relax_steps, chunk_size=chunk_size
    )
    click.get_current_context().meta[KEPT_ON_INTERRUPT] = (
        f"every chunk written is in {shown_url(url)}; the same command resumes the run"
    )
    try:
        if scheduler == "none":
            source = build_calculator(calc_spec, device)
            model = ModelIdentity.of(source, calc_spec)
        else:  # the workers load the model; this process reads its card only
            from ase_au20.calculators.factory import CalcSpec

            spec = CalcSpec.parse(calc_spec)
            source, model = spec, ModelIdentity.of_spec(spec)
        with open_engine(scheduler, workers) as engine:
            if not quiet:
                click.echo(f"screening with {calc_spec} {engine.description} into {shown_url(url)}")
            report = screen(
                list(inputs),
                source,
                url,
                settings,
                engine,
                model=model,
                progress=not quiet,
                top=top,
                device=device,
                confidence=current_confidence(),
            )
    except (ValueError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from exc
    print_screen_report(report)


def print_screen_report(report) -> None:
    """Counts, rate and time split, out-of-domain share and the lowest predictions."""
    from ase_au20.database.store import shown_url

    if report.resumed_from:
        click.echo(f"resumed run {report.run}: {report.resumed_from} structures were done")
    rate = f"{report.rate:.0f}" if report.rate >= 100 else f"{report.rate:.3g}"
    click.echo(
        f"{report.screened} structures screened in {report.seconds:.1f} s ({rate} /s) "
        f"into {shown_url(report.url)}, after {report.setup_seconds:.1f} s building the calculator"
    )
    click.echo(
        f"time: reading {report.read_seconds:.1f} s, model {report.model_seconds:.1f} s "
        f"(summed over workers), writing {report.write_seconds:.1f} s "
        f"({report.lock_seconds:.1f} s of it waiting for the writer lock)"
    )
    if report.screened:
        share = report.out_of_domain / report.screened
        click.echo(f"outside the model's domain: {report.out_of_domain} ({share:.1%})")
    if report.failed:
        label, reason = report.failed[0]
        click.echo(f"{len(report.failed)} not evaluated (first: {label}: {reason})")
    if report.lowest:
        click.echo("lowest predictions (eV, ± 90 % half-width):")
        for energy, half, source, in_domain in report.lowest:
            verdict = "" if in_domain is not False else "  OUTSIDE DOMAIN"
            click.echo(f"  {energy:12.3f} ± {half:.3f}  {source}{verdict}")
