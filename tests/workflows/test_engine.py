"""The Dask engine: what a long stream of tasks leaves behind in the client, and what a
failing task tells it."""

import gc
import inspect
import os
import re
import tracemalloc

import pytest

from ase_au20.calculators.factory import worker_build
from ase_au20.compute.engine import MESSAGE_LOG_LENGTH, TaskFailed, open_engine


def _length(calc, item: str, progress) -> int:
    return len(item)


def _odd_fails(calc, item: int, progress) -> int:
    if item % 2:
        raise KeyError(f"odd {item}")
    return item


@pytest.mark.parametrize("scheduler", ["none", "local"])
def test_a_failing_task_names_its_item_and_where_it_raised(scheduler):
    # on a worker the original error's traceback stays behind: the message carries its frame
    line = inspect.getsourcelines(_odd_fails)[1] + 2
    where = f"raised at workflows/test_engine.py:{line} in _odd_fails"
    with open_engine(scheduler, workers=1) as engine:
        results = engine.map(_odd_fails, None, [0, 1, 2], label=lambda item: f"item {item}")
        assert next(results) == 0
        with pytest.raises(TaskFailed, match=re.escape(f"item 1: KeyError: 'odd 1' ({where})")):
            next(results)


def test_a_stream_of_tasks_does_not_stay_in_the_client(tmp_path):
    # each task carries 0.4 MB, like a chunk of 256 structures' xyz text; Dask's default
    # message logs keep all 80 in the client and again in its scheduler (64 MB), ours the
    # last few of each
    payload, tasks = 400_000, 80
    with open_engine("local", workers=1) as engine:
        list(engine.map(_length, None, ["w" * payload for _ in range(4)]))  # warm the comms
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            lengths = list(
                engine.map(_length, None, (chr(65 + k % 26) * payload for k in range(tasks)))
            )
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
    assert lengths == [payload] * tasks
    # two logs of 8 messages, plus slack for queued tasks and comm buffers: 5.9-8.3 MB
    # measured over ten runs, against 64 MB with Dask's default logs
    bound = (2 * MESSAGE_LOG_LENGTH + 8) * payload
    assert kept < bound, (
        f"{kept / 1e6:.1f} MB of {tasks * payload / 1e6:.0f} MB of tasks still held"
    )


def _worker_settings() -> tuple[str | None, bool]:
    import dask

    return os.environ.get("OMP_NUM_THREADS"), dask.config.get("distributed.worker.profile.enabled")


def test_local_workers_run_one_thread_without_dasks_profiler():
    # the profiler samples the task thread every 10 ms, holding the GIL, for a dashboard
    # a local cluster does not serve
    with open_engine("local", workers=2) as engine:
        settings = engine.client.run(_worker_settings)
    assert list(settings.values()) == [("1", False), ("1", False)]


def test_prepare_builds_the_calculator_once_on_every_worker_before_any_task(tmp_path, monkeypatch):
    builds = tmp_path / "builds.txt"
    monkeypatch.setenv("SCREEN_BUILDS", str(builds))
    with open_engine("local", workers=2) as engine:
        calculator = engine.calculator(worker_build("screen_calculators:counting_emt"))
        assert engine.prepare(_length, calculator) > 0
        workers = sorted(str(pid) for pid in engine.client.run(os.getpid).values())
        assert sorted(builds.read_text().split()) == workers
        assert list(engine.map(_length, calculator, ["ab"] * 6)) == [2] * 6
    assert sorted(builds.read_text().split()) == workers  # the tasks built nothing more


def test_a_calculator_a_worker_cannot_build_fails_once_naming_the_worker():
    with open_engine("local", workers=1) as engine:
        calculator = engine.calculator(worker_build("screen_calculators:missing_on_workers"))
        address = next(iter(engine.client.nthreads()))
        message = (
            f"building the calculator on worker {address}: FileNotFoundError: weights.pt is "
            "not on this node (raised at tests/screen_calculators.py:"
        )
        with pytest.raises(TaskFailed, match=re.escape(message)):
            engine.prepare(_length, calculator)
    with open_engine("none") as engine:  # built here, where the file is
        assert (
            engine.prepare(
                _length, engine.calculator(worker_build("screen_calculators:missing_on_workers"))
            )
            >= 0
        )


def test_a_calculator_a_worker_cannot_build_at_its_first_task_fails_that_task():
    # a worker that joins after prepare builds at its first task: the same one-line error
    with open_engine("local", workers=1) as engine:
        calculator = engine.calculator(worker_build("screen_calculators:missing_on_workers"))
        results = engine.map(_length, calculator, ["ab", "cd"], label=lambda item: f"item {item}")
        message = "item ab: FileNotFoundError: weights.pt is not on this node (raised at tests/"
        with pytest.raises(TaskFailed, match=re.escape(message)):
            next(results)


def _five_workers_only(original):
    """``Client.scheduler_info`` as distributed releases from mid-2025 to mid-2026 give it:
    the first five workers."""

    def scheduler_info(self, *args, **kwargs):
        info = original(self, *args, **kwargs)
        return {**info, "workers": dict(list(info["workers"].items())[:5])}

    return scheduler_info


def test_a_running_cluster_of_more_than_five_workers_is_counted_whole(monkeypatch):
    from distributed import Client, LocalCluster

    monkeypatch.setattr(Client, "scheduler_info", _five_workers_only(Client.scheduler_info))
    with (
        LocalCluster(
            n_workers=6,
            threads_per_worker=1,
            processes=False,
            protocol="tcp://",
            dashboard_address=None,
        ) as cluster,
        open_engine(cluster.scheduler_address) as engine,
    ):
        assert engine.workers == 6  # the window: 2 tasks queued per worker of all six
        assert list(engine.map(_length, None, ["abc"] * 12)) == [3] * 12


def test_a_calc_spec_is_classified_once_and_travels_classified(tmp_path, monkeypatch):
    """Issue 40: the spec was classified by the CLI, the model identity and each worker."""
    from ase.io import write
    from click.testing import CliRunner

    from ase_au20.calculators.factory import CalcSpec
    from ase_au20.cli import main
    from ase_au20.structures import au20_ground_state

    parsed = []
    original = CalcSpec.parse.__func__

    def counting(cls, text):
        parsed.append(text)
        return original(cls, text)

    monkeypatch.setattr(CalcSpec, "parse", classmethod(counting))
    write(tmp_path / "in.xyz", au20_ground_state())
    args = ["screen", str(tmp_path / "in.xyz"), "--calc", "emt", "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o.db")])
    assert result.exit_code == 0, result.output
    assert parsed == ["emt"]
    handle = worker_build(CalcSpec.parse("krr"))
    assert handle.spec.kind == "model" and handle.spec.card_sha256
