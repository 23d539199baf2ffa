"""Local slots are sized for the run's max_tokens; a sample that fills its slot's context is an error, not a cut."""

from __future__ import annotations

from ponder.backends import BackendSpec, parse_model_spec
from ponder.backends.local import PROMPT_HEADROOM, context_for
from ponder.context import Sampling
from ponder.session import Session


def test_context_covers_max_tokens_and_a_prompt() -> None:
    assert context_for(None) == 4096 and context_for(0) == 4096  # never below the old default
    assert context_for(1024) == 1024 + PROMPT_HEADROOM
    assert context_for(8000) >= 8000 + PROMPT_HEADROOM and context_for(8000) % 256 == 0


def test_specs_are_sized_for_local_models_only_and_an_explicit_size_wins() -> None:
    local = BackendSpec(kind="local")
    assert local.sized_for(4096).ctx_per_slot == context_for(4096)
    assert BackendSpec(kind="local", ctx_per_slot=2048).sized_for(4096).ctx_per_slot == 2048
    remote = parse_model_spec("openai:http://127.0.0.1:9/v1")
    assert remote.sized_for(4096) == remote


def test_a_session_sizes_its_local_server_for_its_sampling() -> None:
    session = Session("local", sampling=Sampling(max_tokens=6000))
    assert session.spec.ctx_per_slot == context_for(6000)  # aime24's 4096-token samples no longer hit the wall
