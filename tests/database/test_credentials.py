"""A database password never leaves its URL: not on stdout, in rows, in the screen ledger or
on the web page (red-team finding 4), checked against the PostgreSQL test server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ase.io import write
from cli_helpers import run_cli

from ase_au20.database import connect
from ase_au20.database.store import shown_url
from ase_au20.structures import au20_ground_state

SECRET = "Pa55-w0rd-xyz"


def _with_password(url: str) -> str:
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':')[0]}:{SECRET}@{host}"))


def test_shown_url_masks_only_the_password():
    assert shown_url("postgresql://ann:pw@db.example:5432/au20") == (
        "postgresql://ann:***@db.example:5432/au20"
    )
    assert shown_url("postgresql://ann@db.example/au20") == "postgresql://ann@db.example/au20"
    assert shown_url("runs/au20.db") == "runs/au20.db"


def test_no_verb_row_ledger_or_page_shows_the_password(
    postgres_url, synthetic_xyz_dir, synthetic_db, tmp_path: Path
):
    url = _with_password(postgres_url)
    printed = [run_cli("db", "build", str(synthetic_xyz_dir), "-o", url)]
    local = tmp_path / "copy.db"
    shutil.copy(synthetic_db, local)
    source = tmp_path / "more.extxyz"
    atoms = au20_ground_state()
    atoms.positions *= 1.04
    write(source, atoms)
    printed.append(run_cli("screen", str(source), "--calc", "emt", "--out", url))
    printed.append(run_cli("screen", f"{url}@cluster_id<3", "--calc", "emt", "--out", str(local)))
    for text in printed:
        assert SECRET not in text and "***" in text, text
    sources = [row.get("source", "") for row in connect(local).select()]
    assert any("***@" in s for s in sources) and not any(SECRET in s for s in sources)
    ledger = json.dumps(connect(local).metadata.get("screen_runs", {}))
    assert "***@" in ledger and SECRET not in ledger

    from ase_au20.database.web import create_app

    page = create_app(url).test_client().get("/au20/").get_data(as_text=True)
    assert SECRET not in page and "***@" in page
