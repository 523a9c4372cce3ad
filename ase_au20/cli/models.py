"""`au20-workflow train …` and `au20-workflow evaluate`: fit, calibrate and score models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from ase_au20.cli.recipes import given_on_command_line, recipe_option
from ase_au20.cli.train_schnet import schnet
from ase_au20.cli.workflow_options import (
    FINITE,
    build_calculator,
    db_option,
    default_out,
    device_option,
    model_out_option,
    out_options,
    quiet_option,
    staged_out,
)


class NumberList(click.ParamType):
    """Comma-separated numbers, e.g. ``0.3,0.5`` (a grid axis of the CV search)."""

    name = "list"

    def __init__(self, kind: type = float) -> None:
        self.kind = kind

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple:
        """Parse ``value`` into a tuple of numbers of ``kind``."""
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(self.kind(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a comma-separated list of {self.kind.__name__}", param, ctx
            )
        if not all(math.isfinite(v) for v in items):
            self.fail(f"{value!r} holds a number that is not finite", param, ctx)
        if not items:
            self.fail("empty list", param, ctx)
        return items


FLOATS, INTS = NumberList(float), NumberList(int)


def _shipped_grid() -> str:
    """The shipped KRR's CV grid as the command-line options it sets, for --help."""
    from dataclasses import fields

    from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH

    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return ",".join(f"{v:g}" for v in value)
        return value if isinstance(value, str) else f"{value:g}"

    flags = {f.name: "--" + f.name.replace("_", "-") for f in fields(SHIPPED_KRR_SEARCH)}
    flags.update(lam="--lambda")
    del flags["gamma_scale"]  # an RBF-kernel axis; the shipped kernel is the average one
    return " ".join(
        f"{flag} {text(getattr(SHIPPED_KRR_SEARCH, name))}" for name, flag in flags.items()
    )


@click.group()
def train() -> None:
    """Train a model on the train+val rows of a database (eV, Å)."""


train.add_command(schnet)


@train.command("xtb-delta")
@db_option("Isomer database built by `au20-workflow db build`.")
@model_out_option("Model directory to write (card.json, weights.npz, cv_table.csv).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for the GFN1-xTB single points [default: the usable cores].",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="GFN1 results cache [default: $AU20_CACHE/xtb or ~/.cache/ase-au20/xtb].",
)
@quiet_option
def train_xtb_delta_cmd(
    db_path: str,
    out: Path,
    overwrite: bool,
    workers: int | None,
    cache_dir: Path | None,
    quiet: bool,
) -> None:
    """GFN1-xTB + Δ-KRR: GFN1 single points of every row (cached), group-aware CV of the Δ
    over the shipped grid (zero-force term on the GFN1 forces), refit, calibration, test."""
    from ase_au20.models.xtb_delta.cache import BaselineCache
    from ase_au20.models.xtb_delta.training import SHIPPED_DELTA_SEARCH, train_xtb_delta

    try:
        with staged_out(out, overwrite) as stage:
            result = train_xtb_delta(
                db_path,
                stage,
                SHIPPED_DELTA_SEARCH,
                cache=BaselineCache(cache_dir),
                workers=workers,
                progress=not quiet,
            )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_cv_table(result.cv_table))
    _print_scores(result.metrics)
    click.echo(f"model written to {out}")


def _print_scores(metrics: dict[str, Any]) -> None:
    """The CV and test lines of a trained KRR-type model."""
    click.echo(f"\nbest CV MAE {metrics['cv']['mae']:.3f} eV, RMSE {metrics['cv']['rmse']:.3f} eV")
    if "test" in metrics:
        t = metrics["test"]
        click.echo(
            f"test (n={t['n']}): MAE {t['mae']:.3f}  RMSE {t['rmse']:.3f}  "
            f"R² {t['r2']:.3f}  max {t['max_error']:.3f} eV; "
            f"mean |F| at test minima {t['mean_abs_force']:.3f} eV/Å"
        )


@train.command("committee")
@db_option("Isomer database whose calib rows calibrate (and by default weight) the committee.")
@click.option(
    "--members",
    default="krr,schnet",
    show_default=True,
    help="Comma-separated members: registered model names (the shipped models) or trained "
    "model directories.",
)
@click.option(
    "--weight-split",
    type=click.Choice(["val", "calib"]),
    default="calib",
    show_default=True,
    help="Rows whose MAE picks the weights (val is in-sample for a KRR trained on train+val).",
)
@model_out_option("Committee directory to write (card.json; members are referenced, not copied).")
@quiet_option
def train_committee_cmd(
    db_path: str, members: str, weight_split: str, out: Path, overwrite: bool
) -> None:
    """Weighted committee of trained models: weights, conformal calibration, test score."""
    from ase_au20.models.committee.training import fit_committee

    names = [m.strip() for m in members.split(",") if m.strip()]
    try:
        with staged_out(out, overwrite) as stage:
            committee = fit_committee(db_path, stage, names, weight_split=weight_split)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    metrics = committee.card["metrics"]
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, committee.weights, strict=True))
    click.echo(f"weights ({weight_split} MAE {metrics['weights']['mae']:.3f} eV): {weights}")
    if "test" in metrics:
        t = metrics["test"]
        interval = t["intervals"]["0.9"]["mondrian"]
        width = interval["mean_width"]  # None in the card: unattainable level, infinite
        click.echo(
            f"test (n={t['n']}): MAE {t['mae']:.3f}  RMSE {t['rmse']:.3f} eV; 90% interval "
            f"coverage {interval['coverage']:.3f}, mean width "
            f"{float('inf') if width is None else width:.2f} eV"
        )
    click.echo(f"committee written to {out}")


@train.command("krr")
@db_option("Isomer database built by `au20-workflow db build`.")
@model_out_option("Model directory to write (card.json, weights.npz, cv_table.csv).")
@recipe_option(
    "Starting grid: the defaults shown here (plain: a quick dense ζ=2 model, without the "
    "zero-force term, so with large forces at minima), or the "
    f"shipped model's ({_shipped_grid()}; about 5-9 min on 2 cores). Options given on the "
    "command line override either."
)
@click.option(
    "--kernel",
    type=click.Choice(["average", "rbf"]),
    default="average",
    show_default=True,
    help="average: local-environment kernel; rbf: pooled SOAP.",
)
@click.option("--r-cut", type=FLOATS, default="7.0", show_default=True, help="SOAP cutoffs (Å).")
@click.option("--n-max", type=INTS, default="6", show_default=True, help="Radial basis sizes.")
@click.option("--l-max", type=INTS, default="4", show_default=True, help="Angular basis sizes.")
@click.option(
    "--sigma", type=FLOATS, default="0.3,0.5", show_default=True, help="Gaussian widths (Å)."
)
@click.option(
    "--zeta",
    type=INTS,
    default="2",
    show_default=True,
    help="Average-kernel powers (2 stores a tiny F×F matrix and is fastest).",
)
@click.option(
    "--gamma-scale",
    type=FLOATS,
    default="0.3,1,3",
    show_default=True,
    help="RBF γ in units of 1/median squared descriptor distance.",
)
@click.option(
    "--lambda",
    "lam",
    type=FLOATS,
    default="1e-4,3e-5,1e-5,3e-6,1e-6",
    show_default=True,
    help="Ridge regularisation (per-atom energy scale).",
)
@click.option(
    "--outlier-weight",
    type=FLOATS,
    default="1.0",
    show_default=True,
    help="Sample weight(s) of rows flagged is_outlier (1 = no down-weighting).",
)
@click.option(
    "--n-sparse",
    type=int,
    default=0,
    show_default=True,
    help="Sparse environments for ζ ≠ 2 (0: use all training environments).",
)
@click.option(
    "--zero-force-weight",
    type=FLOATS,
    default="0",
    show_default=True,
    help="μ of the zero-force term (sparse models): DFTB1 minima have F ≈ 0.",
)
@click.option(
    "--force-tolerance",
    type=FINITE,
    default=None,
    help="Pick the best CV MAE among rows with held-out mean |F| ≤ this (eV/Å).",
)
@quiet_option
def train_krr_cmd(
    db_path: str, out: Path, overwrite: bool, recipe: str, quiet: bool, **grid: Any
) -> None:
    """SOAP+KRR: group-aware 5-fold CV over the grid, refit, conformal calibration, test score."""
    from dataclasses import replace

    from ase_au20.models.krr.search import SHIPPED_KRR_SEARCH, KRRSearch
    from ase_au20.models.krr.training import train_krr

    if recipe == "shipped":
        search = replace(SHIPPED_KRR_SEARCH, **given_on_command_line(grid))
    else:
        search = KRRSearch(**grid)
    click.echo(f"grid: {search.size()} CV fits")
    try:
        with staged_out(out, overwrite) as stage:
            result = train_krr(db_path, stage, search, progress=not quiet)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_cv_table(result.cv_table))
    _print_scores(result.metrics)
    click.echo(f"model written to {out}")


def format_cv_table(table: list[dict[str, Any]], top: int = 10) -> str:
    """The ``top`` best CV rows as a plain-text table (|F|: held-out mean, eV/Å)."""
    rows = sorted(table, key=lambda r: r["cv_mae"])[:top]
    head = f"{'r_cut':>6}{'n':>3}{'l':>3}{'sigma':>7}{'kernel':>8}{'ζ/γ':>9}{'λ':>9}{'w_out':>6}"
    lines = [head + f"{'μ_F':>7}{'MAE':>8}{'RMSE':>8}{'|F|':>7}"]
    for r in rows:
        param = r.get("zeta", r.get("gamma"))
        lines.append(
            f"{r['r_cut']:>6g}{r['n_max']:>3}{r['l_max']:>3}{r['sigma']:>7g}{r['kernel']:>8}"
            f"{param:>9.3g}{r['lambda']:>9.0e}{r['outlier_weight']:>6g}"
            f"{r.get('zero_force_weight', 0.0):>7g}{r['cv_mae']:>8.3f}{r['cv_rmse']:>8.3f}"
            f"{r.get('cv_mean_force', float('nan')):>7.3f}"
        )
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("model")
@click.argument("structures", nargs=-1)
@db_option("Isomer database with the split to score (without STRUCTURES).", required=False)
@click.option(
    "--split",
    default="test",
    show_default=True,
    type=click.Choice(["train", "val", "calib", "test"]),
    help="Rows to score (without STRUCTURES).",
)
@click.option(
    "--reference",
    default=None,
    help="Score MODEL on STRUCTURES against this calculator instead of the database's "
    "labels: dftb (DFTB1, auorg-1-1: the labels' level of theory, the default with "
    "STRUCTURES), or any --calc spec.",
)
@device_option
@out_options("evaluate", "MODEL")
@quiet_option
def evaluate(
    model: str,
    structures: tuple[str, ...],
    db_path: str | None,
    split: str,
    reference: str | None,
    device: str,
    out_dir: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Score MODEL (a registered name: schnet, krr, xtb-delta, committee, dftb; or a model
    directory): metrics.json, parity.png, residuals_by_bucket.png, intervals.png.

    Rows the model was trained or calibrated on (the ids in its card) are left out and
    counted, so the figures are those of structures it never saw.

    With STRUCTURES (files, file@index such as md.traj@:, folders, db.db@selection), each
    one a family, MODEL (any --calc spec) is scored against --reference (DFTB1 by default)
    on them instead: energy and force errors, interval coverage and width, in-domain
    share per family (reference_metrics.json, parity_reference.png).
    """
    out = default_out(out_dir, "evaluate", Path(model).name)
    if structures or reference is not None:
        _evaluate_against_reference(
            model, structures, reference or "dftb", device, out, overwrite, quiet
        )
        return
    if db_path is None:
        raise click.UsageError("give --db (a split of its labels) or STRUCTURES to score on")
    from ase_au20.models import model_directory
    from ase_au20.models.evaluate import evaluate_model, format_table

    try:
        directory = model_directory(model)
        if not directory.is_dir():
            raise ValueError(f"{model!r} is neither a registered model nor a model directory")
        with staged_out(out, overwrite) as stage:
            metrics = evaluate_model(directory, db_path, stage, split=split)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_table(metrics))
    click.echo(f"wrote metrics.json and plots to {out}")


def _evaluate_against_reference(
    model: str,
    structures: tuple[str, ...],
    reference: str,
    device: str,
    out: Path,
    overwrite: bool,
    quiet: bool,
) -> None:
    """``evaluate MODEL STRUCTURES… --reference SPEC``: one scored family per source."""
    from ase_au20.workflows.reference_check import (
        format_families,
        score_against_reference,
        write_report,
    )

    if not structures:
        raise click.UsageError("--reference scores MODEL on STRUCTURES: name at least one")
    calc = build_calculator(model, device)
    truth = build_calculator(reference, "cpu")
    try:
        with staged_out(out, overwrite) as stage:
            families = score_against_reference(calc, truth, structures, progress=not quiet)
            metrics = write_report(families, stage, {"model": model, "reference": reference})
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    click.echo(format_families(metrics))
    click.echo(f"wrote reference_metrics.json and parity_reference.png to {out}")
