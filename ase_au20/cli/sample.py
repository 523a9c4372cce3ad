"""`au20-workflow sample`: the labelled corpus of reference energies and forces."""

from __future__ import annotations

import click

from ase_au20.cli.dataclass_options import dataclass_options, settings_from
from ase_au20.cli.workflow_options import (
    KEPT_ON_INTERRUPT,
    db_option,
    quiet_option,
    scheduler_options,
)
from ase_au20.workflows.corpus.settings import SampleSettings


@click.command("sample")
@db_option("Isomer database (file or server URL) the corpus is drawn from and written to.")
@dataclass_options(SampleSettings)
@click.option(
    "--model",
    default="schnet",
    show_default=True,
    help="The current ensemble: it runs the active family's MD and the minima family's "
    "relaxations, and its disagreement picks their frames (a "
    "registered model or a trained model folder).",
)
@scheduler_options("Dask worker processes for a local cluster [default: usable cores].")
@quiet_option
def sample_cmd(
    db_path: str, model: str, workers: int | None, scheduler: str, quiet: bool, **options
) -> None:
    """Draw structures of several families and label them with the reference (DFTB1).

    Families: `rattle` (Gaussian rattles of every isomer at several amplitudes), `md`
    (Langevin MD with the reference from every isomer, one temperature each in turn),
    `relax` (BFGS paths with the reference from the search's random and symmetric starts)
    `active` (MD with --model; the frames its members disagree on most) and `minima`
    (relaxations with --model from search starts; where they stop). Each frame
    is written to --db as a label with forces (keys family, parent, source, split, level):
    every frame of an isomer takes that isomer's split, so the test isomers' descendants are
    test. A stopped run keeps what it wrote; run it again to go on where it stopped. A new
    --seed draws a new set (another active round with a newer --model).
    """
    from ase_au20.compute.engine import open_engine
    from ase_au20.database import connect
    from ase_au20.database.corpus import family_table, load_corpus
    from ase_au20.workflows.corpus.plan import MODEL_FAMILIES
    from ase_au20.workflows.corpus.sample import sample_corpus

    settings = settings_from(SampleSettings, options)
    click.get_current_context().meta[KEPT_ON_INTERRUPT] = (
        "every finished task is in the database; run the same command again to go on"
    )
    db = connect(db_path)
    with open_engine(scheduler, workers) as engine:
        report = sample_corpus(
            db,
            settings,
            engine,
            model=model if set(MODEL_FAMILIES) & set(settings.families) else None,
            progress=not quiet,
        )
    rate = report.total_frames / report.seconds if report.seconds else 0.0
    click.echo(
        f"sampled {report.total_frames} frames in {report.done} tasks ({report.skipped} "
        f"already there) in {report.seconds:.0f} s, {rate:.0f} frames/s {engine.description}"
    )
    click.echo(family_table(load_corpus(db)))
