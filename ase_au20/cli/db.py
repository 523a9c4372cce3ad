"""`au20-workflow db`: build, inspect and extend the isomer database."""

from __future__ import annotations

from pathlib import Path

import click

from ase_au20.cli.workflow_options import db_option, quiet_option


def _print_summary(db_path: str) -> None:
    """Print the summary table of a database."""
    from ase_au20.database import connect, load_rows
    from ase_au20.database.corpus import family_table, load_corpus
    from ase_au20.database.summary import format_summary, summarize

    rows = load_rows(db_path)  # first: it refuses a missing file instead of creating one
    db = connect(db_path)
    click.echo(format_summary(summarize(rows), dict(db.metadata)))
    corpus = load_corpus(db)
    if len(corpus):
        click.echo(family_table(corpus))


@click.group()
def db() -> None:
    """Build, inspect and extend the Au20 isomer database (ASE db, eV and Å)."""


@db.command()
@click.argument("xyz_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    default="au20.db",
    show_default=True,
    help="Database file (SQLite by extension) or server URL.",
)
@click.option(
    "--split",
    "split",
    type=click.Choice(["group", "seed"]),
    default="group",
    show_default=True,
    help="group: group-aware random split; seed: the prototype's fixed split.",
)
@click.option(
    "--seed-splits",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of the fixed split [default: XYZ_DIR/../splits_seed].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the split.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on any malformed file.")
@click.option(
    "--overwrite", is_flag=True, help="Replace OUTPUT if it holds rows already (atomically)."
)
@click.option(
    "--level",
    default="dftb1-auorg-1-1",
    show_default=True,
    help="Level of theory of the files' energies, recorded on every row (the shipped data's "
    "is DFTB1 with the auorg-1-1 tables).",
)
@quiet_option
def build(
    xyz_dir: Path,
    output: str,
    split: str,
    seed_splits: Path | None,
    seed: int,
    strict: bool,
    overwrite: bool,
    level: str,
    quiet: bool,
) -> None:
    """Build the database from a folder of <id>.xyz files.

    An OUTPUT that holds rows is refused unless --overwrite, which replaces it atomically.
    Malformed files are reported one per line and skipped (exit 0 with a warning count;
    --strict exits 1). Splits: test, calib (fold -1) and five group-aware folds, of which
    fold 0 is "val" and folds 1-4 are "train".
    """
    from ase_au20.database import build_database
    from ase_au20.database.store import shown_url

    try:
        report = build_database(
            xyz_dir,
            output,
            split=split,
            seed_splits=seed_splits,
            seed=seed,
            strict=strict,
            progress=not quiet,
            overwrite=overwrite,
            level=level,
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for bad in report.bad_files:
        click.echo(f"warning: {bad}", err=True)
    for note in report.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(f"wrote {report.n_rows} rows to {shown_url(output)}")
    _print_summary(output)
    if report.n_warnings:
        click.echo(f"{report.n_warnings} warning(s)", err=True)


@db.command()
@click.argument("database")
@click.option(
    "--keys",
    is_flag=True,
    help="Also list every key-value pair name in the database with its meaning and unit.",
)
@quiet_option
def info(database: str, keys: bool) -> None:
    """Print counts, energy range, buckets, splits and duplicate groups, and the corpus's
    frames per family and split (`sample`).

    `ase db` prints no key descriptions (ASE's command line ignores them): `--keys` lists
    what each key of the rows means, labels and predictions alike.
    """
    try:
        _print_summary(database)
        if keys:
            click.echo(_key_table(database))
    except ValueError as err:
        raise click.ClickException(str(err)) from None


def _key_table(database: str) -> str:
    """The database's key names, each with its meaning and unit (``database.keys``)."""
    from ase_au20.database import connect
    from ase_au20.database.keys import KEYS

    names = sorted(connect(database).get_all_key_names())
    width = max((len(n) for n in names), default=0)
    lines = ["keys:"]
    for name in names:
        meaning = KEYS.get(name)
        if meaning is None:
            text = "(not one of ase-au20's keys)"
        else:
            text = f"{meaning.long} ({meaning.unit})" if meaning.unit else meaning.long
        lines.append(f"  {name:<{width}}  {text}")
    return "\n".join(lines)


@db.command()
@click.argument("sources", nargs=-1, required=True)
@db_option("Existing database file or server URL.", name="database")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on any rejected input.")
@click.option(
    "--level",
    default=None,
    help="Level of theory of labels whose file does not name one (`label` writes it) "
    "[default: the database's].",
)
@quiet_option
def add(
    sources: tuple[str, ...], database: str, strict: bool, level: str | None, quiet: bool
) -> None:
    """Add labelled structures from SOURCES; existing rows are never changed.

    SOURCES are folders (their *.xyz, *.extxyz and *.traj files), files in any ASE format
    with an energy (FILE@INDEX picks frames, the last by default; the dataset's bare
    <id>.xyz keeps its id) or databases (URL@SELECTION, labelled rows only). Structures
    matching an existing row are reported, not added. New rows get ΔE/bucket/outlier labels
    from the stored metadata and a group-aware split, so `train --db` uses them.
    """
    from ase_au20.database.add import add_to_database
    from ase_au20.database.store import shown_url

    try:
        report = add_to_database(
            list(sources), database, strict=strict, progress=not quiet, level=level
        )
    except (ValueError, TimeoutError) as err:
        raise click.ClickException(str(err)) from None
    for bad in report.bad_files:
        click.echo(f"warning: {bad}", err=True)
    for note in report.notes:
        click.echo(f"warning: {note}", err=True)
    if report.already_present:
        click.echo(f"{len(report.already_present)} file(s) already in the database, left as is")
    for match in report.matches:
        click.echo(str(match))
    splits = ", ".join(f"{n} {name}" for name, n in sorted(report.split_sizes.items()))
    click.echo(
        f"added {report.n_added} rows to {shown_url(database)}" + (f" ({splits})" if splits else "")
    )
    _print_summary(database)
    if report.n_warnings:
        click.echo(f"{report.n_warnings} warning(s)", err=True)


@db.command()
@click.argument("database")
@quiet_option
def migrate(database: str) -> None:
    """Move predictions stored as labels (older `search --db` rows) into pred_* keys.

    Rows without a cluster_id that carry an energy get it as pred_energy and lose the
    energy, so `ase db DATABASE 'energy<…'` sees DFTB1 labels only. Safe to run twice.
    """
    from ase_au20.database import connect
    from ase_au20.database.migrate import migrate_predictions
    from ase_au20.database.store import shown_url
    from ase_au20.database.writer_lock import writer_lock

    try:
        with writer_lock(database):
            n = migrate_predictions(connect(database))
    except (ValueError, TimeoutError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"migrated {n} prediction row(s) in {shown_url(database)}")
