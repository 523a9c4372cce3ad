"""The database in a browser: ASE's web app with our key descriptions and a row page that
shows labels and predictions apart, the prediction's interval and domain verdict, and a
picture of the cluster.

Served on 127.0.0.1 with Flask's debugger off: ASE's own ``ase db -w`` binds every
interface with the debugger on, which lets anyone on the network run code. ASE's route
that opens a GUI window on the server is not served.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ase_au20.database.keys import KEYS
from ase_au20.database.store import connect, shown_url
from ase_au20.geometry.conventions import BOND_CUTOFF
from ase_au20.geometry.metrics import coordination_numbers

WEB_EXTRA = 'the web view needs Flask: pip install "ase-au20[web]"'
PROJECT = "au20"
TEMPLATES = Path(__file__).parent / "templates"
# the columns a search shows first (ASE's toggles add the others)
DEFAULT_COLUMNS = [
    "id",
    "formula",
    "energy",
    "delta_e",
    "split",
    "pred_energy",
    "pred_uncertainty",
    "in_domain",
    "model",
    "source",
]
LABEL_KEYS = ("delta_e", "bucket", "dup_group", "is_outlier", "split", "fold")
PREDICTION_KEYS = ("pred_energy", "pred_uncertainty", "pred_std", "pred_lo", "pred_hi")


def key_descriptions() -> dict[str, Any]:
    """ASE's descriptions of its own columns plus ours, as ``KeyDescription`` objects."""
    from ase.db.core import KeyDescription, get_key_descriptions

    ours = {k: KeyDescription(k, m.short, m.long, m.unit) for k, m in KEYS.items()}
    return {**get_key_descriptions(), **ours}


def create_app(url: str | os.PathLike[str], title: str = "") -> Any:
    """The Flask app serving database ``url`` (a file or server URL); ValueError with the
    install hint when Flask is missing."""
    try:
        import flask  # noqa: F401  (ASE's app imports it lazily)
        from jinja2 import ChoiceLoader, FileSystemLoader
    except ModuleNotFoundError:
        raise ValueError(WEB_EXTRA) from None
    from ase.db.app import DBApp
    from ase.db.project import DatabaseProject

    class Au20Project(DatabaseProject):
        def get_row_template(self) -> str:
            return "au20_row.html"

        def get_table_template(self) -> str:
            return "au20_table.html"

    db = connect(os.fspath(url))
    app = DBApp()
    app.projects[PROJECT] = Au20Project(
        name=PROJECT,
        title=title or f"Au20 database {shown_url(url)}",
        key_descriptions=key_descriptions(),
        database=db,
        default_columns=DEFAULT_COLUMNS,
    )
    flask_app = app.flask
    flask_app.jinja_loader = ChoiceLoader(
        [flask_app.jinja_loader, FileSystemLoader(str(TEMPLATES))]
    )
    flask_app.view_functions["gui"] = _not_served
    flask_app.view_functions["row"] = _or_404(flask_app.view_functions["row"])
    flask_app.view_functions["atoms"] = _or_404(flask_app.view_functions["atoms"])
    flask_app.view_functions["update"] = _capped(flask_app.view_functions["update"])
    flask_app.add_url_rule(
        f"/{PROJECT}/image/<int:row_id>.png", "cluster_png", lambda row_id: _png(db, row_id)
    )
    flask_app.jinja_env.globals["au20_row_sections"] = row_sections
    flask_app.jinja_env.globals["au20_escape_table"] = escape_table
    return flask_app


def escape_table(table: Any) -> str:
    """Escape every cell of ASE's search table in place (its template renders them
    unescaped, so a file name like ``x"><img onerror=…>.xyz`` in ``source`` would run as
    script); the formula gets its subscripts back. Returns "" for the template."""
    import html
    import re

    for row in table.rows:
        row.strings = [
            re.sub(r"(\d+)", r"<sub>\1</sub>", html.escape(str(value)))
            if column == "formula"
            else html.escape(text)
            for value, text, column in zip(row.values, row.strings, table.columns, strict=True)
        ]
    return ""


MAX_PAGE_ROWS = 200  # rows per page of the search table (ASE's own choices go to 200)


def _or_404(view: Any) -> Any:
    """An ASE route that shows one row (its page, its download), with 404 for a row that
    does not exist (ASE answers 500)."""

    def guarded(**kwargs: Any) -> Any:
        try:
            return view(**kwargs)
        except (KeyError, ValueError, TypeError, AttributeError):
            what = kwargs.get("uid", kwargs.get("id"))
            return f"no row {what!r} in this database", 404

    return guarded


def _capped(view: Any) -> Any:
    """ASE's table update, with a page size of at most ``MAX_PAGE_ROWS`` rows (a size in
    the URL is otherwise unbounded: 100,000 rows took 33 s and 106 MB)."""

    def update(sid: int, what: str, x: str) -> Any:
        if what == "limit":
            try:
                x = str(min(max(int(x), 1), MAX_PAGE_ROWS))
            except ValueError:
                return f"page size {x!r} is not a number", 400
        try:
            return view(sid=sid, what=what, x=x)
        except KeyError:
            return f"no search session {sid} (reload the search page)", 404
        except ValueError:
            return f"{what} {x!r} is not valid here", 400

    return update


def _not_served(**_: Any) -> tuple[str, int]:
    return "opening a GUI window on the server is not served by au20-workflow web", 404


def _png(db: Any, row_id: int) -> tuple[bytes, int, dict[str, str]]:
    """The row's cluster from two directions, atoms coloured by their coordination."""
    from ase_au20.viz import plot_site_values_3d

    try:
        atoms = db.get_atoms(id=row_id)
    except KeyError:
        return b"no such row", 404, {"Content-Type": "text/plain"}
    image = io.BytesIO()
    plot_site_values_3d(
        atoms,
        coordination_numbers(atoms, BOND_CUTOFF).astype(float),
        image,
        title=f"row {row_id}: {atoms.get_chemical_formula()}",
        label=f"neighbours within {BOND_CUTOFF:.2f} Å",
    )
    return image.getvalue(), 200, {"Content-Type": "image/png"}


def row_sections(row: Any) -> dict[str, list[tuple[str, str, str]]]:
    """(title, value, unit) of the row's label, prediction and other keys, for the page."""

    def entry(key: str, value: Any) -> tuple[str, str, str]:
        meaning = KEYS.get(key)
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return (meaning.long if meaning else key, text, meaning.unit if meaning else "")

    pairs = dict(row.key_value_pairs)
    label = []
    if row.get("energy") is not None:
        label.append(("Energy: the row's label", f"{row.energy:.4f}", "eV"))
    label += [entry(k, pairs.pop(k)) for k in LABEL_KEYS if k in pairs]
    prediction = [entry(k, pairs.pop(k)) for k in PREDICTION_KEYS if k in pairs]
    if "in_domain" in pairs:
        inside = bool(pairs.pop("in_domain"))
        verdict = "inside" if inside else "OUTSIDE: the energy is an extrapolation"
        prediction.append(("Domain of applicability", verdict, ""))
    lo, hi = row.get("pred_lo"), row.get("pred_hi")
    if lo is None and "pred_energy" in row and "pred_uncertainty" in row:
        lo, hi = row.pred_energy - row.pred_uncertainty, row.pred_energy + row.pred_uncertainty
    if lo is not None and np.isfinite([lo, hi]).all():
        prediction.insert(1, ("Interval", f"[{lo:.4f}, {hi:.4f}]", "eV"))
    other = [entry(k, v) for k, v in sorted(pairs.items())]
    return {
        "Label (DFTB1 reference or oracle)": label,
        "Prediction (never a label)": prediction,
        "Other": other,
    }
