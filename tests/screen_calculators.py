"""Calculator factories for screening tests, importable as ``--calc screen_calculators:NAME``
by the CLI in a subprocess and by Dask workers (tests/ is on their path)."""

from __future__ import annotations

import os
import time

from ase.calculators.emt import EMT

FAR = 4000.0  # Å: a structure shifted this far along x makes FailingEMT raise


class SlowEMT(EMT):
    """EMT that takes ``$SCREEN_SLEEP`` seconds per structure, so a test can kill a screen
    half way."""

    def calculate(self, *args, **kwargs):
        time.sleep(float(os.environ.get("SCREEN_SLEEP", "0")))
        super().calculate(*args, **kwargs)


class FailingEMT(EMT):
    """EMT with a bug: it raises on structures shifted beyond ``FAR`` along x."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and atoms.positions[:, 0].min() > FAR:
            raise RuntimeError("boom")
        super().calculate(atoms, *args, **kwargs)


def slow_emt() -> SlowEMT:
    return SlowEMT()


def failing_emt() -> FailingEMT:
    return FailingEMT()


def counting_emt() -> EMT:
    """EMT, noting the building process's pid in ``$SCREEN_BUILDS`` (one line per build)."""
    with open(os.environ["SCREEN_BUILDS"], "a") as log:
        log.write(f"{os.getpid()}\n")
    return EMT()


def missing_on_workers() -> EMT:
    """EMT here, but a FileNotFoundError on a Dask worker: a model file on the client's
    disk that the cluster's nodes do not see."""
    from ase_au20.compute.engine import inside_worker

    if inside_worker():
        raise FileNotFoundError("weights.pt is not on this node")
    return EMT()


def summed_emt():
    """ASE's SumCalculator of two halves of EMT: a BaseCalculator, not a Calculator."""
    from ase.calculators.mixing import LinearCombinationCalculator

    return LinearCombinationCalculator([EMT(), EMT()], [0.5, 0.5])


def needs_arguments(name: str) -> EMT:
    """A callable that cannot be called bare: not a calculator factory."""
    return EMT()


class InterruptingEMT(EMT):
    """EMT that behaves as if the user pressed Ctrl-C at its ``$INTERRUPT_AT``-th call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        if self.calls == int(os.environ.get("INTERRUPT_AT", "50")):
            raise KeyboardInterrupt
        super().calculate(*args, **kwargs)


def interrupting_emt() -> InterruptingEMT:
    return InterruptingEMT()
