"""Every benchmark writes its own docs page and the JSON of its figures; none is typed by hand."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
PAGES = ROOT / "docs" / "benchmarks"
HELPERS = {"docs_page.py", "headline.py", "run_all.py"}
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in HELPERS)


@pytest.fixture(scope="module")
def docs_page():
    sys.path.insert(0, str(BENCHMARKS))
    import docs_page

    yield docs_page
    sys.path.remove(str(BENCHMARKS))


def page_names(script: Path) -> list[str]:
    """The page names a benchmark publishes (the second argument of its publish call)."""
    text = script.read_text()
    return re.findall(r"publish(?:_printed)?\(\s*[\w.]+,\s*\"([\w-]+)\"", text)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_publishes_a_page_and_takes_report(script: Path) -> None:
    names = page_names(script)
    assert len(names) == 1, f"{script.name} publishes {names}"
    assert '"--report"' in script.read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_page_is_in_the_docs_with_its_figures(script: Path) -> None:
    (name,) = page_names(script)
    assert (PAGES / f"{name}.md").is_file()
    json.loads((PAGES / f"{name}.json").read_text())


def test_make_bench_runs_every_benchmark() -> None:
    listed = set(re.findall(r"\"(\w+\.py)\"", (BENCHMARKS / "run_all.py").read_text()))
    assert {p.name for p in SCRIPTS} <= listed


def test_a_printed_report_becomes_a_page_with_its_figures_and_plot(
    docs_page, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = "Title line.\n\nWhat it measures,\nin two lines.\n\nRun: ``python x.py``.\n"
    plot = tmp_path / "curve.png"
    plot.write_bytes(b"png")
    monkeypatch.setattr(sys, "argv", ["/somewhere/x.py", "--report", "/tmp/p", "--seeds", "3"])
    with docs_page.recording() as printed:
        print("\nMAE 0.123 eV")
    docs_page.publish_printed(
        tmp_path / "out", "x", "A title", doc, printed.getvalue(), {"mae": 0.123}, [plot]
    )
    page = (tmp_path / "out" / "x.md").read_text().splitlines()
    assert page[0] == "# A title"
    assert page[2:4] == ["What it measures,", "in two lines."]
    assert not any(line.startswith("Run:") for line in page)
    assert any("`python benchmarks/x.py --seeds 3`" in line for line in page)
    block = page[page.index("```text") + 1 :]
    assert block[:2] == ["MAE 0.123 eV", "```"]
    assert page[-1] == "![curve](x-curve.png)"
    assert (tmp_path / "out" / "x-curve.png").read_bytes() == b"png"
    assert json.loads((tmp_path / "out" / "x.json").read_text()) == {"mae": 0.123}
