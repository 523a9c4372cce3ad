"""The web view: ASE's app with our key descriptions, label/prediction row pages, a cluster
picture, loopback and no debugger by default, no GUI route; a real browser renders it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ase_au20.database import connect
from ase_au20.database.predictions import prediction_pairs
from ase_au20.structures import au20_ground_state

pytest.importorskip("flask", reason='the web view needs Flask: pip install -e ".[web]"')

from ase_au20.cli import main  # noqa: E402
from ase_au20.cli.web import _is_loopback  # noqa: E402
from ase_au20.database.web import create_app  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def web_db(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The synthetic labelled database plus one out-of-domain prediction row."""
    path = tmp_path_factory.mktemp("web") / "web.db"
    shutil.copy(synthetic_db, path)
    kvp = prediction_pairs(-1556.25, 0.4, 0.1, False, "schnet", "ab" * 32)
    prediction_id = connect(path).write(au20_ground_state(), key_value_pairs=kvp)
    return path, prediction_id


@pytest.fixture(scope="module")
def client(web_db):
    return create_app(web_db[0]).test_client()


def _table(client, query: str) -> str:
    page = client.get("/au20/").get_data(as_text=True)
    session = re.search(r"update_table\((\d+)", page).group(1)
    return client.get(f"/update/{session}/query/0/?query={query}").get_data(as_text=True)


def test_search_page_lists_our_keys_with_meanings_and_units(client) -> None:
    page = client.get("/").get_data(as_text=True)
    assert "Predicted energy (not a label)" in page
    assert "Half-width of the predicted energy&#39;s conformal interval" in page
    assert "train / val / calib / test" in page
    table = _table(client, "split=test")
    assert "Displaying rows" in table and "E pred." in table and "ΔE" in table


def test_queries_keep_labels_and_predictions_apart(client, web_db) -> None:
    labels = _table(client, "energy")
    predictions = _table(client, "pred_energy")
    assert re.search(r"out of (\d+)", predictions).group(1) == "1"
    n_labels = int(re.search(r"out of (\d+)", labels).group(1))
    assert n_labels == len(connect(web_db[0])) - 1


def test_label_row_page(client) -> None:
    page = client.get("/au20/row/1").get_data(as_text=True)
    assert "Label (DFTB1 reference or oracle)" in page and "Energy: the row&#39;s label" in page
    assert "Prediction (never a label)" not in page
    assert 'src="/au20/image/1.png"' in page


def test_prediction_row_page_shows_interval_and_domain_verdict(client, web_db) -> None:
    page = client.get(f"/au20/row/{web_db[1]}").get_data(as_text=True)
    assert "Prediction (never a label)" in page and "Label (DFTB1 reference or oracle)" not in page
    assert "[-1556.6500, -1555.8500]" in page  # pred_energy ± pred_uncertainty
    assert "OUTSIDE: the energy is an extrapolation" in page


def test_cluster_picture_and_refused_routes(client) -> None:
    image = client.get("/au20/image/1.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data.startswith(PNG_SIGNATURE) and len(image.data) > 20_000
    assert client.get("/au20/image/999999.png").status_code == 404
    refused = client.get("/gui/1")  # ASE's route opens a GUI window on the server
    assert refused.status_code == 404 and "not served" in refused.get_data(as_text=True)


def test_cli_serves_on_loopback_without_debugger(web_db, monkeypatch) -> None:
    import flask

    calls = []
    monkeypatch.setattr(flask.Flask, "run", lambda self, **kwargs: calls.append(kwargs))
    result = CliRunner().invoke(main, ["web", "--db", str(web_db[0])])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "127.0.0.1", "port": 5000, "debug": False, "use_reloader": False}]
    result = CliRunner().invoke(main, ["web", "--db", str(web_db[0]), "--host", "0.0.0.0"])
    assert "other machines can read this database" in result.output
    assert _is_loopback("localhost") and _is_loopback("::1") and not _is_loopback("10.0.0.2")


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["web", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0 and "none.db" in result.output


def _in_browser(browser: str, app, path: str, home: Path, *flags: str):
    """Serve ``app`` on a loopback port and load ``path`` in headless Chromium (8 s of
    virtual time, for the page's scripts and pictures); the finished process."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        return subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # CI containers run as root
                "--disable-gpu",
                "--virtual-time-budget=8000",
                *flags,
                f"http://127.0.0.1:{server.server_port}{path}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(home)},
        )
    finally:
        server.shutdown()


def test_a_headless_browser_renders_the_row_page(
    web_db, headless_browser: str, tmp_path: Path
) -> None:
    shot = tmp_path / "row.png"
    _in_browser(
        headless_browser,
        create_app(web_db[0]),
        "/au20/row/1",
        tmp_path,
        "--window-size=1280,900",
        f"--screenshot={shot}",
    )
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (900, 1280)
    # the cluster picture's viridis atoms: many strongly coloured pixels, not a blank page
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert np.mean(saturation > 0.3) > 0.01


XSS_SOURCE = 'x"><img src=x onerror="document.title=\'pwned\'">.xyz'


@pytest.fixture(scope="module")
def hostile_db(synthetic_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic database plus a prediction row whose source and model hold markup, as
    a screen of a file with such a name writes it (red-team finding 3)."""
    path = tmp_path_factory.mktemp("xss") / "xss.db"
    shutil.copy(synthetic_db, path)
    kvp = prediction_pairs(-1556.25, 0.4, 0.1, True, "<script>document.title='x'</script>", "")
    connect(path).write(au20_ground_state(), key_value_pairs={**kvp, "source": XSS_SOURCE})
    return path


def test_the_search_table_escapes_every_value(hostile_db) -> None:
    client = create_app(hostile_db).test_client()
    table = _table(client, "pred_energy")
    assert "<img src=x" not in table and "<script>" not in table
    assert "&lt;img src=x onerror=" in table and "&lt;script&gt;" in table
    assert "Au<sub>20</sub>" in table  # the formula keeps its subscripts


def test_no_injected_script_runs_in_a_headless_browser(
    hostile_db, headless_browser: str, tmp_path: Path
) -> None:
    """Chromium loads the search page of the hostile row; the page title stays ours."""
    app = create_app(hostile_db)
    done = _in_browser(headless_browser, app, "/au20/?query=pred_energy", tmp_path, "--dump-dom")
    dom = done.stdout
    assert "onerror=" in dom  # the hostile row is on the page, as text
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert '<img src="x"' not in dom and "<script>document.title" not in dom


def test_rows_that_do_not_exist_are_404_and_the_page_size_is_capped(client, monkeypatch) -> None:
    """Unknown or non-numeric ids gave 500; any page size was served (red-team 11)."""
    import ase_au20.database.web as web

    monkeypatch.setattr(web, "MAX_PAGE_ROWS", 10)  # the synthetic database has 45 rows
    for path in ("/au20/row/99999", "/au20/row/abc", "/atoms/au20/99999/xyz"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "no row" in response.get_data(as_text=True)
    page = client.get("/au20/").get_data(as_text=True)
    session = re.search(r"update_table\((\d+)", page).group(1)
    table = client.get(f"/update/{session}/limit/100000/").get_data(as_text=True)
    assert len(re.findall(r'id="rowentry"', table)) == 10
    assert client.get(f"/update/{session}/limit/many/").status_code == 400
    assert client.get("/update/987654/query/0/").status_code == 404
