"""Reader of a homonuclear Slater–Koster file (``.skf``, simple format) and its interpolants.

The file holds, in Hartree and bohr: the integral grid, the on-site energies and
occupations, ten Hamiltonian and ten overlap two-centre integrals per grid point, and the
repulsive pair energy as a ``Spline`` block. ``SlaterKosterTable`` turns these into
functions of the distance (with first derivatives) that the assembly evaluates for every
pair at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.interpolate import CubicSpline

HARTREE = 27.211386245988  # eV
BOHR = 0.52917721067  # Å
# The integral columns of a simple-format file, in order; σ, π, δ are 0, 1, 2.
INTEGRALS = ("dd0", "dd1", "dd2", "pd0", "pd1", "pp0", "pp1", "sd0", "sp0", "ss0")
TAIL = 1.0  # bohr past the last grid point over which the integrals decay to zero


@dataclass(frozen=True)
class RepulsiveSpline:
    """The ``Spline`` block: ``exp(-a1 r + a2) + a3`` below the first knot, cubic pieces
    between knots, a quintic last piece, zero from ``cutoff`` on (Hartree, bohr)."""

    exponential: tuple[float, float, float]
    knots: np.ndarray  # (n + 1,) piece boundaries; the last is the cutoff
    coefficients: np.ndarray  # (n, 6) polynomial coefficients in (r − knot), zero-padded

    @property
    def cutoff(self) -> float:
        """Distance (bohr) from which the repulsion is zero."""
        return float(self.knots[-1])

    def __call__(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Repulsive energy (Hartree) and its derivative (Hartree/bohr) at distances ``r``."""
        r = np.asarray(r, dtype=float)
        value, slope = np.zeros_like(r), np.zeros_like(r)
        a1, a2, a3 = self.exponential
        short = r < self.knots[0]
        decay = np.exp(-a1 * r[short] + a2)
        value[short], slope[short] = decay + a3, -a1 * decay
        inside = (r >= self.knots[0]) & (r < self.cutoff)
        piece = np.searchsorted(self.knots, r[inside], side="right") - 1
        x = r[inside] - self.knots[piece]
        c = self.coefficients[piece]
        powers = np.stack([x**k for k in range(6)], axis=1)
        value[inside] = (c * powers).sum(axis=1)
        slope[inside] = sum(k * c[:, k] * x ** (k - 1) for k in range(1, 6))
        return value, slope


@dataclass(frozen=True)
class SlaterKosterTable:
    """One homonuclear ``.skf`` file: on-site terms, integral tables, repulsive spline.

    ``onsite`` and ``occupations`` are ordered (s, p, d); ``hamiltonian`` and ``overlap``
    are (grid points, 10) in the file's column order (``INTEGRALS``); row k holds the
    integrals at ``(k + 1) * grid_spacing`` bohr.
    """

    grid_spacing: float
    onsite: np.ndarray
    occupations: np.ndarray
    hamiltonian: np.ndarray
    overlap: np.ndarray
    repulsive: RepulsiveSpline
    path: Path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SlaterKosterTable:
        """Parse ``path``; ValueError naming the line for a file that is not a simple-format
        homonuclear table with a ``Spline`` block."""
        path = Path(path)
        lines = path.read_text().splitlines()
        try:
            spacing, count = lines[0].replace(",", " ").split()[:2]
            spacing, count = float(spacing), int(count)
            line2 = [float(v) for v in lines[1].split()[:10]]
            table = np.array([_numbers(line)[:20] for line in lines[3 : 3 + count]], dtype=float)
        except (IndexError, ValueError) as err:
            raise ValueError(f"{path}: not a homonuclear Slater–Koster file ({err})") from None
        if table.shape != (count, 20):
            raise ValueError(f"{path}: expected {count} rows of 20 integrals after line 3")
        onsite = np.array([line2[2], line2[1], line2[0]])  # file order: d, p, s
        occupations = np.array([line2[9], line2[8], line2[7]])
        return cls(
            grid_spacing=spacing,
            onsite=onsite,
            occupations=occupations,
            hamiltonian=table[:, :10],
            overlap=table[:, 10:],
            repulsive=_read_spline(lines, path),
            path=path,
        )

    @property
    def grid(self) -> np.ndarray:
        """Distances (bohr) of the table's rows."""
        return self.grid_spacing * np.arange(1, len(self.hamiltonian) + 1)

    @property
    def table_end(self) -> float:
        """The last grid distance (bohr); integrals decay to zero over ``TAIL`` past it."""
        return float(self.grid[-1])

    @property
    def cutoff(self) -> float:
        """Distance (bohr) from which every integral is exactly zero."""
        return self.table_end + TAIL

    @cached_property
    def _splines(self) -> CubicSpline:
        """Cubic splines through all 20 columns (Hamiltonian first, then overlap)."""
        values = np.concatenate([self.hamiltonian, self.overlap], axis=1)
        return CubicSpline(self.grid, values, axis=0)

    @cached_property
    def _tails(self) -> np.ndarray:
        """Quintic coefficients (6, 20) in t = r − table_end that continue each column with
        its value, slope and curvature at the table's end and reach zero with zero slope and
        curvature ``TAIL`` bohr later, so energies and forces stay continuous."""
        end = self.table_end
        y0 = self._splines(end)
        y1 = self._splines(end, 1)
        y2 = self._splines(end, 2)
        h = TAIL
        # value, slope and curvature of c3 t³ + c4 t⁴ + c5 t⁵ at t = h must cancel those of
        # the quadratic part y0 + y1 t + y2 t²/2
        a = np.array(
            [[h**3, h**4, h**5], [3 * h**2, 4 * h**3, 5 * h**4], [6 * h, 12 * h**2, 20 * h**3]]
        )
        b = -np.stack([y0 + y1 * h + y2 * h**2 / 2, y1 + y2 * h, y2])
        high = np.linalg.solve(a, b)
        return np.vstack([y0, y1, y2 / 2, high])

    def integrals(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Hamiltonian and overlap integrals (pairs, 10) at distances ``r`` (bohr) and their
        derivatives along ``r``, in the file's column order; zero from ``cutoff`` on."""
        r = np.asarray(r, dtype=float)
        values = np.zeros((len(r), 20))
        slopes = np.zeros((len(r), 20))
        table = r <= self.table_end
        values[table] = self._splines(r[table])
        slopes[table] = self._splines(r[table], 1)
        tail = (r > self.table_end) & (r < self.cutoff)
        t = r[tail] - self.table_end
        powers = np.stack([t**k for k in range(6)], axis=1)
        values[tail] = powers @ self._tails
        slopes[tail] = powers[:, :5] @ (np.arange(1, 6)[:, None] * self._tails[1:])
        return values[:, :10], values[:, 10:], slopes[:, :10], slopes[:, 10:]


def _numbers(line: str) -> list[float]:
    """The numbers of a table line, expanding the ``n*value`` shorthand of older files."""
    out: list[float] = []
    for token in line.replace(",", " ").split():
        if "*" in token:
            repeat, value = token.split("*")
            out.extend([float(value)] * int(repeat))
        else:
            out.append(float(token))
    return out


def _read_spline(lines: list[str], path: Path) -> RepulsiveSpline:
    """The ``Spline`` block that follows the integral table."""
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Spline")
    except StopIteration:
        raise ValueError(f"{path}: no 'Spline' repulsive block") from None
    count, cutoff = lines[start + 1].split()[:2]
    count = int(count)
    exponential = tuple(float(v) for v in lines[start + 2].split()[:3])
    rows = [[float(v) for v in lines[start + 3 + k].split()] for k in range(count)]
    knots = np.array([row[0] for row in rows] + [rows[-1][1]])
    if not np.isclose(knots[-1], float(cutoff)):
        raise ValueError(f"{path}: the last spline piece ends at {knots[-1]}, not at {cutoff}")
    coefficients = np.zeros((count, 6))
    for k, row in enumerate(rows):
        coefficients[k, : len(row) - 2] = row[2:]
    return RepulsiveSpline(exponential, knots, coefficients)  # type: ignore[arg-type]
