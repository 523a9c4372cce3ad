"""``CommitteeAu20``: the weighted KRR + SchNet committee as an ASE calculator."""

from __future__ import annotations

import os
from typing import Any

from ase_au20.calculators.base import Au20Calculator


class CommitteeAu20(Au20Calculator):
    """Committee energies (weighted member average), forces, the member disagreement as
    ``energy_std`` and a conformal interval scaled by it.

    ``model``: None for the shipped committee or a committee directory; ``device`` and
    ``dtype`` reach its SchNet member.
    """

    default_model = "committee"

    def __init__(
        self,
        model: str | os.PathLike | Any | None = None,
        device: str = "auto",
        confidence: float = 0.9,
        mondrian: bool = True,
        dtype: Any = "float32",
        **kwargs: Any,
    ) -> None:
        options = {"device": device, "dtype": dtype}
        super().__init__(model, confidence, mondrian, load_options=options, **kwargs)
