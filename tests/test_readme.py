"""The README is a front door: short, and every link it has leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_the_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_every_relative_link_of_the_readme_exists() -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert len(local) >= 5
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_the_docs_site_lists_every_page_it_has() -> None:
    """mkdocs --strict catches broken links; a page left out of the nav it does not."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    assert [page for page in pages if page not in nav] == []


def test_the_headline_figures_are_those_of_the_truth_benchmark() -> None:
    """The README's figures come from docs/benchmarks/truth.json, written by truth.py."""
    import json
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from headline import BEGIN, END, headline_text

    report = json.loads((ROOT / "docs" / "benchmarks" / "truth.json").read_text())
    text = README.read_text()
    block = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert block.strip() == headline_text(report)
