"""Data-parallel SchNet training step on CPU: our shared-memory gradient sum against torch's
DistributedDataParallel over gloo, side by side in one run.

Two spawned processes (one torch thread each) train the shipped architecture on half of a
fixed batch of rattled Au20 each; a step is forward, backward and the gradient exchange
(``Shard.sum_gradients`` or DDP's bucketed all-reduce), then the same SGD update. Prints
the median step time of each and their ratio.

Run: ``python benchmarks/gradient_exchange.py [--steps 40] [--batch 32]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from docs_page import DOCS, publish_printed, recording

from ase_au20.models.schnet.config import shipped_config
from ase_au20.models.schnet.data_parallel import Shard
from ase_au20.models.schnet.network import SchNet
from ase_au20.structures import au20_ground_state

WORKERS = 2


def _batch(n: int) -> torch.Tensor:
    """``n`` rattled Td Au20 geometries [n, 20, 3]."""
    rng = np.random.default_rng(0)
    base = au20_ground_state().positions
    return torch.tensor(base + rng.normal(0.0, 0.1, (n, *base.shape)), dtype=torch.float32)


def _steps(rank: int, mode: str, steps: int, batch: int, exchange, rendezvous, out) -> None:
    """Process body: time ``steps`` training steps with gradient exchange ``mode``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=WORKERS)
    try:
        torch.manual_seed(0)
        net = SchNet(shipped_config().architecture())
        model = torch.nn.parallel.DistributedDataParallel(net) if mode == "ddp" else net
        shard = Shard(rank, WORKERS, exchange)
        positions = _batch(batch)[rank::WORKERS]
        optimiser = torch.optim.SGD(net.parameters(), lr=1e-4)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            optimiser.zero_grad()
            loss = model(positions, table_spacing=0.01).sum(-1).pow(2).mean()
            loss.backward()
            if mode == "ours":
                shard.sum_gradients(net)
            optimiser.step()
            times.append(time.perf_counter() - start)
        if rank == 0:
            Path(out).write_text(str(1e3 * statistics.median(times[5:])))
    finally:
        dist.destroy_process_group()


def step_ms(mode: str, steps: int, batch: int) -> float:
    """Median ms of one data-parallel training step with gradient exchange ``mode``."""
    n_parameters = sum(p.numel() for p in SchNet(shipped_config().architecture()).parameters())
    with tempfile.TemporaryDirectory() as tmp:
        exchange = torch.zeros(2, WORKERS, n_parameters).share_memory_()
        rendezvous = (Path(tmp) / "rendezvous").as_uri()
        out = Path(tmp) / "ms"
        mp.spawn(
            _steps,
            args=(mode, steps, batch, exchange, rendezvous, str(out)),
            nprocs=WORKERS,
            join=True,
        )
        return float(out.read_text())


def main() -> None:
    """Print both step times and their ratio; write the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per mode")
    parser.add_argument("--batch", type=int, default=32, help="structures per step (all ranks)")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < WORKERS:
        raise SystemExit(f"needs {WORKERS} CPUs")
    ours = step_ms("ours", args.steps, args.batch)
    ddp = step_ms("ddp", args.steps, args.batch)
    with recording() as printed:
        print(f"data-parallel SchNet step, {WORKERS} CPU processes, batch {args.batch} (median ms)")
        print(f"  shared-memory gradient sum (Shard) {ours:8.1f}")
        print(f"  DistributedDataParallel, gloo      {ddp:8.1f}")
        print(f"  DDP / ours                         {ddp / ours:8.2f}x")
    figures = {"batch": args.batch, "steps": args.steps, "shard_ms": ours, "ddp_ms": ddp}
    publish_printed(
        args.report,
        "gradient-exchange",
        "Data-parallel gradient exchange",
        __doc__,
        printed.getvalue(),
        figures,
    )


if __name__ == "__main__":
    main()
