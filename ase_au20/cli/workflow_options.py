"""Shared pieces of the workflow verbs: list options, calculator, output folder."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import click

from ase_au20.models.registry import MODELS

SCHEDULERS_HELP = (
    "where the work runs: 'local' (a Dask LocalCluster of one-thread worker processes on "
    "this machine's usable cores), 'tcp://HOST:PORT' (an existing Dask scheduler, e.g. one "
    "started by dask-jobqueue on a cluster) or 'none' (in this process, no Dask)"
)


class DatabaseURL(click.ParamType):
    """A database: an existing file (``.db``, ``.json``) or a server URL (``postgresql://``),
    passed on as a string, which is what ``ase.db.connect`` takes."""

    name = "DB"

    def convert(self, value, param, ctx) -> str:
        text = os.fspath(value)
        if "://" in text:
            return text
        if not os.path.isfile(text):
            problem = "is a folder, not a database" if os.path.isdir(text) else "not found"
            self.fail(f"database {problem}: {text}", param, ctx)
        return text


DATABASE = DatabaseURL()


class FiniteFloat(click.types.FloatParamType):
    """A number that is finite: click's FLOAT takes ``nan`` and ``inf``, which would make a
    relaxation run all its steps or a search exit 0 with nothing done."""

    name = "number"

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


FINITE = FiniteFloat()
KEPT_ON_INTERRUPT = "ase_au20.kept"  # ctx.meta key: what a verb keeps if it is interrupted


def db_option(help_text: str, required: bool = True, name: str = "db_path"):
    """``--db`` of every verb: a database file or any server URL ``ase.db.connect`` takes
    (passed on as ``name``), required unless said otherwise."""
    return click.option("--db", name, required=required, type=DATABASE, help=help_text)


def reference_option(what: str, name: str = "reference_spec"):
    """``--reference``: a calculator to check this verb's model against, for ``what``; any
    --calc spec, dftb (DFTB1, the labels' own level of theory) above all."""
    return click.option(
        "--reference",
        name,
        default=None,
        help=f"{what}. dftb is DFTB1 with the auorg-1-1 tables, the labels' level of "
        "theory; any --calc spec works.",
    )


def device_option(command):
    """``--device`` of every verb with a torch model: the same choices and help."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="torch device of the model: auto (CUDA when available), cpu, cuda, cuda:1, …",
    )(command)


CONFIDENCE = "ase_au20.confidence"  # ctx.meta key: the --confidence of this command


def calc_option(default: str = "schnet"):
    """The ``--calc`` option of every workflow verb, with ``--confidence`` (any model it
    names reports an interval); its choices and help come from the model registry."""
    models = "; ".join(f"{e.name}: {e.summary}" for e in MODELS.values())
    calc = click.option(
        "--calc",
        "calc_spec",
        default=default,
        show_default=True,
        help=f"{models}; emt: ASE's EMT (quick checks); a trained model directory; or "
        "module:factory, any importable callable returning an ASE calculator "
        "(e.g. mace.calculators:mace_mp).",
    )
    return lambda command: calc(confidence_option(command))


def confidence_option(command):
    """``--confidence``: the coverage of the energy interval every model reports; the
    calculators this command builds (``build_calculator``) take it."""
    import functools

    @functools.wraps(command)
    def run(*args, confidence: float = 0.9, **kwargs):
        click.get_current_context().meta[CONFIDENCE] = confidence
        return command(*args, **kwargs)

    return click.option(
        "--confidence",
        default=0.9,
        show_default=True,
        type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
        help="coverage of the models' energy intervals (0 < c < 1; calibrated up to 0.99)",
    )(run)


def current_confidence() -> float | None:
    """The --confidence of the running command (None outside one)."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(CONFIDENCE)


def parse_floats(text: str, name: str) -> tuple[float, ...]:
    """``"0.01,0.02"`` -> (0.01, 0.02); ``ValueError`` naming the option otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be finite numbers, got {text!r}")
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def parse_ints(text: str, name: str) -> tuple[int, ...]:
    """``"1,2,4"`` -> (1, 2, 4); ``ValueError`` naming the option otherwise."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name} is empty")
    return values


def build_calculator(spec: str, device: str):
    """``make_calculator`` with load failures (e.g. no shipped model) turned into click errors."""
    from ase_au20.calculators.factory import make_calculator

    try:
        return make_calculator(spec, device=device, confidence=current_confidence())
    except (ValueError, OSError, RuntimeError, ImportError, KeyError) as exc:
        raise click.ClickException(f"cannot load calculator {spec!r}: {exc}") from exc


OVERWRITE_OPTION = click.option(
    "--overwrite", is_flag=True, help="Replace --out if it already holds files."
)


def out_options(verb: str, input_help: str = "INPUT"):
    """``--out`` (default: ./VERB-INPUT, named after the verb and its input) and
    ``--overwrite``, the same on every verb that writes a folder."""

    def decorate(command):
        return click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help=f"Output folder, written whole or not at all [default: ./{verb}-{input_help}].",
        )(OVERWRITE_OPTION(command))

    return decorate


def model_out_option(help_text: str):
    """The required ``--out`` model directory of the train verbs, and ``--overwrite``."""

    def decorate(command):
        return click.option(
            "--out",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help=help_text + " Written whole or not at all.",
        )(OVERWRITE_OPTION(command))

    return decorate


def quiet_option(command):
    """``--quiet``/``-q``: no progress bars and no summary on stdout; warnings and errors
    still go to stderr. The command gets ``quiet`` when its signature asks for it."""
    import functools
    import inspect

    wants = "quiet" in inspect.signature(command).parameters

    @functools.wraps(command)
    def run(*args, quiet: bool = False, **kwargs):
        if wants:
            kwargs["quiet"] = quiet
        if not quiet:
            return command(*args, **kwargs)
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            return command(*args, **kwargs)

    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bars and no summary on stdout."
    )(run)


def default_out(out_dir: Path | None, verb: str, input_name: str) -> Path:
    """``out_dir``, or ``./<verb>-<input name>``."""
    return out_dir if out_dir is not None else Path(f"{verb}-{input_name}")


def check_out(out_dir: Path, overwrite: bool) -> None:
    """Refuse a non-empty (without ``overwrite``) or unwritable --out as a click error; verbs
    call it before their long work."""
    from ase_au20.workflows.output_folder import check_output_folder

    try:
        check_output_folder(out_dir, overwrite)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def staged_out(out_dir: Path, overwrite: bool) -> Iterator[Path]:
    """``staged_output`` with its refusal checked first (``check_out``); errors of the
    workflow inside pass through."""
    from ase_au20.workflows.output_folder import staged_output

    check_out(out_dir, overwrite)
    with staged_output(out_dir, overwrite) as stage:
        yield stage


def published(files: dict[str, Path], stage: Path, out_dir: Path) -> dict[str, Path]:
    """Where ``files`` written under ``stage`` are once the folder is in place."""
    from ase_au20.workflows.output_folder import final_paths

    return final_paths(files, stage, out_dir)


def read_input_cluster(file: str | None):
    """(atoms, output name, input label) of the cluster FILE names, or of the built-in Td Au20.

    FILE follows ASE: any format, ``file@index`` (the last frame by default) or
    ``au20.db@id=318``.
    """
    if file is None:
        from ase_au20.structures import au20_ground_state

        return au20_ground_state(), "au20-td", "built-in Td ground state"
    from ase_au20.workflows.inputs import read_cluster

    try:
        atoms = read_cluster(file)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    path, _, index = file.partition("@")
    name = Path(path).stem + (
        "-" + "".join(c if c.isalnum() else "_" for c in index) if index else ""
    )
    return atoms, name, file


def _workers(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    """``--workers``: a positive count, or None for auto."""
    if value == "auto":
        return None
    try:
        workers = int(value)
    except ValueError:
        workers = 0
    if workers < 1:
        raise click.BadParameter(f"use a positive number or auto, not {value!r}")
    return workers


def _scheduler(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ase_au20.compute.engine import check_scheduler

    try:
        return check_scheduler(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def scheduler_options(workers_help: str):
    """``--scheduler`` (local / tcp://HOST:PORT / none) and ``--workers`` of the verbs whose
    work runs on Dask."""

    def decorate(command):
        command = click.option(
            "--workers", default="auto", show_default=True, callback=_workers, help=workers_help
        )(command)
        return click.option(
            "--scheduler",
            default="local",
            show_default=True,
            callback=_scheduler,
            help=SCHEDULERS_HELP,
        )(command)

    return decorate
