"""What the `train` verbs share: the printed scores."""

from __future__ import annotations

from typing import Any

import click


def print_scores(metrics: dict[str, Any]) -> None:
    """The CV and test lines of a trained KRR-type model."""
    click.echo(f"\nbest CV MAE {metrics['cv']['mae']:.3f} eV, RMSE {metrics['cv']['rmse']:.3f} eV")
    if "test" in metrics:
        t = metrics["test"]
        click.echo(
            f"test (n={t['n']}): MAE {t['mae']:.3f}  RMSE {t['rmse']:.3f}  "
            f"R² {t['r2']:.3f}  max {t['max_error']:.3f} eV; "
            f"mean |F| at test minima {t['mean_abs_force']:.3f} eV/Å"
        )


def format_cv_table(table: list[dict[str, Any]], top: int = 10) -> str:
    """The ``top`` best CV rows as a plain-text table (|F|: held-out mean, eV/Å)."""
    rows = sorted(table, key=lambda r: r["cv_mae"])[:top]
    head = f"{'r_cut':>6}{'n':>3}{'l':>3}{'sigma':>7}{'kernel':>8}{'ζ/γ':>9}{'λ':>9}{'w_out':>6}"
    lines = [head + f"{'μ_F':>7}{'MAE':>8}{'RMSE':>8}{'|F|':>7}"]
    for r in rows:
        param = r.get("zeta", r.get("gamma"))
        lines.append(
            f"{r['r_cut']:>6g}{r['n_max']:>3}{r['l_max']:>3}{r['sigma']:>7g}{r['kernel']:>8}"
            f"{param:>9.3g}{r['lambda']:>9.0e}{r['outlier_weight']:>6g}"
            f"{r.get('zero_force_weight', 0.0):>7g}{r['cv_mae']:>8.3f}{r['cv_rmse']:>8.3f}"
            f"{r.get('cv_mean_force', float('nan')):>7.3f}"
        )
    return "\n".join(lines)
