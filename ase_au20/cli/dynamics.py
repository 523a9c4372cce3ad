"""CLI verbs that move atoms: ``relax`` (local optimisation) and ``md`` (molecular dynamics)."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    calc_option,
    default_out,
    device_option,
    out_options,
    published,
    quiet_option,
    read_input_cluster,
    reference_option,
    staged_out,
)


def _load(file: str | None, calc_spec: str, device: str):
    """``read_input_cluster`` of FILE plus the calculator; errors become click errors."""
    atoms, name, label = read_input_cluster(file)
    return atoms, name, label, build_calculator(calc_spec, device)


@click.command("relax")
@click.argument("file", required=False)
@calc_option()
@click.option("--fmax", default=0.05, show_default=True, type=FINITE, help="force criterion, eV/Å")
@click.option(
    "--optimizer",
    type=click.Choice(["bfgs", "fire"]),
    default="bfgs",
    show_default=True,
    help="ASE optimiser: BFGS (quasi-Newton) or FIRE (damped dynamics, robust far from a minimum).",
)
@click.option("--steps", default=500, show_default=True, type=int, help="maximum optimizer steps")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when the relaxed structure is outside the model's domain of applicability.",
)
@device_option
@out_options("relax", "FILE")
@quiet_option
def relax_cmd(
    file: str | None,
    calc_spec: str,
    fmax: float,
    optimizer: str,
    steps: int,
    strict: bool,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Relax the cluster in FILE: relaxed xyz, .traj, HDF5 history and a PNG in --out.

    FILE is any ASE-readable file (FILE@INDEX picks a frame, the last by default) or a
    database row (au20.db@id=318); without it, the built-in tetrahedral Au20 ground state.
    """
    from ase_au20.workflows.relax import run_relax

    atoms, name, label, calc = _load(file, calc_spec, device)
    out_dir = default_out(out_dir, "relax", name)
    with staged_out(out_dir, overwrite) as stage:
        try:
            result, files = run_relax(
                atoms,
                calc,
                stage,
                name=name,
                fmax=fmax,
                optimizer=optimizer,
                steps=steps,
                parameters={"input": label, "calc": calc_spec},
                progress=not quiet,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    files = published(files, stage, out_dir)
    click.echo(f"{'steps':<12}{result.steps}")
    click.echo(f"{'converged':<12}{result.converged}")
    import numpy as np

    verdict = {None: "no verdict (the calculator gives none)", True: "yes", False: "NO"}
    click.echo(f"{'in domain':<12}{verdict[result.in_domain]}")
    final = result.trust.arrays()
    if np.isfinite(final["energy_uncertainty"][-1]):
        click.echo(f"{'± (90 %)':<12}{final['energy_uncertainty'][-1]:.3f} eV")
    click.echo(f"{'E start':<12}{result.energies[0]:.5f} eV")
    click.echo(f"{'E final':<12}{result.energies[-1]:.5f} eV")
    click.echo(f"{'fmax final':<12}{result.fmax[-1]:.4f} eV/Å")
    for kind, path in files.items():
        click.echo(f"{kind:<12}{path}")
    if not result.converged:
        raise click.ClickException(f"not converged to fmax={fmax} eV/Å within {steps} steps")
    if strict and result.in_domain is False:
        raise click.ClickException(
            "the relaxed structure is outside the model's domain of applicability (--strict)"
        )


@click.command("md")
@click.argument("file", required=False)
@calc_option()
@click.option(
    "--ensemble",
    type=click.Choice(["nve", "langevin"]),
    default="nve",
    show_default=True,
    help="nve: velocity Verlet (reports energy drift); langevin: thermostat at --temperature.",
)
@click.option("--temperature", default=300.0, show_default=True, type=FINITE, help="K")
@click.option("--steps", default=1000, show_default=True, type=int, help="MD steps of --timestep.")
@click.option("--timestep", default=2.0, show_default=True, type=FINITE, help="fs")
@click.option("--friction", default=0.01, show_default=True, type=FINITE, help="Langevin, 1/fs")
@click.option("--interval", default=1, show_default=True, type=int, help="record every N steps")
@click.option("--seed", default=0, show_default=True, type=int, help="velocity/noise seed")
@reference_option(
    "Label every --check-every-th record with this calculator and store the model's error "
    "beside its interval (check/ in the HDF5)"
)
@click.option(
    "--check-every",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="records between two checks against --reference",
)
@device_option
@out_options("md", "FILE")
@quiet_option
def md_cmd(
    file: str | None,
    calc_spec: str,
    ensemble: str,
    temperature: float,
    steps: int,
    timestep: float,
    friction: float,
    interval: int,
    seed: int,
    reference_spec: str | None,
    check_every: int,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Run MD of the cluster in FILE: .traj, HDF5 energy/temperature series and a PNG.

    FILE is any ASE-readable file (FILE@INDEX picks a frame, the last by default) or a
    database row (au20.db@id=318); without it, the built-in tetrahedral Au20 ground state.
    """
    from ase_au20.workflows.md import run_md_files

    atoms, name, label, calc = _load(file, calc_spec, device)
    reference = None if reference_spec is None else build_calculator(reference_spec, "cpu")
    out_dir = default_out(out_dir, "md", name)
    with staged_out(out_dir, overwrite) as stage:
        try:
            result, files = run_md_files(
                atoms,
                calc,
                stage,
                name=name,
                parameters={"input": label, "calc": calc_spec, "reference": reference_spec},
                progress=not quiet,
                reference=reference,
                check_every=check_every,
                ensemble=ensemble,
                temperature=temperature,
                steps=steps,
                timestep=timestep,
                friction=friction,
                seed=seed,
                interval=interval,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    files = published(files, stage, out_dir)
    click.echo(f"{'time':<22}{result.time[-1] / 1000:.3f} ps ({steps} steps of {timestep} fs)")
    click.echo(f"{'mean temperature':<22}{result.temperature.mean():.1f} K")
    click.echo(f"{'mean potential E':<22}{result.potential.mean():.5f} eV")
    import numpy as np

    inside = result.trust.arrays()["in_domain"]
    if np.isfinite(inside).all():
        first = result.trust.first_outside
        click.echo(
            f"{'outside the domain':<22}{int((inside == 0).sum())} of {len(inside)} records"
            + (f" (first at step {first})" if first is not None else "")
        )
    if result.audit:
        audit = result.audit
        covered = audit["covered"][np.isfinite(audit["energy_uncertainty"])]
        click.echo(
            f"{'against ' + reference_spec:<22}{len(audit['error'])} records: energy MAE "
            f"{np.abs(audit['error']).mean():.4f} eV, force MAE {audit['force_mae'].mean():.4f} "
            f"eV/Å, interval coverage {covered.mean() if len(covered) else float('nan'):.2f}"
        )
    if result.drift:
        slope = result.drift["slope_meV_per_atom_per_ps"]
        dev = result.drift["max_deviation_meV_per_atom"]
        click.echo(f"{'drift slope':<22}{slope:.4g} meV/atom/ps")
        click.echo(f"{'drift max deviation':<22}{dev:.4g} meV/atom")
    for kind, path in files.items():
        click.echo(f"{kind:<22}{path}")
