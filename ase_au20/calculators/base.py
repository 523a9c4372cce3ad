"""``Au20Calculator``: one ASE calculator over any registered model (``models.protocol.Model``).

Validation, conformal uncertainty, caching, batching and thread safety live here, and the
model only turns a list of Atoms into raw predictions, so every model type behaves the
same to an ASE user. ``SchNetAu20``, ``KRRAu20`` and ``CommitteeAu20`` only pick the
default shipped model and their load options.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, ClassVar, TextIO

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ase_au20.models.card import summarise_card
from ase_au20.models.domain import DomainVerdict, outside_uncertainty
from ase_au20.models.pair_conformal import PairCalibrator
from ase_au20.models.protocol import ENSEMBLE_KEY, Model
from ase_au20.models.registry import MODELS
from ase_au20.validation import check_cluster

TRAINING_SIZE = 20
PROPERTIES = (
    "energy",
    "free_energy",
    "forces",
    "energies",
    "energy_uncertainty",
    "energy_interval",
    "in_domain",
    "domain_score",
)
# Epistemic spread (eV): ensemble std, committee disagreement or the KRR predictive std;
# only models that have one list it among their implemented properties.
SPREAD = "energy_std"
MEMBERS = ENSEMBLE_KEY  # an ensemble's member energies (eV), for spreads of differences
EMPTY_SHAPES = {"forces": (0, 0, 3), "energies": (0, 0), "energy_interval": (0, 2)}


class OutsideDomainWarning(UserWarning):
    """Input the model accepts but was not trained on (outside its domain of applicability,
    periodic cell, size other than 20)."""


# Set while a caller records every step's domain verdict and reports it itself (relax):
# a context variable, so it holds for this thread's calls only, and the once-only warning
# is kept for the calculator's own callers afterwards.
_VERDICTS_REPORTED_BY_CALLER: ContextVar[bool] = ContextVar("verdicts_reported", default=False)


@contextlib.contextmanager
def domain_reported_by_caller() -> Iterator[None]:
    """Within: our calculators still give every verdict (``in_domain``, ``domain_score``)
    but leave the out-of-domain warning to the caller, which names the step it happened."""
    token = _VERDICTS_REPORTED_BY_CALLER.set(True)
    try:
        yield
    finally:
        _VERDICTS_REPORTED_BY_CALLER.reset(token)


@contextlib.contextmanager
def intervals_for(calc: Calculator, family: str) -> Iterator[None]:
    """Within: ``calc``, when it is one of ours and no family was chosen for it, gives the
    intervals calibrated on ``family`` (what a workflow visits: ``md``, ``minima``,
    ``rattle``, ``isomer``); any other calculator is left as it is."""
    if not isinstance(calc, Au20Calculator) or calc.family is not None:
        yield
        return
    calc.set(family=family)
    try:
        yield
    finally:
        calc.set(family=None)


class Au20Calculator(Calculator):
    """ASE calculator for a trained Au20 model with a calibrated energy error bar.

    ``model``: a registered model name (the shipped model), a trained model directory or a
    loaded model; None takes the class's ``default_model``. ``load_options`` (``device``,
    ``dtype``) reach the loaders that accept them. Parameters ``confidence`` (coverage of
    ``energy_interval``, 0 < c < 1), ``mondrian`` (per predicted-ΔE-bucket calibration) and
    ``family`` (the kind of structures asked about, e.g. ``md``: that family's calibration
    where the model has one, see ``intervals_for``) can be changed with ``calc.set``.

    One calculator may be shared by threads: a lock makes each property request (check
    state, compute, read results) and each ``predict`` atomic, so concurrent calls give the
    results of serial ones.
    """

    implemented_properties = list(PROPERTIES)
    default_parameters = {"confidence": 0.9, "mondrian": True, "family": None}
    default_model: ClassVar[str | None] = None

    def __init__(
        self,
        model: str | os.PathLike[str] | Model | None = None,
        confidence: float = 0.9,
        mondrian: bool = True,
        load_options: dict[str, Any] | None = None,
        family: str | None = None,
        **kwargs: Any,
    ) -> None:
        from ase_au20.models.conformal import ConformalCalibrator

        stored_card = kwargs.pop("model_card_sha256", None)  # from a db row's parameters
        super().__init__(**kwargs)
        self.model = _resolve_model(model, self.default_model, load_options or {})
        model_type = self.model.card.get("model_type")
        if self.default_model is not None and model_type != self.default_model:
            raise ValueError(
                f"{type(self).__name__} takes {self.default_model} models, not a "
                f"{model_type} model: use Au20Calculator, or the calculator of that type"
            )
        self.card = self.model.card
        if stored_card and stored_card != self.card.get("sha256"):
            warnings.warn(
                f"the stored results came from the model with card {stored_card[:12]}…, this "
                f"calculator loads card {str(self.card.get('sha256', ''))[:12]}…: pass "
                "model=DIR of that model to reproduce them",
                UserWarning,
                stacklevel=2,
            )
        self.domain = getattr(self.model, "domain", None)
        if self.domain is None:
            raise ValueError(
                f"the {model_type} model has no domain of applicability: load it from its "
                "directory (models.load_model), or fit one with models.domain.attach_domain"
            )
        conformal = self.card.get("conformal")
        self.calibrator = None if conformal is None else ConformalCalibrator.from_dict(conformal)
        pairs = self.card.get("pair_conformal")
        self.pair_calibrator = None if pairs is None else PairCalibrator.from_dict(pairs)
        # the level of theory itself (DFTB1): exact results, an interval of width zero, any size
        self.is_reference = "reference" in self.card
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        if self.model.has_spread:
            self.implemented_properties = [*PROPERTIES, SPREAD]
        if getattr(self.model, "ensemble_size", 1) > 1:
            self.implemented_properties = [*self.implemented_properties, MEMBERS]
        self.set(confidence=confidence, mondrian=mondrian, family=family)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the lock (e.g. for worker processes); a new one is made on load."""
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def todict(self, skip_default: bool = True) -> dict[str, Any]:
        """ASE's parameters plus the model that gives the results (its type and the SHA-256
        of its card): what ``ase.db`` stores as a row's ``calculator_parameters``."""
        out = super().todict(skip_default=skip_default)
        out["model"] = str(self.model.card.get("model_type", ""))
        out["model_card_sha256"] = str(self.model.card.get("sha256", ""))
        return out

    def _get_name(self) -> str:
        """The model type's plugin name (``schnet_au20``): what ``ase.db`` stores as a row's
        ``calculator`` and ``get_calculator_class`` takes back."""
        entry = MODELS.get(str(self.model.card.get("model_type", "")))
        return entry.plugin_name if entry is not None else type(self).__name__.lower()

    def get_property(self, name: str, atoms: Atoms | None = None, allow_calculation: bool = True):
        """ASE's property request, atomic under the calculator's lock."""
        with self._lock:
            return super().get_property(name, atoms, allow_calculation)

    @property
    def confidence(self) -> float:
        """Target coverage of ``energy_interval``."""
        return float(self.parameters["confidence"])

    @property
    def mondrian(self) -> bool:
        """Whether the interval is calibrated per predicted-ΔE bucket."""
        return bool(self.parameters["mondrian"])

    @property
    def family(self) -> str | None:
        """The family of structures whose calibration the interval takes (None: pooled)."""
        return self.parameters.get("family")

    def set(self, **kwargs: Any) -> dict[str, Any]:
        """Change ``confidence``/``mondrian``/``family``; cached results are dropped when
        they change."""
        if "confidence" in kwargs:
            c = float(kwargs["confidence"])
            if not 0.0 < c < 1.0:
                raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {c}")
            if getattr(self, "calibrator", None) is not None:
                self.calibrator.level_for(c)  # ValueError above the calibrated grid
            kwargs["confidence"] = c
        if "mondrian" in kwargs:
            kwargs["mondrian"] = bool(kwargs["mondrian"])
        if kwargs.get("family") is not None and not isinstance(kwargs["family"], str):
            raise ValueError(f"family must be a family name or None, got {kwargs['family']!r}")
        changed = super().set(**kwargs)
        if changed:
            self.reset()
        return changed

    def _model_predict(self, structures: list[Atoms], forces: bool) -> dict[str, Any]:
        """The model's predictions with padded per-atom arrays cut back to each size."""
        out = self.model.predict(structures, forces=forces)
        sizes = [len(a) for a in structures]
        raw: dict[str, Any] = {
            "energy": out["energy"],
            "free_energy": out.get("free_energy", out["energy"]),
            "energies": [out["energies"][i][:n] for i, n in enumerate(sizes)],
            "spread": out.get(SPREAD),
            "members": out.get(MEMBERS),
        }
        if forces:
            raw["forces"] = [out["forces"][i][:n] for i, n in enumerate(sizes)]
        return raw

    # -- input handling ----------------------------------------------------------------

    def _warn_once(
        self, key: str, message: str, category: type[Warning] = OutsideDomainWarning
    ) -> None:
        """Warn about ``key`` the first time this calculator meets it, then stay quiet."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, category, stacklevel=4)

    def _prepare(self, atoms: Atoms, index: int | None = None) -> Atoms:
        """Validate ``atoms`` and return it as an isolated cluster for the model: a
        non-periodic copy when it is periodic, else itself (the models only read it)."""
        try:
            check_cluster(atoms)
        except ValueError as err:
            if index is None:
                raise
            raise ValueError(f"structure {index}: {err}") from None
        if len(atoms) != TRAINING_SIZE and not self.is_reference:
            self._warn_once(
                "size",
                f"cluster of {len(atoms)} atoms is outside the training domain "
                f"(Au{TRAINING_SIZE}): predictions and error bars are extrapolations",
            )
        if atoms.has("initial_charges") or atoms.has("initial_magmoms"):  # ASE array names
            charged = np.any(atoms.get_initial_charges()) or np.any(
                atoms.get_initial_magnetic_moments()
            )
            if charged:
                self._warn_once(
                    "charge",
                    "initial charges or magnetic moments are ignored: the model knows neutral, "
                    "non-magnetic gold clusters only",
                    UserWarning,
                )
        if not atoms.pbc.any():
            return atoms
        self._warn_once(
            "pbc",
            "periodic boundary conditions are ignored: the structure is treated as an "
            "isolated cluster",
        )
        return Atoms(atoms.numbers, positions=atoms.positions, pbc=False)

    # -- predictions -------------------------------------------------------------------

    def _uncertainty(self, energy: np.ndarray, spread: np.ndarray | None) -> np.ndarray:
        """Half-width of the conformal interval at ``confidence`` (NaN when uncalibrated,
        zero for the reference)."""
        if self.is_reference:
            return np.zeros(len(energy))
        if self.calibrator is None:
            self._warn_once(
                "uncalibrated",
                "the model card has no conformal calibration: energy_uncertainty is NaN",
                UserWarning,
            )
            return np.full(len(energy), np.nan)
        return np.asarray(
            self.calibrator.half_width(
                energy,
                confidence=self.confidence,
                mondrian=self.mondrian,
                spread=spread,
                family=self.family,
            ),
            dtype=float,
        ).reshape(len(energy))

    def _evaluate(self, structures: list[Atoms], properties: Sequence[str]) -> dict[str, Any]:
        """Run the model once on ``structures`` and derive every requested property."""
        unknown = [p for p in properties if p not in self.implemented_properties]
        if unknown:
            raise ValueError(
                f"unknown properties {unknown}; choose from {self.implemented_properties}"
            )
        raw = self._model_predict(structures, forces="forces" in properties)
        energy = np.asarray(raw["energy"], dtype=float).reshape(len(structures))
        free_energy = np.asarray(raw["free_energy"], dtype=float).reshape(len(structures))
        out: dict[str, Any] = {"energy": energy, "free_energy": free_energy}
        out["energies"] = [np.asarray(e, dtype=float) for e in raw["energies"]]
        if "forces" in properties:
            out["forces"] = [np.asarray(f, dtype=float) for f in raw["forces"]]
        verdict = self._sized(self.domain.verdict(structures), structures)
        out["domain_score"], out["in_domain"] = verdict.score, verdict.in_domain
        if not verdict.in_domain.all() and not _VERDICTS_REPORTED_BY_CALLER.get():
            k = int(np.argmax(verdict.score))
            consequence = (
                "the reference energy is exact, but the geometry lies beyond the data's isomers"
                if self.is_reference
                else "the energy is an extrapolation and energy_uncertainty is widened by the "
                "score squared"
            )
            self._warn_once(
                "domain",
                f"structure outside the model's domain of applicability ({verdict.worst_check[k]}"
                f" check, domain score {verdict.score[k]:.2f} > 1): {consequence}",
            )
        half = outside_uncertainty(self._uncertainty(energy, raw.get("spread")), verdict.score)
        if raw.get("spread") is not None:
            out[SPREAD] = np.asarray(raw["spread"], dtype=float).reshape(len(structures))
        if raw.get("members") is not None:
            out[MEMBERS] = np.asarray(raw["members"], dtype=float).reshape(len(structures), -1)
        out["energy_uncertainty"] = half
        out["energy_interval"] = np.stack([energy - half, energy + half], axis=1)
        return out

    def _sized(self, verdict: DomainVerdict, structures: list[Atoms]) -> DomainVerdict:
        """The verdict with clusters of another size than the training isomers' outside
        (score 1 + |N − 20|): a model of Au20 cannot judge Au19 or Au21, however alike
        their geometry. The reference takes any size."""
        sizes = np.array([len(a) for a in structures])
        off = sizes != TRAINING_SIZE
        if self.is_reference or not off.any():
            return verdict
        score = np.where(
            off, np.maximum(verdict.score, 1.0 + np.abs(sizes - TRAINING_SIZE)), verdict.score
        )
        worst = ["size" if o else w for o, w in zip(off, verdict.worst_check, strict=True)]
        return DomainVerdict(score, score <= 1.0, worst)

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = tuple(all_changes),
    ) -> None:
        """ASE entry point: energy, error bar and per-atom energies; forces only if asked."""
        with self._lock:
            self._calculate(atoms, properties, system_changes)

    def _calculate(
        self, atoms: Atoms | None, properties: Sequence[str], system_changes: Sequence[str]
    ) -> None:
        """``calculate`` under the lock."""
        super().calculate(atoms, properties, system_changes)
        structure = self._prepare(self.atoms)
        wanted = ["energy", *(["forces"] if "forces" in properties else [])]
        out = self._evaluate([structure], wanted)
        self.results = {
            "energy": float(out["energy"][0]),
            "free_energy": float(out["free_energy"][0]),
            "energies": out["energies"][0],
            "energy_uncertainty": float(out["energy_uncertainty"][0]),
            "energy_interval": out["energy_interval"][0],
            "in_domain": bool(out["in_domain"][0]),
            "domain_score": float(out["domain_score"][0]),
        }
        if "forces" in out:
            self.results["forces"] = out["forces"][0]
        if SPREAD in out:
            self.results[SPREAD] = float(out[SPREAD][0])
        if MEMBERS in out:
            self.results[MEMBERS] = out[MEMBERS][0]

    def predict(
        self, structures: Sequence[Atoms], properties: Sequence[str] = ("energy",)
    ) -> dict[str, np.ndarray]:
        """Evaluate many structures in one batched model call.

        Returns arrays keyed by the requested properties: ``energy``/``free_energy``/
        ``energy_uncertainty``/``in_domain``/``domain_score`` (n,), ``energy_interval``
        (n, 2), ``member_energies`` (n, M) of an ensemble, ``energies`` (n, N) and ``forces``
        (n, N, 3) (object arrays when cluster sizes differ).
        """
        if isinstance(properties, str):
            properties = (properties,)
        with self._lock:
            prepared = [self._prepare(a, index=i) for i, a in enumerate(structures)]
            if not prepared:
                return {p: np.empty(EMPTY_SHAPES.get(p, (0,))) for p in properties}
            out = self._evaluate(prepared, list(properties))
        result: dict[str, np.ndarray] = {}
        for prop in properties:
            value = out[prop]
            if isinstance(value, list):
                same = len({v.shape for v in value}) == 1
                value = np.stack(value) if same else _object_array(value)
            result[prop] = value
        return result

    # -- relative energies -------------------------------------------------------------

    def energy_difference(
        self, a: Atoms, b: Atoms, confidence: float | None = None
    ) -> dict[str, Any]:
        """E(a) − E(b) (eV) with its own calibrated interval and the probability that a is
        the lower: ``delta``, ``interval`` (lo, hi), ``p_lower``, ``in_domain`` (both)."""
        out = self.energy_differences([a, b], [(0, 1)], confidence)
        return {
            "delta": float(out["delta"][0]),
            "interval": (float(out["interval"][0, 0]), float(out["interval"][0, 1])),
            "p_lower": float(out["p_lower"][0]),
            "in_domain": bool(out["in_domain"][0]),
        }

    def energy_differences(
        self,
        structures: Sequence[Atoms],
        pairs: Sequence[tuple[int, int]] | None = None,
        confidence: float | None = None,
        predicted: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """``energy_difference`` of many pairs (i, j) of ``structures`` (default: all i < j)
        from one batched prediction: arrays ``pairs`` (m, 2), ``delta``, ``interval`` (m, 2),
        ``p_lower`` and ``in_domain``. ``predicted``: this calculator's ``predict`` of
        ``structures`` made already (with ``domain_score``, ``in_domain`` and, for a model
        with a spread, ``energy_std``), so a caller that has it does not predict twice.

        The interval is calibrated on the differences of calib pairs (the two errors are
        correlated, so it is narrower than two half-widths added) and scaled by the pair's
        spread when the model has one; outside the domain it widens by the larger domain
        score squared, and ``p_lower`` moves towards 0.5. A geometry paired with itself has
        the exact difference 0: interval (0, 0), ``p_lower`` 0.5.
        """
        if self.pair_calibrator is None:
            raise ValueError(
                "the model card has no pair calibration (pair_conformal): retrain the model "
                "with this version"
            )
        confidence = self.confidence if confidence is None else float(confidence)
        n = len(structures)
        index = (
            np.stack(np.triu_indices(n, 1), axis=1)
            if pairs is None
            else np.asarray(pairs, dtype=int).reshape(-1, 2)
        )
        if len(index) and (index.min() < 0 or index.max() >= n):
            raise ValueError(f"pair indices must lie in 0..{n - 1}")
        wanted = (
            "energy",
            "domain_score",
            "in_domain",
            *((SPREAD,) if self.model.has_spread else ()),
        )
        out = predicted
        if out is None or not set(wanted) <= set(out):
            out = self.predict(structures, wanted)
        same = _same_geometry(structures, index[:, 0], index[:, 1])  # one structure twice
        return self.pair_calibrator.differences(
            index, out["energy"], out["domain_score"], out["in_domain"], out.get(SPREAD), same,
            confidence,
        )  # fmt: skip

    # -- model card --------------------------------------------------------------------

    def describe(self, file: TextIO | None = None) -> None:
        """Print a short summary of the model card (what, trained on, how good) to ``file``
        (default stdout). Returns nothing, so a REPL shows the summary once; the text itself
        is ``summarise_card(calc.card, calc.confidence, calc.mondrian)``."""
        print(summarise_card(self.card, self.confidence, self.mondrian), file=file)


def _same_geometry(structures: Sequence[Atoms], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Whether pair (i[k], j[k]) is one geometry twice (same numbers and positions)."""
    first: dict[bytes, int] = {}
    ids = np.array(
        [
            first.setdefault(a.numbers.tobytes() + np.ascontiguousarray(a.positions).tobytes(), k)
            for k, a in enumerate(structures)
        ]
    )
    return ids[i] == ids[j]


class DeviceCalculator(Au20Calculator):
    """An ``Au20Calculator`` whose model runs on a torch ``device`` in ``dtype`` (SchNet and
    the models that hold one); ``device="auto"`` picks CUDA when available."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Model | None = None,
        device: str = "auto",
        confidence: float = 0.9,
        mondrian: bool = True,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        options = {"device": device, "dtype": dtype}
        super().__init__(model, confidence, mondrian, load_options=options, **kwargs)


def _resolve_model(
    model: str | os.PathLike[str] | Model | None, default: str | None, options: dict[str, Any]
) -> Model:
    """A loaded model from a name, a directory, a model, or the class default."""
    from ase_au20.models import load_model

    if model is None:
        if default is None:
            raise ValueError("Au20Calculator needs a model: a registered name or a directory")
        model = default
    if isinstance(model, str | os.PathLike):
        return load_model(model, **options)
    if not isinstance(model, Model):
        raise TypeError(
            f"{type(model).__name__} does not follow the model protocol "
            "(card, has_spread, predict, save, load)"
        )
    return model


def _object_array(items: list[np.ndarray]) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr
