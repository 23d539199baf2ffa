"""The fault-injecting fake server: seeded rates, faults keyed by request body, partial duplicates, counts."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.openai_server import TRANSIENT_FAULT_KINDS, FakeOpenAIServer, Fault, transient_fault_rates


def _body(i: int) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": f"question {i}"}]}


def _statuses(srv: FakeOpenAIServer, order: list[int]) -> dict[int, list[int]]:
    """Each body's statuses over three tries, sending the bodies in the given order."""
    out: dict[int, list[int]] = {i: [] for i in order}
    with httpx.Client(base_url=srv.base_url) as http:
        for _ in range(3):
            for i in order:
                out[i].append(http.post("/chat/completions", json=_body(i)).status_code)
    return out


def test_body_keyed_faults_do_not_depend_on_arrival_order() -> None:
    rates = {"server_error": 0.3, "rate_limit": 0.2}
    order = list(range(30))
    with FakeOpenAIServer(fault_rates=rates, seed=3, fault_key="body") as a:
        forward = _statuses(a, order)
    with FakeOpenAIServer(fault_rates=rates, seed=3, fault_key="body") as b:
        backward = _statuses(b, order[::-1])
    with FakeOpenAIServer(fault_rates=rates, seed=4, fault_key="body") as c:
        other_seed = _statuses(c, order)
    assert forward == backward != other_seed
    assert {s for statuses in forward.values() for s in statuses} == {200, 429, 500}
    # a retried body draws anew: some body fails and then succeeds
    assert any(statuses[0] != 200 and 200 in statuses[1:] for statuses in forward.values())


def test_arrival_keyed_faults_follow_the_order() -> None:
    with FakeOpenAIServer(fault_rates={"server_error": 0.5}, seed=3) as a:
        forward = _statuses(a, list(range(10)))
    with FakeOpenAIServer(fault_rates={"server_error": 0.5}, seed=3) as b:
        backward = _statuses(b, list(range(10))[::-1])
    assert [forward[i] for i in range(10)] != [backward[i] for i in range(10)]
    with pytest.raises(ValueError, match="fault_key"):
        FakeOpenAIServer(fault_key="bogus")  # type: ignore[arg-type]


def test_a_single_duplicated_chunk() -> None:
    with FakeOpenAIServer("a b c d", faults=[Fault("duplicate_chunks", after_tokens=2)]) as srv:
        body = {**_body(0), "stream": True, "logprobs": True}
        lines = httpx.post(srv.base_url + "/chat/completions", json=body).text.split("\n\n")
    contents = [json.loads(x[6:])["choices"][0]["delta"].get("content") for x in lines if x.startswith("data: {")]
    assert [c for c in contents if c] == ["a", " b", " c", " c", " d"]
    assert lines.count(next(x for x in lines if '"content":" c"' in x)) == 2  # byte-identical


def test_transient_rates_and_fault_counts() -> None:
    rates = transient_fault_rates(0.45, delay_s=0.01, retry_after=0.0)
    assert set(rates) == {Fault("slow", delay_s=0.01), Fault("rate_limit", retry_after=0.0)} | {
        Fault(k) for k in TRANSIENT_FAULT_KINDS if k not in ("slow", "rate_limit")
    }
    assert sum(rates.values()) == pytest.approx(0.45)
    assert "bad_request" not in {f.kind if isinstance(f, Fault) else f for f in rates}
    with pytest.raises(ValueError):
        transient_fault_rates(1.5)
    with FakeOpenAIServer(faults=["server_error", None, "server_error", "rate_limit"]) as srv:
        with httpx.Client(base_url=srv.base_url) as http:
            for i in range(5):
                http.post("/chat/completions", json=_body(i))
        assert srv.fault_counts == {"server_error": 2, "rate_limit": 1}
