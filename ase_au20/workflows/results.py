"""One HDF5 file per workflow run, written atomically with the DESIGN.md root attributes."""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ase_au20._version import __version__
from ase_au20.workflows.output_folder import current_umask


@dataclass
class Dataset:
    """An array with its unit (``""`` for dimensionless) and an optional description."""

    data: Any
    units: str = ""
    description: str = ""


@dataclass
class Results:
    """Everything one workflow run stores: datasets by HDF5 path, parameters, model card."""

    datasets: dict[str, Dataset] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    model_card: dict[str, Any] = field(default_factory=dict)

    def add(self, path: str, data: Any, units: str = "", description: str = "") -> None:
        """Register a dataset under an HDF5 path such as ``"summary/mean_abs_de"``."""
        self.datasets[path] = Dataset(data, units, description)


def _to_hdf5(data: Any) -> Any:
    array = np.asarray(data)
    if array.dtype.kind in {"U", "O"}:
        return np.asarray([str(x) for x in array.ravel()], dtype=h5py.string_dtype()).reshape(
            array.shape
        )
    return array


def energies_statement(model_card: Mapping[str, Any]) -> str:
    """What the energies of a run are, from its model card: labels of the reference, or
    predictions of a model (never to be stored as labels)."""
    from ase_au20.workflows.structure_files import reference_level

    level = reference_level(dict(model_card))
    if level is not None:
        return f"labels: the reference at level {level}"
    name = model_card.get("model_type") or model_card.get("calculator") or "a calculator"
    return f"predictions of {name}, not labels"


def write_results(path: str | os.PathLike, results: Results) -> Path:
    """Write ``results`` to ``path`` via a temp file + ``os.replace`` (no half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["parameters"] = json.dumps(results.parameters, default=str, sort_keys=True)
            h5.attrs["model_card"] = json.dumps(results.model_card, default=str, sort_keys=True)
            h5.attrs["energies"] = energies_statement(results.model_card)
            h5.attrs["ase_au20_version"] = __version__
            h5.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            for name, ds in results.datasets.items():
                dset = h5.create_dataset(name, data=_to_hdf5(ds.data))
                dset.attrs["units"] = ds.units
                if ds.description:
                    dset.attrs["description"] = ds.description
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], Mapping[str, Any]]:
    """Read every dataset (decoded strings) and the root attributes of a results file."""
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as h5:

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                value = obj[()]
                if obj.dtype.kind == "O" or h5py.check_string_dtype(obj.dtype):
                    value = obj.asstr()[()]
                arrays[name] = np.asarray(value)

        h5.visititems(visit)
        attrs = {key: h5.attrs[key] for key in h5.attrs}
    attrs["parameters"] = json.loads(attrs.get("parameters", "{}"))
    attrs["model_card"] = json.loads(attrs.get("model_card", "{}"))
    return arrays, attrs
