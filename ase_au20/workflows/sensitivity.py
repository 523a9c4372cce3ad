"""Task 3: how strongly the energy of a cluster reacts to small random perturbations.

Random k-atom Gaussian perturbations over a σ grid, single-site perturbations (K_i),
diagonal Hessian blocks from forces, and the log-log slope of |ΔE| against RMSD (≈ 2 at a
true minimum). Works with any ASE calculator; every structure goes through
:func:`predict_batch` in a few large batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import BFGS
from scipy.stats import linregress, norm
from tqdm.auto import tqdm

from ase_au20.geometry.perturbation import (
    Perturbations,
    random_perturbations,
    single_site_perturbations,
)
from ase_au20.models.protocol import ENSEMBLE_KEY
from ase_au20.workflows.any_calculator import predict_batch
from ase_au20.workflows.stiffness import (
    harmonic_mean_abs_de,
    harmonic_stiffness,
    hessian_diagonal_blocks,
)

DEFAULT_SIGMAS = (0.01, 0.02, 0.03, 0.05, 0.08)
DEFAULT_KS = (1, 2, 4, 8)


@dataclass
class SensitivityConfig:
    """Parameters of one sensitivity run (stored in the HDF5 ``parameters`` attribute)."""

    sigmas: tuple[float, ...] = DEFAULT_SIGMAS
    ks: tuple[int, ...] = DEFAULT_KS
    repeats: int = 50
    seed: int = 0
    site_sigma: float | None = None  # None: the smallest σ
    site_repeats: int | None = None  # None: ``repeats``
    fd_step: float = 0.01  # Å, finite-difference step for the Hessian blocks
    batch_size: int = 512  # structures per predict call

    def __post_init__(self) -> None:
        self.sigmas = tuple(sorted(float(s) for s in self.sigmas))
        self.ks = tuple(sorted(int(k) for k in self.ks))
        if not self.sigmas or not self.ks:
            raise ValueError("need at least one sigma and one k")
        if self.site_sigma is None:
            self.site_sigma = self.sigmas[0]
        if self.site_repeats is None:
            self.site_repeats = self.repeats
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def as_dict(self) -> dict:
        """JSON-ready view."""
        return asdict(self)


@dataclass
class SensitivityResult:
    """Everything a sensitivity run computed."""

    structure: Atoms
    base_energy: float
    base_uncertainty: float
    base_fmax: float  # largest force (eV/Å) on the base structure: ~0 at a true minimum
    samples: pd.DataFrame  # one row per random perturbation
    site_samples: pd.DataFrame  # one row per single-site perturbation
    summary: pd.DataFrame  # one row per (sigma, k)
    global_k: float  # mean |ΔE| (eV) over all k at the smallest σ
    sites: pd.DataFrame  # per atom: K, K_std, n, harmonic stiffness, harmonic expectation
    hessian_blocks: np.ndarray  # (N, 3, 3) eV/Å²
    slope: float  # d log|ΔE| / d log RMSD
    slope_stderr: float
    intercept: float  # log10 |ΔE| at RMSD = 1 Å
    config: SensitivityConfig = field(default_factory=SensitivityConfig)


def relax(
    atoms: Atoms, calc: Calculator, fmax: float = 0.01, steps: int = 1000
) -> tuple[Atoms, bool]:
    """A BFGS-relaxed copy of ``atoms`` (``fmax`` eV/Å) and whether it converged."""
    relaxed = atoms.copy()
    relaxed.calc = calc
    converged = BFGS(relaxed, logfile=None).run(fmax=fmax, steps=steps)
    relaxed.calc = None
    return relaxed, bool(converged)


def evaluate_energies(
    calc: Calculator, structures: Sequence[Atoms], batch_size: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Energies, uncertainties (NaN where the calculator has none) and, from an ensemble,
    the members' energies (n, M; None otherwise), in batches."""
    ensemble = ENSEMBLE_KEY in getattr(calc, "implemented_properties", ())
    wanted = ("energy", *((ENSEMBLE_KEY,) if ensemble else ()))
    energies, uncertainties, members = [], [], []
    starts = range(0, len(structures), batch_size)
    for start in tqdm(starts, desc="energies", unit="batch", disable=not progress):
        batch = predict_batch(calc, structures[start : start + batch_size], wanted)
        energies.append(np.asarray(batch["energy"], dtype=float).reshape(-1))
        uncertainties.append(np.asarray(batch["energy_uncertainty"], dtype=float).reshape(-1))
        if ensemble:
            members.append(np.asarray(batch[ENSEMBLE_KEY], dtype=float))
    return (
        np.concatenate(energies),
        np.concatenate(uncertainties),
        np.concatenate(members) if ensemble else None,
    )


def difference_uncertainty(
    members: np.ndarray | None, n: int, confidence: float, exact: bool = False
) -> np.ndarray:
    """Half-width z·s of each ΔE = E − E_0 at ``confidence`` (structure 0 the base), s the
    ensemble members' spread of their own ΔE: nearby geometries share most of their error,
    which the members' differences cancel and two absolute intervals would not. Zero from
    an ``exact`` calculator (the reference: intervals of width zero); NaN for each of the
    ``n`` structures without members."""
    if exact:
        return np.zeros(n)
    if members is None:
        return np.full(n, np.nan)
    z = float(norm.ppf(0.5 + confidence / 2))
    return z * (members - members[:1]).std(axis=1, ddof=1)


def _sample_table(
    pert: Perturbations,
    energies: np.ndarray,
    unc: np.ndarray,
    base: float,
    delta_unc: np.ndarray,
) -> pd.DataFrame:
    delta = energies - base
    return pd.DataFrame(
        {
            "sigma": pert.sigma,
            "k": pert.k,
            "repeat": pert.repeat,
            "rmsd": pert.rmsd,
            "energy_base": np.full(len(pert), base),
            "energy": energies,
            "delta_e": delta,
            "abs_delta_e": np.abs(delta),
            "uncertainty": unc,
            "delta_uncertainty": delta_unc,
        }
    )


def summarize(samples: pd.DataFrame) -> pd.DataFrame:
    """Per (σ, k): mean |ΔE|, RMSE of ΔE, mean RMSD, std |ΔE|, n, and the share of ΔE the
    model resolves: |ΔE| above the uncertainty of the difference itself.

    The share is NaN when the calculator gives no spread of differences (no ensemble: EMT,
    KRR); an absolute interval would be the wrong yardstick, far wider than ΔE's error.
    """

    def cell(group: pd.DataFrame) -> pd.Series:
        known = group["delta_uncertainty"].notna()
        resolvable = (group["abs_delta_e"] > group["delta_uncertainty"])[known]
        return pd.Series(
            {
                "mean_abs_de": group["abs_delta_e"].mean(),
                "rmse_de": float(np.sqrt((group["delta_e"] ** 2).mean())),
                "mean_rmsd": group["rmsd"].mean(),
                "std_abs_de": group["abs_delta_e"].std(ddof=1) if len(group) > 1 else 0.0,
                "n": len(group),
                "share_resolvable": resolvable.mean() if known.any() else np.nan,
            }
        )

    rows = [
        {"sigma": sigma, "k": k, **cell(group)}
        for (sigma, k), group in samples.groupby(["sigma", "k"], sort=True)
    ]
    table = pd.DataFrame(rows)
    table["n"] = table["n"].astype(int)
    return table


def fit_loglog_slope(rmsd: np.ndarray, abs_de: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, its standard error and intercept of log10|ΔE| vs log10 RMSD."""
    keep = (rmsd > 0) & (abs_de > 0)
    if keep.sum() < 3:
        raise ValueError("need at least three samples with RMSD > 0 and |ΔE| > 0 to fit a slope")
    fit = linregress(np.log10(rmsd[keep]), np.log10(abs_de[keep]))
    return float(fit.slope), float(fit.stderr), float(fit.intercept)


def run_sensitivity(
    atoms: Atoms,
    calc: Calculator,
    config: SensitivityConfig | None = None,
    progress: bool = True,
) -> SensitivityResult:
    """Perturb ``atoms`` as set out in ``config`` and measure the energy response with ``calc``."""
    config = config or SensitivityConfig()
    rng = np.random.default_rng(config.seed)
    base = atoms.copy()
    base.calc = None
    random_set = random_perturbations(base, config.sigmas, config.ks, config.repeats, rng)
    site_set = single_site_perturbations(base, config.site_sigma, config.site_repeats, rng)
    structures = [base, *random_set.structures(base), *site_set.structures(base)]
    energies, unc, members = evaluate_energies(calc, structures, config.batch_size, progress)
    base_energy, base_unc = float(energies[0]), float(unc[0])
    confidence = float(getattr(calc, "confidence", 0.9))
    exact = bool(np.all(unc == 0.0))  # the reference's energies carry no error
    delta_unc = difference_uncertainty(members, len(structures), confidence, exact)
    n_random = len(random_set)
    random_part, site_part = slice(1, 1 + n_random), slice(1 + n_random, None)
    samples = _sample_table(
        random_set, energies[random_part], unc[random_part], base_energy, delta_unc[random_part]
    )
    chosen = [tuple(int(i) for i in row if i >= 0) for row in random_set.indices]
    samples.insert(3, "indices", chosen)
    site_samples = _sample_table(
        site_set, energies[site_part], unc[site_part], base_energy, delta_unc[site_part]
    )
    site_samples.insert(0, "site", site_set.indices[:, 0])
    blocks = hessian_diagonal_blocks(calc, base, config.fd_step)
    base_forces = np.asarray(predict_batch(calc, [base], ("forces",))["forces"][0], dtype=float)
    per_site = site_samples.groupby("site")["abs_delta_e"]
    sites = pd.DataFrame(
        {
            "site": np.arange(len(base)),
            "K": per_site.mean().to_numpy(),
            "K_std": per_site.std(ddof=1).fillna(0.0).to_numpy(),
            "n": per_site.size().to_numpy(),
            "harmonic_stiffness": harmonic_stiffness(blocks),
            "harmonic_expected_de": harmonic_mean_abs_de(blocks, config.site_sigma),
        }
    )
    smallest = samples["sigma"] == config.sigmas[0]
    slope, stderr, intercept = fit_loglog_slope(
        samples["rmsd"].to_numpy(), samples["abs_delta_e"].to_numpy()
    )
    return SensitivityResult(
        structure=base,
        base_energy=base_energy,
        base_uncertainty=base_unc,
        base_fmax=float(np.linalg.norm(base_forces, axis=1).max()),
        samples=samples,
        site_samples=site_samples,
        summary=summarize(samples),
        global_k=float(samples.loc[smallest, "abs_delta_e"].mean()),
        sites=sites,
        hessian_blocks=blocks,
        slope=slope,
        slope_stderr=stderr,
        intercept=intercept,
        config=config,
    )


def compare_with_reference(model: SensitivityResult, reference: SensitivityResult) -> pd.DataFrame:
    """Per site, the model's and the reference's stiffness side by side (each run on its own
    minimum with the same perturbations): K_i, the Hessian block's expected |ΔE| and the
    ratio of the two expectations; the rank of each site by stiffness in both (sites of one
    symmetry class tie, so compare rankings by a rank correlation, not rank by rank)."""
    ours = model.sites["harmonic_expected_de"].to_numpy()
    theirs = reference.sites["harmonic_expected_de"].to_numpy()
    return pd.DataFrame(
        {
            "site": model.sites["site"].to_numpy(),
            "K_model": model.sites["K"].to_numpy(),
            "K_reference": reference.sites["K"].to_numpy(),
            "hessian_de_model": ours,
            "hessian_de_reference": theirs,
            "ratio": ours / theirs,
            "rank_model": np.argsort(np.argsort(-ours)),
            "rank_reference": np.argsort(np.argsort(-theirs)),
        }
    )
