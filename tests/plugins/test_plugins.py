"""Plugins: a package installed with pip adds a strategy and a task through entry points; references load code
by name. Run as users run them: ``ponder eval``, ``ponder strategies``, ``ponder tasks`` and ``ponder serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

PLUGIN_CODE = '''
"""A tiny ponder plugin: a strategy that answers with its first sampled answer, and a task of sums."""

from ponder.answers import check_math, extract_answer
from ponder.strategies.voting import vote
from ponder.tasks import LoadOptions
from ponder.types import Problem, Result


async def first_answer(problem, ctx, n: int = 3, pick: int = 0) -> Result:
    """Sample n, answer with sample number `pick`."""
    traces = await ctx.sample(n=n)
    tally = await vote([traces[pick].answer], ctx.equivalent)
    return tally.result(traces, {"picked": pick})


def tiny_sums(options: LoadOptions) -> list[Problem]:
    """Two-term sums of small numbers."""
    problems = []
    for i in options.window(5):
        a, b = i + 1, i + 2
        messages = [{"role": "user", "content": f"What is {a} + {b}? End with 'The answer is N.'"}]
        problems.append(Problem(f"tiny-sums/{i}", messages, str(a + b), check_math, extract_answer))
    return problems


def broken():
    raise RuntimeError("never called")


def open_scripted(spec):
    """A backend kind: --model scripted:TEXT answers TEXT to everything."""
    from ponder.backends import FakeBackend

    return FakeBackend([spec.target or "The answer is 42."])
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "ponder-demo-plugin"
version = "0.1.0"

[project.entry-points."ponder.strategies"]
first-answer = "ponder_demo_plugin:first_answer"
missing-one = "ponder_demo_plugin_missing:nope"

[project.entry-points."ponder.tasks"]
tiny-sums = "ponder_demo_plugin:tiny_sums"

[project.entry-points."ponder.backends"]
scripted = "ponder_demo_plugin:open_scripted"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin, pip-installed into a directory of its own that the commands get on their PYTHONPATH."""
    root = tmp_path_factory.mktemp("plugin")
    package = root / "src" / "ponder_demo_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN_CODE))
    (root / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    site = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(site), str(root)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "COLUMNS": "200"}


def ponder(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ponder.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=_env(site))


def test_an_installed_plugin_adds_a_strategy_and_a_task(plugin_site: Path, tmp_path: Path) -> None:
    listed = ponder("strategies", site=plugin_site, cwd=tmp_path)
    assert listed.returncode == 0 and "first-answer" in listed.stdout and "pick" in listed.stdout
    tasks = ponder("tasks", site=plugin_site, cwd=tmp_path)
    assert "tiny-sums" in tasks.stdout and "Two-term sums" in tasks.stdout
    run = ponder("eval", "--model", "fake", "--task", "tiny-sums", "--strategy", "first-answer", "-p", "pick=1",
                 "--limit", "4", site=plugin_site, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "4" in run.stdout and "accuracy" in run.stdout
    shown = ponder("show", "last", "--json", site=plugin_site, cwd=tmp_path)
    assert '"strategy": "first-answer"' in shown.stdout and '"pick": 1' in shown.stdout


def test_a_broken_plugin_is_reported_when_asked_for_and_breaks_nothing(plugin_site: Path, tmp_path: Path) -> None:
    fine = ponder("eval", "--model", "fake", "--task", "add1", "--limit", "1", "--n", "2", site=plugin_site,
                  cwd=tmp_path)
    assert fine.returncode == 0, fine.stderr
    broken = ponder("eval", "--model", "fake", "--task", "add1", "--strategy", "missing-one", site=plugin_site,
                    cwd=tmp_path)
    assert broken.returncode == 2 and "installed but failed to load" in broken.stderr
    assert "ModuleNotFoundError" in broken.stderr


def test_references_load_strategies_and_tasks_without_installing(tmp_path: Path) -> None:
    code = tmp_path / "mine.py"
    code.write_text(textwrap.dedent(PLUGIN_CODE))
    run = ponder("eval", "--model", "fake", "--task", f"{code}@tiny_sums", "--strategy", f"{code}@first_answer",
                 "--limit", "2", site=tmp_path, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "2" in run.stdout
    module = ponder("eval", "--model", "fake", "--task", "mine:tiny_sums", "--strategy", "mine:first_answer",
                    "--limit", "2", site=tmp_path, cwd=tmp_path)  # "mine" is importable from PYTHONPATH
    assert module.returncode == 0, module.stderr
    for args, message in ((["--strategy", "mine:nothing"], "has no attribute 'nothing'"),
                          (["--strategy", "mine:broken"], "must be an async function"),
                          (["--strategy", "nowhere.py@f"], "no such file"),
                          (["--task", "no_such_module:f"], "cannot load it")):
        bad = ponder("eval", "--model", "fake", "--task", "add1", *args, site=tmp_path, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)


def test_ponder_serve_runs_a_plugin_strategy(plugin_site: Path) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer
    from tests.fakes.serve_process import ServeProcess

    with FakeOpenAIServer("The answer is 4.") as upstream, \
            ServeProcess("--model", f"openai:{upstream.base_url}", env=_env(plugin_site)) as proxy:
        body = {"model": "m", "messages": [{"role": "user", "content": "2+2?"}],
                "ponder": {"strategy": "first-answer", "n": 2, "pick": 1}}
        reply = httpx.post(proxy.base_url + "/chat/completions", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["ponder"]["strategy"] == "first-answer"
        assert reply.json()["ponder"]["info"]["picked"] == 1
        models = httpx.get(proxy.base_url + "/models").json()["data"]
        assert any(m["id"].startswith("ponder:first-answer/") for m in models)


def test_an_installed_plugin_adds_a_backend_kind(plugin_site: Path, tmp_path: Path) -> None:
    run = ponder("eval", "--model", "scripted:The answer is 5.", "--task", "tiny-sums", "--strategy", "cot",
                 "--limit", "3", site=plugin_site, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "0.333" in run.stdout  # only 2 + 3 = 5 of the three sums
    unknown = ponder("eval", "--model", "nosuch:x", "--task", "add1", site=plugin_site, cwd=tmp_path)
    assert unknown.returncode == 2 and "scripted[:TARGET]" in unknown.stderr
