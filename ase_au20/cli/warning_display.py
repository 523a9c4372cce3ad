"""How the command line shows warnings: on a line of their own, above any progress bar.

Python's default display appends ``path.py:line: Category: message`` to whatever the
terminal line holds, which under a tqdm bar is the bar itself; a user needs the category
and the message, not where in ase_au20 the condition was noticed.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``Category: message`` through ``tqdm.write``, which clears and redraws open bars."""
    from tqdm import tqdm

    tqdm.write(f"{category.__name__}: {message}", file=file or sys.stderr)


@contextlib.contextmanager
def warnings_above_progress_bars() -> Iterator[None]:
    """Within: warnings are shown by :func:`show_warning`; the previous display after."""
    previous = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        yield
    finally:
        warnings.showwarning = previous
