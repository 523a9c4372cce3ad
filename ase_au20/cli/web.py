"""`au20-workflow web`: browse a database (labels, predictions, structures) in a browser."""

from __future__ import annotations

import ipaddress
import logging

import click

from ase_au20.cli.workflow_options import db_option, quiet_option

LOOPBACK = "127.0.0.1"


@click.command("web")
@db_option("Database file or server URL.", name="db_url")
@click.option(
    "--host",
    default=LOOPBACK,
    show_default=True,
    help="Address to listen on; anything but loopback lets other machines read the database.",
)
@click.option(
    "--port",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="TCP port to listen on.",
)
@quiet_option
def web_cmd(db_url: str, host: str, port: int, quiet: bool) -> None:
    """Serve the database at http://HOST:PORT/ for a web browser.

    ASE's database web app with this package's key descriptions (meanings and units), a row
    page that keeps DFTB1 labels and model predictions apart and shows the prediction's
    interval and domain verdict, and a picture of each cluster from two directions. The
    search box takes ASE queries (`split=test`, `pred_energy<-1556`, `in_domain=False`).
    Flask's debugger stays off; ASE's button that opens a GUI window on the server is not
    served. Needs Flask: pip install "ase-au20[web]".
    """
    from ase_au20.database.store import shown_url
    from ase_au20.database.web import create_app

    try:
        app = create_app(db_url)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    if not _is_loopback(host):
        click.echo(f"warning: serving on {host}: other machines can read this database", err=True)
    click.echo(f"serving {shown_url(db_url)} at http://{host}:{port}/ (Ctrl-C stops)")
    if quiet:  # no line per request either
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app.run(host=host, port=port, debug=False, use_reloader=False)


def _is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``localhost`` counts)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
