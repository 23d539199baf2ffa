"""Open a report in headless Chromium (Debian's ``chromium`` package) and check the plots really render.

The page marks ``<body data-plots-ok="N" data-plots-total="M">`` on load with how many images decoded; Chromium's
``--dump-dom`` prints the DOM after scripts ran. Skipped without /usr/bin/chromium unless
PONDER_REQUIRE_INTEGRATION=1, which makes a missing browser a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from ponder.backends import parse_model_spec
from ponder.context import Sampling
from ponder.report import build_report
from ponder.runner import EvalConfig, run_eval
from ponder.store import Store

pytest.importorskip("matplotlib")

CHROMIUM = Path(os.environ.get("PONDER_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"{CHROMIUM} not found (apt-get install -y chromium)"
    if os.environ.get("PONDER_REQUIRE_INTEGRATION") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(chromium: Path, profile: Path, *args: str) -> str:
    """Run headless Chromium with a fresh profile; kill its whole process group if it hangs."""
    command = [
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s")
    assert process.returncode == 0, f"chromium exited with {process.returncode}: {err[-2000:]}"
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")

    async def fill(store: Store) -> None:
        for strategy, params in (("self-consistency", {"n": 2}), ("self-consistency", {"n": 4}),
                                 ("cot", {"greedy": False})):
            await run_eval(EvalConfig(task="add1", strategy=strategy, model=parse_model_spec("fake"), params=params,
                                      sampling=Sampling(seed=1), limit=12, task_size=20), store)

    with Store(folder / "runs.db") as store:
        asyncio.run(fill(store))
        return build_report(store, [], folder / "report dir")  # a space in the path: URLs must still resolve


def test_plots_load_in_headless_chromium(chromium: Path, report: Path, tmp_path: Path) -> None:
    dom = _run_chromium(chromium, tmp_path / "profile", "--dump-dom", report.as_uri())
    body = re.search(r"<body[^>]*>", dom)
    assert body, f"no <body> in the dumped DOM: {dom[:500]}"
    ok = re.search(r'data-plots-ok="(\d+)"', body.group(0))
    total = re.search(r'data-plots-total="(\d+)"', body.group(0))
    assert ok and total, f"the page's load script did not run: {body.group(0)}"
    assert int(ok.group(1)) == int(total.group(1)) >= 2
    assert "Results" in dom and "self-consistency" in dom


def test_screenshot_shows_the_plots(chromium: Path, report: Path, tmp_path: Path) -> None:
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    _run_chromium(chromium, tmp_path / "profile", "--window-size=1280,2000", f"--screenshot={shot}",
                  "--hide-scrollbars", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 50_000
    pixels = imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    # a blank or text-only page is nearly all white and grey; the plots add colour (markers, curves)
    colourful = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.3
    assert colourful.mean() > 0.001
