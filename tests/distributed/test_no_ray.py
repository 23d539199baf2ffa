"""--ray without the ray package, and the parts of the distributed runner that need no cluster."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from ponder.backends import parse_model_spec
from ponder.cli import bare_ray
from ponder.distributed import MAX_TRIES, Outcome, default_workers
from ponder.errors import BackendUnavailable, ConfigError
from ponder.runner import EvalConfig, run_eval
from ponder.store import ProblemRecord, Store
from ponder.types import Problem
from tests.conftest import make_problem


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    config = EvalConfig(task="add1", strategy="cot", model=parse_model_spec("fake"), limit=2, ray="default")
    with Store(tmp_path / "runs.db") as store, pytest.raises(ConfigError, match=r"pip install 'ponder\[ray\]'"):
        asyncio.run(run_eval(config, store))
    with Store(tmp_path / "runs.db") as store:
        assert store.runs() == []  # refused before the run was created


def test_the_cli_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ponder import cli

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr(sys, "argv", ["ponder", "eval", "--model", "fake", "--task", "add1", "--limit", "1",
                                      "--store", str(tmp_path / "r.db"), "--ray"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--ray needs Ray" in err and "ponder[ray]" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["eval", "--ray"], ["eval", "--ray=default"]),
    (["eval", "--ray", "--task", "add1"], ["eval", "--ray=default", "--task", "add1"]),
    (["eval", "--ray", "10.0.0.5:6379", "--task", "add1"], ["eval", "--ray", "10.0.0.5:6379", "--task", "add1"]),
    (["eval", "--ray=auto"], ["eval", "--ray=auto"]),
    (["eval", "--task", "add1"], ["eval", "--task", "add1"]),
])
def test_a_bare_ray_flag_means_the_default_address(argv: list[str], expected: list[str]) -> None:
    assert bare_ray(argv) == expected


@pytest.mark.parametrize(("cpus", "urls", "concurrency", "workers"), [
    (2, 2, 8, 2),  # a worker per CPU, one per URL
    (3, 2, 8, 4),  # rounded up: two per URL
    (1, 3, 8, 3),  # at least one per URL
    (16, 0, 4, 4),  # never more than the problems in flight
    (2, 0, 8, 2),  # fake/plugin models: a worker per CPU
])
def test_default_workers(cpus: float, urls: int, concurrency: int, workers: int) -> None:
    assert default_workers(cpus, urls, concurrency) == workers


# ---- the driver's bookkeeping, with stand-ins for Ray's actors --------------------------------------------


class _Ref:
    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self._future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if error is not None:
            self._future.set_exception(error)
        else:
            self._future.set_result(value)

    def future(self) -> concurrent.futures.Future[Any]:
        return self._future


class _Method:
    def __init__(self, call: Any) -> None:
        self._call = call

    def remote(self, *args: Any) -> _Ref:
        return self._call(*args)


class _Worker:
    """Answers every problem, except those in ``kills``, whose task dies every time it is sent."""

    def __init__(self, kills: set[str], sent: list[str]) -> None:
        self.solve = _Method(self._solve)
        self.pid = _Method(lambda: _Ref(1234))
        self._kills, self._sent = kills, sent

    def _solve(self, position: int, problem: Problem) -> _Ref:
        from ray.exceptions import RayActorError

        self._sent.append(problem.id)
        if problem.id in self._kills:
            return _Ref(error=RayActorError())
        return _Ref(Outcome(_record(problem, position)))


def _record(problem: Problem, position: int) -> ProblemRecord:
    return ProblemRecord(problem.id, position, problem.gold, "7", True, 1.0, {"7": 1.0}, {}, 1, 1, 1, 1, 0, 0.1)


async def test_a_problem_that_kills_every_worker_is_stored_once_as_an_error() -> None:
    pytest.importorskip("ray")
    from ponder.distributed import _Driver

    problems = [(i, make_problem(pid=f"p{i}")) for i in range(6)]
    sent: list[str] = []
    workers = [_Worker({"p2"}, sent), _Worker({"p2"}, sent)]
    saved: list[ProblemRecord] = []

    async def save(record: ProblemRecord, calls: list[Any]) -> None:
        saved.append(record)

    await _Driver(workers, problems, 3, save).run()
    assert sorted(r.problem_id for r in saved) == [f"p{i}" for i in range(6)]  # each once
    (killer,) = [r for r in saved if r.problem_id == "p2"]
    assert killer.error is not None and killer.error.startswith("WorkerDied") and sent.count("p2") == MAX_TRIES
    assert all(r.error is None for r in saved if r.problem_id != "p2")


async def test_the_driver_keeps_at_most_concurrency_problems_out() -> None:
    pytest.importorskip("ray")
    from ponder.distributed import _Driver

    problems = [(i, make_problem(pid=f"p{i}")) for i in range(10)]
    sent: list[str] = []
    driver = _Driver([_Worker(set(), sent)], problems, 3, lambda record, calls: _noop())
    driver._send()
    assert len(driver.out) == 3 and sent == ["p0", "p1", "p2"]
    for future in driver.out:
        future.cancel()


async def _noop() -> None:
    return None


def test_an_address_where_no_cluster_listens_fails_at_once(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a cluster is already joined: the address would not be used")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = EvalConfig(task="add1", strategy="cot", model=parse_model_spec("fake"), limit=2, ray=f"127.0.0.1:{port}")
    with Store(tmp_path / "runs.db") as store:
        with pytest.raises(BackendUnavailable, match=rf"--ray 127.0.0.1:{port}: no Ray cluster answers there"):
            asyncio.run(asyncio.wait_for(run_eval(config, store), timeout=30))
        assert store.runs() == []
