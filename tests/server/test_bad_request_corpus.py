"""A corpus of malformed requests (tests/data/proxy_bad_requests.json): every one gets a 4xx with an
OpenAI-shaped error naming the field to blame, the upstream never sees it, and without a valid key every one
gets a 401 before its body is even read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.server.conftest import Proxy, run_proxy

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "proxy_bad_requests.json").read_text())
KEY = "corpus-key"


def _content(case: dict[str, Any]) -> bytes:
    if "raw_hex" in case:
        return bytes.fromhex(case["raw_hex"])
    if "raw" in case:
        return str(case["raw"]).encode()
    return json.dumps(case["body"]).encode()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAIServer, Proxy]]:
    with FakeOpenAIServer() as srv, run_proxy(srv, keys=frozenset({KEY})) as proxy:
        yield srv, proxy


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_malformed_request_gets_a_clear_4xx(served: tuple[FakeOpenAIServer, Proxy], case: dict[str, Any]) -> None:
    upstream, proxy = served
    before = len(upstream.requests)
    response = httpx.post(proxy.base_url + "/chat/completions", content=_content(case), timeout=30,
                          headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert response.status_code == case["status"], response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and len(error["message"]) > 15
    assert error["param"] == case["param"], error
    if case["param"]:  # the message itself says which field, for clients that only show the message
        assert case["param"].split(".")[-1].split("[")[0] in error["message"], error
    assert len(upstream.requests) == before


@pytest.mark.parametrize("key", [None, "Bearer wrong", "Basic Y29ycHVzLWtleQ==", "corpus-key"])
def test_without_a_valid_key_every_request_is_401(served: tuple[FakeOpenAIServer, Proxy], key: str | None) -> None:
    upstream, proxy = served
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = key  # the right key without the Bearer scheme is not accepted either
    for case in CASES:
        response = httpx.post(proxy.base_url + "/chat/completions", content=_content(case), headers=headers)
        assert response.status_code == 401, (case["name"], response.text)
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(proxy.base_url + "/models", headers=headers).status_code == 401
    assert upstream.requests == []


def test_huge_bodies_are_refused_while_reading(served: tuple[FakeOpenAIServer, Proxy]) -> None:
    upstream, proxy = served
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    huge = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 3_000_000}]}).encode()

    def unsized() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming the body in
        for start in range(0, len(huge), 65536):
            yield huge[start:start + 65536]

    for content in (huge, unsized()):
        response = httpx.post(proxy.base_url + "/chat/completions", content=content, headers=headers, timeout=30)
        assert response.status_code == 413, response.text
        assert "1,000,000 bytes" in response.json()["error"]["message"]
    assert upstream.requests == []
