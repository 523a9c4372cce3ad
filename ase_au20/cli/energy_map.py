"""`au20-workflow energy-map`: per-atom energies as PDB, VMD and 3-D pictures."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    build_calculator,
    calc_option,
    default_out,
    device_option,
    out_options,
    published,
    quiet_option,
    read_input_cluster,
    staged_out,
)


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
