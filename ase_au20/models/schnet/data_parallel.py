"""CPU data parallelism for training: one process per core, gradients summed every step.

The batch is split row by row over ``workers`` processes (each with one torch thread); after
each backward pass the gradients are summed through shared memory, so every process takes
the same optimiser step and keeps the same weights. Processes rather than threads because
torch's intra-op threads barely help the many small tensor operations of a 20-atom batch.
Not DistributedDataParallel: it is no faster here (``benchmarks/gradient_exchange.py``), and
its reducer expects one forward per backward where our loss runs up to three (energies,
zero-force and teacher-force passes) and a process may hold an empty share of a batch.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


class Shard:
    """This process's place among ``workers`` data-parallel processes (rank 0 reports).

    ``exchange`` is a shared-memory tensor ``[2, workers, n_parameters]`` through which the
    processes sum their gradients (see ``sum_gradients``); None with one process.
    """

    def __init__(self, rank: int = 0, workers: int = 1, exchange: torch.Tensor | None = None):
        if workers > 1 and exchange is None:
            raise ValueError("data-parallel processes need a shared gradient exchange buffer")
        self.rank, self.workers, self.exchange = rank, workers, exchange
        self._steps = 0

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Every ``workers``-th entry of ``idx``, starting at this process's rank."""
        return idx[self.rank :: self.workers]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes (in place; unchanged with one process)."""
        if self.workers > 1:
            dist.all_reduce(tensor)
        return tensor

    def sum_gradients(self, module: torch.nn.Module) -> None:
        """Replace each parameter gradient by its sum over all processes.

        Each process writes its flat gradient into its row of the shared buffer, waits for
        the others (a one-number all-reduce as barrier) and adds the rows in rank order, so
        every process gets the same sum; the two halves of the buffer alternate so that no
        process overwrites a row another one is still reading. A parameter without a
        gradient in this process counts as zero.
        """
        if self.workers == 1:
            return
        params = list(module.parameters())
        rows = self.exchange[self._steps % 2]
        self._steps += 1
        offset = 0
        for p in params:
            block = rows[self.rank, offset : offset + p.numel()]
            if p.grad is None:
                block.zero_()
            else:
                block.copy_(p.grad.reshape(-1))
            offset += p.numel()
        if offset != rows.shape[1]:
            raise ValueError(f"gradient exchange holds {rows.shape[1]} values, model has {offset}")
        dist.all_reduce(torch.zeros(1))  # barrier: every row written
        total = rows.sum(0)
        offset = 0
        for p in params:
            p.grad = total[offset : offset + p.numel()].view_as(p)
            offset += p.numel()


SINGLE = Shard()
PARENT_POLL = 1.0  # s between a worker's looks at whether its parent still runs


def _exit_with(parent: int) -> None:
    """End this process as soon as ``parent`` is gone: a training that is killed must not
    leave its workers running on (and writing checkpoints) without it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _entry(
    rank: int,
    workers: int,
    rendezvous: str,
    exchange: torch.Tensor,
    parent: int,
    fn: Callable[..., None],
    args: tuple[Any, ...],
) -> None:
    """Process body: join the process group, run ``fn(shard, *args)``, leave the group;
    the process ends with its parent."""
    _exit_with(parent)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=workers)
    try:
        fn(Shard(rank, workers, exchange), *args)
    finally:
        dist.destroy_process_group()


def run_data_parallel(fn: Callable[..., None], workers: int, n_parameters: int, *args: Any) -> None:
    """Run ``fn(shard, *args)`` in ``workers`` fresh processes and wait for all of them.

    ``n_parameters`` is the number of trainable values whose gradients the shards sum.
    ``fn`` must be a module-level function (processes are spawned, not forked: forking a
    process that already ran torch can deadlock); it returns results through files. An
    exception in any process is raised here with that process's traceback. As with any
    spawned multiprocessing, a script that calls this needs the ``if __name__ ==
    "__main__":`` guard (the ``au20-workflow`` command has it).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers > (os.cpu_count() or 1):
        raise ValueError(f"workers ({workers}) exceeds the {os.cpu_count()} available CPUs")
    with tempfile.TemporaryDirectory(prefix="au20-data-parallel-") as tmp:
        rendezvous = (Path(tmp) / "rendezvous").as_uri()
        exchange = torch.zeros(2, workers, n_parameters).share_memory_()
        args = (workers, rendezvous, exchange, os.getpid(), fn, args)
        mp.spawn(_entry, args=args, nprocs=workers, join=True)
