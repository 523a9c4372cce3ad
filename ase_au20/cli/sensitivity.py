"""``au20-workflow sensitivity``: energy response of one cluster to random perturbations."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    calc_option,
    check_out,
    db_option,
    default_out,
    device_option,
    out_options,
    parse_floats,
    parse_ints,
    published,
    quiet_option,
    read_input_cluster,
    reference_option,
    staged_out,
)


def _structure(structure: str | None, db: str | None, cluster_id: int | None):
    """The Atoms to study, a name for the output and a description: STRUCTURE, the --db
    isomer or the built-in Td."""
    if structure is not None and (db is not None or cluster_id is not None):
        raise click.UsageError("give either STRUCTURE or --db/--cluster-id, not both")
    if (db is None) != (cluster_id is None):
        raise click.UsageError("--db and --cluster-id go together")
    if db is None:
        return read_input_cluster(structure)
    from ase_au20.database import load_rows
    from ase_au20.database.store import shown_url

    try:
        rows = load_rows(db)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if len(rows) == 0:
        raise click.ClickException(
            f"{shown_url(db)} holds no labelled isomers (build one with `db build`)"
        )
    hits = [i for i, cid in enumerate(rows.ids) if cid == cluster_id]
    if not hits:
        raise click.ClickException(
            f"cluster_id {cluster_id} is not in {shown_url(db)} "
            f"({len(rows)} isomers, ids {rows.ids.min()}..{rows.ids.max()})"
        )
    atoms = rows.atoms[hits[0]].copy()
    atoms.calc = None
    stem = Path(db).stem if "://" not in db else db.rsplit("/", 1)[-1]
    return atoms, f"{stem}-{cluster_id}", f"{shown_url(db)} cluster_id={cluster_id}"


@click.command("sensitivity")
@click.argument("structure", required=False)
@db_option("isomer database (file or server URL)", required=False, name="db")
@click.option("--cluster-id", type=int, help="cluster_id of the isomer in --db")
@calc_option()
@device_option
@click.option(
    "--sigmas",
    default="0.01,0.02,0.03,0.05,0.08",
    show_default=True,
    help="comma-separated displacement widths σ, Å",
)
@click.option(
    "--ks", default="1,2,4,8", show_default=True, help="comma-separated numbers of moved atoms"
)
@click.option(
    "--repeats",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="perturbations per (σ, k) and per site",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="random seed of the perturbations: the same seed gives the same samples",
)
@click.option(
    "--relax/--no-relax",
    default=None,
    help="BFGS-relax the structure first [default: only the built-in one]",
)
@click.option("--fmax", default=0.01, show_default=True, type=FINITE, help="relaxation, eV/Å")
@reference_option(
    "Run the same perturbations with this calculator too, on its own minimum, and print "
    "global K, per-site K_i and the stiffness ranking side by side (reference_sites.csv)"
)
@out_options("sensitivity", "STRUCTURE")
@quiet_option
def sensitivity_cmd(
    structure: str | None,
    db: str | None,
    cluster_id: int | None,
    calc_spec: str,
    device: str,
    sigmas: str,
    ks: str,
    repeats: int,
    seed: int,
    relax: bool | None,
    fmax: float,
    reference_spec: str | None,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Perturb a cluster at random and measure |ΔE|; per-site stiffness; HDF5, PNG, PDB, VMD.

    STRUCTURE is any ASE-readable file; or pick an isomer with --db and --cluster-id; with
    neither, the built-in tetrahedral Au20 ground state, relaxed with --calc.
    """
    start = time.perf_counter()
    from ase_au20.workflows.any_calculator import model_card_of
    from ase_au20.workflows.sensitivity import SensitivityConfig, run_sensitivity
    from ase_au20.workflows.sensitivity import relax as relax_structure
    from ase_au20.workflows.sensitivity_report import format_report, write_outputs

    try:
        config = SensitivityConfig(
            sigmas=parse_floats(sigmas, "--sigmas"),
            ks=parse_ints(ks, "--ks"),
            repeats=repeats,
            seed=seed,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    atoms, name, source = _structure(structure, db, cluster_id)
    out_dir = default_out(out_dir, "sensitivity", name)
    check_out(out_dir, overwrite)
    calc = build_calculator(calc_spec, device)
    if relax is None:  # the built-in Td is the DFTB1 geometry, not a minimum of --calc
        relax = structure is None and db is None
    if relax:
        try:
            atoms, converged = relax_structure(atoms, calc, fmax=fmax)
        except ValueError as exc:
            raise click.ClickException(f"relaxing {source} with {calc_spec} failed: {exc}") from exc
        click.echo(f"relaxed {source} with {calc_spec} (fmax {fmax} eV/Å, converged: {converged})")
    try:
        t0 = time.perf_counter()
        result = run_sensitivity(atoms, calc, config, progress=not quiet)
        seconds = time.perf_counter() - t0
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    parameters = {
        "structure": source,
        "calc": calc_spec,
        "relaxed": bool(relax),
        "fmax": fmax,
        **config.as_dict(),
    }
    sites = None
    if reference_spec is not None:
        from ase_au20.workflows.sensitivity import compare_with_reference

        truth = build_calculator(reference_spec, "cpu")
        start_atoms, _, _ = _structure(structure, db, cluster_id)
        minimum = relax_structure(start_atoms, truth, fmax=fmax)[0] if relax else start_atoms
        truth_result = run_sensitivity(minimum, truth, config, progress=not quiet)
        sites = compare_with_reference(result, truth_result)
        parameters["reference"] = reference_spec
    with staged_out(out_dir, overwrite) as stage:
        paths = write_outputs(result, stage, parameters, model_card_of(calc))
        if sites is not None:
            paths["reference_sites"] = stage / "reference_sites.csv"
            sites.to_csv(paths["reference_sites"], index=False)
    paths = published(paths, stage, out_dir)
    click.echo(format_report(result))
    if sites is not None:
        ratio = result.global_k / truth_result.global_k
        click.echo(
            f"global K: {1e3 * result.global_k:.2f} meV with {calc_spec}, "
            f"{1e3 * truth_result.global_k:.2f} meV with {reference_spec} (ratio {ratio:.2f})"
        )
        from scipy.stats import spearmanr

        rho = spearmanr(sites["hessian_de_model"], sites["hessian_de_reference"]).statistic
        click.echo(
            f"per-site Hessian |ΔE| ratio {sites['ratio'].min():.2f}–{sites['ratio'].max():.2f}; "
            f"rank correlation of the sites' stiffness {rho:.2f}"
        )
        click.echo(sites.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    n_eval = len(result.samples) + len(result.site_samples)
    click.echo(f"{n_eval} perturbed structures + Hessian blocks in {seconds:.1f} s")
    for kind, path in paths.items():
        click.echo(f"{kind:<16}{path}")
    click.echo(f"wall time {time.perf_counter() - start:.1f} s")
