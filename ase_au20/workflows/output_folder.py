"""Output folders that appear whole or not at all, and never overwrite without being asked.

A workflow writes into a fresh hidden folder beside ``--out``; only when everything is
written is it renamed into place (the previous folder, with ``overwrite``, is moved aside
first and deleted after). A run that fails leaves the old output as it was; one stopped by
Ctrl-C also keeps what it had written, in ``<out>.interrupted`` beside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def check_output_folder(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """``out_dir`` as a Path; ValueError if it is a file or a non-empty folder (unless
    ``overwrite``) or its parent cannot be written."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {out_dir} is not empty: pass --overwrite to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.rmdir(probe)
    except OSError as err:
        raise ValueError(f"--out {out_dir} is not writable: {err.strerror or err}") from None
    return out


@contextlib.contextmanager
def staged_output(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir`` that becomes ``out_dir`` on success."""
    out = check_output_folder(out_dir, overwrite)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        try:
            yield stage
        except KeyboardInterrupt as stop:
            stop.kept = _keep_interrupted(stage, out)  # type: ignore[attr-defined]
            raise
        os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes it private; outputs are not
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _keep_interrupted(stage: Path, out: Path) -> str:
    """Move what an interrupted run wrote to ``<out>.interrupted`` (replacing an older one);
    the sentence that says where it is."""
    if not any(stage.iterdir()):
        return "it had written nothing yet"
    kept = out.with_name(out.name + ".interrupted")
    if kept.exists():
        shutil.rmtree(kept, ignore_errors=True)
    os.chmod(stage, 0o777 & ~current_umask())
    os.replace(stage, kept)
    return f"what it had written is in {kept}"


def final_paths(files: Mapping[str, Path], stage: Path, out: Path) -> dict[str, Path]:
    """The paths the staged ``files`` have once ``stage`` has become ``out``."""
    return {key: Path(out) / Path(path).relative_to(stage) for key, path in files.items()}


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
