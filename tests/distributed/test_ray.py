"""``ponder eval --ray`` on a local Ray cluster (2 CPUs) against two fake upstreams: the same results as without
Ray, no problem lost or stored twice when a worker is killed mid-run, resume, and clear errors.

The cluster is started once for the module and kept on loopback (Ray would otherwise bind the machine's address).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.backends import parse_model_spec
from ponder.context import Sampling
from ponder.errors import BackendUnavailable, ConfigError
from ponder.runner import EvalConfig, Progress, run_eval
from ponder.store import Store
from tests.fakes.openai_server import FakeOpenAIServer

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's switch to use 127.0.0.1 as the node address


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A fresh local cluster of 2 CPUs with its dashboard (the state API lists the workers); its address."""
    from ray._private import ray_constants

    patch = pytest.MonkeyPatch()
    for key, value in LOOPBACK_ENV.items():
        patch.setenv(key, value)  # for the processes Ray starts
    patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # for this one, which read it at import
    temp = tempfile.mkdtemp(prefix="ponder-ray-", dir="/tmp")  # short: Ray puts sockets in it
    ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_port=free_port(), _temp_dir=temp,
             logging_level=logging.WARNING, log_to_driver=False, namespace="ponder-tests")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        patch.undo()
        shutil.rmtree(temp, ignore_errors=True)


def arithmetic(request: dict[str, Any], index: int) -> str:
    """A deterministic model: right, except for some (seed, sample) pairs, so votes differ between problems."""
    a, b = map(int, re.findall(r"\d+", request["messages"][-1]["content"])[:2])
    wrong = (int(request.get("seed") or 0) + index + a) % 3 == 0
    return f"Adding them. The answer is {a + b + int(wrong)}."


def slow_arithmetic(seconds: float) -> Any:
    async def reply(request: dict[str, Any], index: int) -> str:
        if index == 0:
            await asyncio.sleep(seconds)  # the whole request's time, as a batching server takes it
        return arithmetic(request, index)

    return reply


def config_for(*servers: FakeOpenAIServer, limit: int, ray_address: str | None = None, **kw: Any) -> EvalConfig:
    model = parse_model_spec("openai:" + ",".join(s.base_url for s in servers))
    return EvalConfig(task="add1", strategy="self-consistency", params={"n": 3}, model=model,
                      sampling=Sampling(seed=11, max_tokens=64), limit=limit, run_id="fleet", ray=ray_address, **kw)


def stored(store: Store) -> list[tuple[Any, ...]]:
    """What a run decided per problem, without timings."""
    traces: dict[str, list[tuple[str, str | None]]] = {}
    for pid, trace in store.traces("fleet"):
        traces.setdefault(pid, []).append((trace.text, trace.answer))
    return [(r.problem_id, r.position, r.answer, r.correct, r.votes, r.confidence, r.prompt_tokens,
             r.completion_tokens, r.calls, r.traces, r.error, traces.get(r.problem_id))
            for r in store.results("fleet")]


async def test_a_ray_run_gives_the_same_results_as_a_local_run(cluster: str, tmp_path: Path) -> None:
    with FakeOpenAIServer(arithmetic) as a, FakeOpenAIServer(arithmetic) as b:
        with Store(tmp_path / "local.db") as local:
            await run_eval(config_for(a, b, limit=12), local)
            expected = stored(local)
        a.clear_records()
        b.clear_records()
        with Store(tmp_path / "ray.db") as db:
            outcome = await run_eval(config_for(a, b, limit=12, ray_address=cluster), db)
            assert outcome.progress.done == 12 and outcome.progress.errors == 0
            assert stored(db) == expected
        assert a.request_count > 0 and b.request_count > 0  # each worker has its own upstream
    assert len({r[2] for r in expected}) > 3 and any(len(r[4]) > 1 for r in expected)  # the runs had variety


async def test_killing_a_worker_mid_run_loses_no_problem_and_a_rerun_resumes(
        cluster: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ray.util.state import list_actors

    total = 16
    with FakeOpenAIServer(slow_arithmetic(0.4)) as a, FakeOpenAIServer(slow_arithmetic(0.4)) as b, \
            Store(tmp_path / "runs.db") as db:
        some_done = asyncio.Event()

        def on_progress(progress: Progress) -> None:
            if progress.done >= 3:
                some_done.set()

        config = config_for(a, b, limit=total, ray_address=cluster, concurrency=4, ray_workers=2)
        run = asyncio.create_task(run_eval(config, db, on_progress))
        await asyncio.wait_for(some_done.wait(), timeout=120)
        actors = await asyncio.to_thread(list_actors, filters=[("class_name", "=", "ProblemWorker"),
                                                               ("state", "=", "ALIVE")])
        assert len(actors) == 2
        os.kill(actors[0].pid, signal.SIGKILL)  # it holds problems in flight: 4 out over 2 workers
        with caplog.at_level(logging.WARNING, logger="ponder.distributed"):
            outcome = await asyncio.wait_for(run, timeout=180)
        assert "its Ray worker died" in caplog.text  # the kill did take problems down with it
        assert outcome.progress.done == total and outcome.progress.errors == 0

        results = db.results("fleet")
        assert sorted(r.problem_id for r in results) == sorted(f"add1/seed0/{i}" for i in range(total))
        per_problem: dict[str, int] = {}
        for pid, _ in db.traces("fleet"):
            per_problem[pid] = per_problem.get(pid, 0) + 1
        assert set(per_problem.values()) == {3}  # each problem's own 3 traces, stored once

        before = a.request_count + b.request_count
        rerun = await run_eval(config, db)  # the same command again: nothing left to do
        assert rerun.resumed and rerun.progress.skipped == total and rerun.progress.done == 0
        assert a.request_count + b.request_count == before
        longer = await run_eval(config_for(a, b, limit=total + 4, ray_address=cluster, concurrency=4), db)
        assert longer.progress.skipped == total and longer.progress.done == 4
        assert len(db.results("fleet")) == total + 4


async def test_a_run_started_without_ray_is_finished_with_it(cluster: str, tmp_path: Path) -> None:
    with FakeOpenAIServer(arithmetic) as a, FakeOpenAIServer(arithmetic) as b, Store(tmp_path / "runs.db") as db:
        first = await run_eval(config_for(a, b, limit=5), db)
        second = await run_eval(config_for(a, b, limit=10, ray_address=cluster), db)
        assert first.run_id == second.run_id and second.resumed  # --ray is not part of the run's identity
        assert second.progress.skipped == 5 and second.progress.done == 5
        with Store(tmp_path / "local.db") as local:
            await run_eval(config_for(a, b, limit=10), local)
            assert stored(db) == stored(local)


async def test_an_unreachable_model_stops_the_run_with_one_clear_error(cluster: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    spec = parse_model_spec(f"openai:http://127.0.0.1:{port}/v1")
    config = EvalConfig(task="add1", strategy="cot", model=spec, limit=4, ray=cluster)
    with Store(tmp_path / "runs.db") as db:
        with pytest.raises(BackendUnavailable, match=rf"cannot reach the model server at http://127.0.0.1:{port}"):
            await asyncio.wait_for(run_eval(config, db), timeout=120)
        assert db.results(config.resolved_run_id()) == []


def test_the_cli_drives_a_cluster_at_an_address(cluster: str, tmp_path: Path) -> None:
    """A separate driver process joins the cluster by address, as on another machine."""
    with FakeOpenAIServer(arithmetic) as a, FakeOpenAIServer(arithmetic) as b:
        command = [sys.executable, "-m", "ponder.cli", "eval", "--task", "add1", "--limit", "6", "--n", "3",
                   "--model", f"openai:{a.base_url},{b.base_url}", "--store", str(tmp_path / "runs.db"),
                   "--run", "cli", "--ray", cluster, "--ray-workers", "2"]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, **LOOPBACK_ENV, "PYTHONPATH": str(ROOT / "src")})
        assert done.returncode == 0, done.stderr[-2000:]
        assert a.request_count > 0 and b.request_count > 0
    with Store(tmp_path / "runs.db") as db:
        results = db.results("cli")
        assert len(results) == 6 and all(r.error is None for r in results)


@pytest.mark.parametrize(("model", "replay", "message"), [
    ("local", None, "--ray needs a model server the workers can reach"),
    ("fake", Path("x.bank.jsonl.gz"), "--ray and --replay do not go together"),
])
def test_settings_a_cluster_cannot_run_are_refused(model: str, replay: Path | None, message: str) -> None:
    from ponder.distributed import check_config

    config = EvalConfig(task="add1", strategy="cot", model=parse_model_spec(model), replay=replay, ray="default")
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(config)
