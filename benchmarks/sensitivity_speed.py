"""Wall time of the default sensitivity run (``make demo``): target ≤ 20 s with SchNet on CPU.

The default run is 1,000 random perturbations (σ ∈ {0.01..0.08} Å × k ∈ {1,2,4,8} × 50)
plus 20 × 50 single-site ones and 120 force evaluations for the Hessian blocks, all
batched through ``calc.predict``. Uses the shipped SchNet model when it exists; otherwise
EMT, and says so (EMT has no batched predict, so its time is no measure of the target).

Run: ``python benchmarks/sensitivity_speed.py [--calc schnet|krr|emt|DIR] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from docs_page import DOCS, publish_printed, recording

from ase_au20.paths import PRETRAINED_DIR

TARGET_S = 20.0
CLI = "from ase_au20.cli import main; main()"


def default_calc() -> tuple[str, str]:
    """``schnet`` when the shipped model exists, else ``emt`` with the reason."""
    if (PRETRAINED_DIR / "schnet" / "card.json").is_file():
        return "schnet", "shipped SchNet model"
    return "emt", f"no shipped SchNet model in {PRETRAINED_DIR / 'schnet'}: timing EMT instead"


def time_default_run(calc: str, device: str, out: Path) -> tuple[float, float | None, str]:
    """Run the CLI as `make demo` does; return wall seconds, the evaluation seconds, output."""
    command = [
        sys.executable,
        "-c",
        CLI,
        "sensitivity",
        "--calc",
        calc,
        "--device",
        device,
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sensitivity run failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    match = re.search(r"Hessian blocks in ([0-9.]+) s", proc.stdout)
    return wall, float(match.group(1)) if match else None, proc.stdout


def main() -> None:
    """Time one default run, print a short report against the target, write the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calc", help="calculator (default: schnet if shipped, else emt)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args()
    calc, why = (args.calc, "chosen on the command line") if args.calc else default_calc()
    with tempfile.TemporaryDirectory() as tmp:
        wall, evaluation, output = time_default_run(calc, args.device, Path(tmp) / "run")
    slope = re.search(r"log-log slope of \|ΔE\| vs RMSD: (\S+)", output)
    with recording() as printed:
        print(f"calculator        {calc} ({why})")
        print(f"device            {args.device}")
        print(f"whole command     {wall:.1f} s (imports, model load, relaxation, plots included)")
        if evaluation is not None:
            print(f"perturbations     {evaluation:.1f} s (2,000 energies + 120 force evaluations)")
        print(f"log-log slope     {slope.group(1) if slope else 'n/a'}")
        verdict = "PASS" if wall <= TARGET_S else "FAIL"
        if calc == "schnet":
            print(f"target ≤ {TARGET_S:.0f} s      {verdict}")
        else:
            print(f"target ≤ {TARGET_S:.0f} s      not assessed: the target is for SchNet")
    figures = {"calc": calc, "device": args.device, "wall_s": wall, "evaluation_s": evaluation}
    publish_printed(
        args.report,
        "sensitivity-speed",
        "Sensitivity speed",
        __doc__,
        printed.getvalue(),
        figures,
    )


if __name__ == "__main__":
    main()
