"""The one table of model types: name -> model class, calculator class, load options, help,
and how the type trains.

Loading, card validation, the ASE plugin, the CLI's ``--calc`` choices and help,
``evaluate`` and ``reproduce`` all read this table, so a new model type is one folder under
``models/`` plus one entry here. Classes are import strings: reading the table imports
neither torch nor dscribe.

Training contract: ``config`` names a settings dataclass (its fields carry their help, see
``ase_au20.settings``) and ``fit`` a function ``fit(db, out, config, progress=True)`` that
trains on the database's train/val rows, ends with the shared finishing step
(``models.finishing.finish``) and returns the model; ``recipes`` name functions that return
a config from keyword changes (``--recipe NAME``). A type with a ``fit`` and no verb module
of its own gets ``au20-workflow train NAME`` generated from these.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    """One registered model type.

    ``model`` and ``calculator`` are ``"module:Class"`` strings; ``options`` are the
    keyword arguments its ``load`` accepts (others given to ``load_model`` are ignored);
    ``citation`` is what a user of this type must cite besides the package.
    """

    name: str
    model: str
    calculator: str
    summary: str
    options: tuple[str, ...] = ()
    citation: str = ""
    config: str = ""  # "module:Class" of its settings dataclass ("" for none)
    fit: str = ""  # "module:function", fit(db, out, config, progress=True)
    recipes: tuple[tuple[str, str], ...] = ()  # (name, "module:function") config makers

    @property
    def plugin_name(self) -> str:
        """Name in ASE's plugin collection (``get_calculator_class``)."""
        return f"{self.name.replace('-', '_')}_au20"


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "schnet",
            "ase_au20.models.schnet.frozen:FrozenSchNetModel",
            "ase_au20.calculators.schnet:SchNetAu20",
            "SchNet ensemble trained on the reference's energies and forces; fast, autograd forces",
            ("device", "dtype"),
            config="ase_au20.models.schnet.config:SchNetConfig",
            fit="ase_au20.models.schnet.fit:fit_schnet",
            recipes=(
                ("shipped", "ase_au20.models.schnet.config:shipped_config"),
                ("force", "ase_au20.models.schnet.config:force_config"),
                ("finetune", "ase_au20.models.schnet.config:finetune_config"),
            ),
        ),
        ModelEntry(
            "krr",
            "ase_au20.models.krr.model:KRRModel",
            "ase_au20.calculators.krr:KRRAu20",
            "SOAP + kernel ridge regression; analytic forces, predictive std",
            config="ase_au20.models.krr.search:KRRSearch",
            fit="ase_au20.models.krr.training:train_krr",
            recipes=(("shipped", "ase_au20.models.krr.search:shipped_search"),),
        ),
        ModelEntry(
            "xtb-delta",
            "ase_au20.models.xtb_delta.model:XtbDeltaModel",
            "ase_au20.calculators.xtb_delta:XtbDeltaAu20",
            "GFN1-xTB (tblite) + KRR on its residual; most accurate, ~0.5 s per call",
            config="ase_au20.models.krr.search:KRRSearch",
            fit="ase_au20.models.xtb_delta.training:train_xtb_delta",
        ),
        ModelEntry(
            "dftb",
            "ase_au20.models.dftb.model:DFTBModel",
            "ase_au20.calculators.dftb:DFTBAu20",
            "DFTB1 with the auorg-1-1 tables: the labels' level of theory, exact, ~7 ms per call",
            citation="auorg-1-1 tables: A. Fihey et al., J. Comput. Chem. 36, 2075 (2015); "
            "DFTB: M. Elstner et al., Phys. Rev. B 58, 7260 (1998)",
        ),
        ModelEntry(
            "committee",
            "ase_au20.models.committee.model:CommitteeModel",
            "ase_au20.calculators.committee:CommitteeAu20",
            "weighted average of the shipped KRR and SchNet; their disagreement is the spread",
            ("device", "dtype"),
            config="ase_au20.models.committee.config:CommitteeConfig",
            fit="ase_au20.models.committee.training:fit_committee",
        ),
    )
}
MODEL_NAMES = tuple(MODELS)
# a calculator's plugin name (``schnet_au20``, a db row's ``calculator``) names its model too
_BY_PLUGIN_NAME = {e.plugin_name: e.name for e in MODELS.values()}


def model_name(spec: str) -> str | None:
    """The registered model type that ``spec`` names, by model or plugin name, any case
    (``"SchNet"`` and ``"schnet_au20"`` are ``"schnet"``); None for anything else."""
    name = spec.lower()
    return name if name in MODELS else _BY_PLUGIN_NAME.get(name)


def entry(name: str) -> ModelEntry:
    """The registered entry of ``name``; ValueError listing the known names otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown model type {name!r}: use {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def import_object(spec: str) -> Any:
    """The object named by ``"module:attribute"``."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def model_class(name: str) -> Any:
    """The model class registered as ``name`` (imports its module)."""
    return import_object(entry(name).model)


def calculator_class(name: str) -> Any:
    """The ASE calculator class registered for ``name`` (imports its module)."""
    return import_object(entry(name).calculator)


def load_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that ``name``'s ``load`` accepts."""
    accepted = entry(name).options
    return {k: v for k, v in options.items() if k in accepted}


def trainable() -> tuple[ModelEntry, ...]:
    """The registered types that train (a ``fit``), in table order."""
    return tuple(e for e in MODELS.values() if e.fit)
