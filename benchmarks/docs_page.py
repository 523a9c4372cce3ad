"""Where the benchmarks write their reports: a Markdown page and the JSON of its figures, side
by side in the docs site (``docs/benchmarks``), so the docs and the README read measured
figures, never copied ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def publish(folder: Path, name: str, figures: Any, lines: list[str]) -> None:
    """Write ``folder/name.json`` (the figures) and ``folder/name.md`` (the page's lines,
    ending in one newline)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (folder / f"{name}.md").write_text("\n".join(lines).rstrip("\n") + "\n")
