"""How long ponder waits for one response: long enough for a slow CPU, bounded so a hung server still fails.

A recording of Qwen2.5-Coder-1.5B on MATH-500 (n=16, max_tokens 2048, 32 slots, 2 cores) died after 40 minutes:
a request of 16 samples answers only when its longest sample ends, which took longer than the fixed 600 s, and
the timed-out request was retried three times over.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.backends import DEFAULT_TIMEOUT_S, BackendSpec, build_backend, parse_model_spec
from ponder.backends import local as local_module
from ponder.backends.local import LocalBackend, response_timeout
from ponder.backends.openai import OpenAIBackend
from ponder.errors import ConfigError


def test_the_failed_recording_would_now_have_had_time() -> None:
    measured_tok_s = 24.0  # the 1.5B model's aggregate rate on 2 cores, shared by every busy slot
    slowest_sample_s = 2048 * 32 / measured_tok_s  # all 32 slots busy, a sample runs to max_tokens
    assert response_timeout(2048, 32) > 2 * slowest_sample_s  # room to queue behind a full server first


def test_the_timeout_grows_with_max_tokens_and_slots_and_never_drops_under_600_s() -> None:
    assert response_timeout(None, 1) == DEFAULT_TIMEOUT_S == 600.0
    assert response_timeout(256, 4) == 600.0
    assert response_timeout(4096, 16) > response_timeout(2048, 16) > response_timeout(2048, 8)


async def test_local_specs_get_the_scaled_timeout_unless_given_and_remote_ones_600_s() -> None:
    assert BackendSpec(kind="local", slots=32).sized_for(2048).timeout_s == response_timeout(2048, 32)
    assert BackendSpec(kind="local", timeout_s=90.0).sized_for(2048).timeout_s == 90.0
    remote = parse_model_spec("openai:http://127.0.0.1:9/v1")
    assert remote.sized_for(2048).timeout_s is None
    for spec, wanted in ((remote, 600.0), (parse_model_spec("openai:http://127.0.0.1:9/v1", timeout_s=5.0), 5.0)):
        backend = build_backend(spec)
        assert isinstance(backend, OpenAIBackend) and backend.timeout_s == wanted
        await backend.aclose()


async def test_the_local_backend_uses_the_spec_timeout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(local_module, "find_llama_server", lambda explicit=None: tmp_path / "llama-server")
    backend = build_backend(BackendSpec(kind="local", target=str(model), slots=32).sized_for(2048))
    assert isinstance(backend, LocalBackend) and backend.timeout_s == response_timeout(2048, 32)
    unsized = LocalBackend(model, slots=4)
    assert unsized.timeout_s == 600.0  # room for 512-token samples
    for b in (backend, unsized):
        await b.aclose()


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_a_timeout_that_is_not_positive_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="--timeout must be a positive number of seconds"):
        parse_model_spec("fake", timeout_s=bad)
