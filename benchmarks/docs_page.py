"""Where the benchmarks write their reports: a Markdown page and the JSON of its figures, side
by side in the docs site (``docs/benchmarks``), so the docs and the README read measured
figures, never copied ones."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def publish(folder: Path, name: str, figures: Any, lines: list[str]) -> None:
    """Write ``folder/name.json`` (the figures) and ``folder/name.md`` (the page's lines,
    ending in one newline)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (folder / f"{name}.md").write_text("\n".join(lines).rstrip("\n") + "\n")


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal: Any) -> None:
        self.terminal, self.copy = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.terminal.write(text)
        return self.copy.write(text)

    def flush(self) -> None:
        self.terminal.flush()


@contextlib.contextmanager
def recording() -> Iterator[io.StringIO]:
    """Print as usual and keep what was printed, so a page shows exactly the run's report."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield tee.copy


def about(doc: str) -> list[str]:
    """A benchmark module's docstring as page lines: its title line dropped (the page has its
    own), and the paragraph on how to run it (``Run: …``) left out for the page's own."""
    paragraphs = doc.strip().split("\n\n")[1:]
    return [line for p in paragraphs if not p.startswith("Run:") for line in [*p.split("\n"), ""]]


def _shown(argv: list[str]) -> list[str]:
    """A run's arguments without ``--report DIR``: where the page went is not how it was made."""
    out, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--report="):
            skip = False
            continue
        skip = arg == "--report"
        if not skip:
            out.append(arg)
    return out


def publish_printed(
    folder: Path,
    name: str,
    title: str,
    doc: str,
    printed: str,
    figures: Any,
    images: Sequence[Path] = (),
) -> None:
    """The page of a benchmark whose report is its printed text: title, the module's
    description, the command and cores of this run, the printed report verbatim, then
    ``images`` (copied beside the page as ``name-<file name>``)."""
    command = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *_shown(sys.argv[1:])])
    lines = [
        f"# {title}",
        "",
        *about(doc),
        f"Written by `{command}` on {os.cpu_count()} CPU cores; the figures are in "
        f"`{name}.json` beside this page.",
        "",
        "```text",
        *printed.strip("\n").split("\n"),
        "```",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for image in images:
        shutil.copyfile(image, folder / f"{name}-{image.name}")
        lines += ["", f"![{image.stem}]({name}-{image.name})"]
    publish(folder, name, figures, lines)
