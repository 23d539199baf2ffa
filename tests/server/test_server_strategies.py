"""Strategy requests through the proxy: chosen via the body or the model prefix, streamed or not, logged."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai

from ponder.store import Store
from tests.fakes.openai_server import FakeOpenAIServer, Fault, count_prompt_tokens, tokenize
from tests.server.conftest import Proxy, run_proxy

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]
DEFAULTS = {"prompt": "none", "abstain_below": 0.0}  # self-consistency's other parameters, filled in
REPLY = "Let me add: 2 + 2 = 4. The answer is \\boxed{4}."


def client(proxy: Proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key="unused", max_retries=0)


def test_strategy_from_the_body(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(
        model="fake-model", messages=MESSAGES, extra_body={"ponder": {"strategy": "self-consistency", "n": 5}},  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content == REPLY  # the winning trace's full text
    assert reply.choices[0].finish_reason == "stop"
    ponder = reply.to_dict()["ponder"]
    assert ponder["strategy"] == "self-consistency" and ponder["params"] == {"n": 5, **DEFAULTS}
    assert ponder["answer"] == "4" and ponder["votes"] == {"4": 5} and ponder["confidence"] == 1.0
    assert ponder["traces"] == 5 and ponder["cancelled"] == 0
    sent = upstream.requests[-1]
    assert sent["n"] == 5 and sent["logprobs"] is True and sent["top_logprobs"] == 20 and "ponder" not in sent
    # usage sums what the upstream reported
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_prompt_tokens(MESSAGES)
    assert reply.usage.completion_tokens == 5 * len(tokenize(REPLY))


def test_strategy_from_the_model_prefix_with_sampling_and_extras(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(
        model="ponder:self-consistency:n=3/fake-model", messages=MESSAGES, temperature=0.6, max_tokens=64,  # type: ignore[arg-type]
        extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": True}},
    )
    assert reply.model == "ponder:self-consistency:n=3/fake-model"
    assert reply.to_dict()["ponder"]["params"] == {"n": 3, **DEFAULTS}
    sent = upstream.requests[-1]
    assert (sent["model"], sent["n"], sent["temperature"], sent["max_tokens"]) == ("fake-model", 3, 0.6, 64)
    assert sent["top_k"] == 20 and sent["chat_template_kwargs"] == {"enable_thinking": True}


def test_body_params_apply_to_the_prefix_strategy(upstream: FakeOpenAIServer, proxy: Proxy) -> None:
    reply = client(proxy).chat.completions.create(
        model="ponder:deepconf", messages=MESSAGES, extra_body={"ponder": {"n": 4, "eta": 50}})  # type: ignore[arg-type]
    ponder = reply.to_dict()["ponder"]
    assert ponder["strategy"] == "deepconf" and ponder["params"]["n"] == 4 and ponder["params"]["eta"] == 50.0
    # the four identical replies tie at the 50th-percentile bar, and ties at the bar stay (as in the reference)
    assert ponder["info"]["answered"] == 4 and ponder["info"]["kept"] == 4


def test_default_strategy_and_explicit_passthrough(upstream: FakeOpenAIServer) -> None:
    with run_proxy(upstream, default_strategy="self-consistency") as proxy:
        reply = client(proxy).chat.completions.create(model="m", messages=MESSAGES, extra_body={"ponder": {"n": 2}})  # type: ignore[arg-type]
        assert reply.to_dict()["ponder"]["params"] == {"n": 2, **DEFAULTS}
        plain = client(proxy).chat.completions.create(model="ponder:none/m", messages=MESSAGES)  # type: ignore[arg-type]
        assert "ponder" not in plain.to_dict() and upstream.requests[-1].get("n") is None


def test_streamed_strategy_with_progress_comments() -> None:
    # The upstream is slow, so the proxy sends progress comments before the answer; the client skips them.
    with FakeOpenAIServer(REPLY, faults=[Fault("slow", delay_s=0.3)]) as srv, run_proxy(srv) as proxy:
        stream = client(proxy).chat.completions.create(
            model="fake-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True},  # type: ignore[arg-type]
            extra_body={"ponder": {"strategy": "self-consistency", "n": 3}})
        chunks = list(stream)
        srv.push_faults(Fault("slow", delay_s=0.3))
        with httpx.stream("POST", proxy.base_url + "/chat/completions", json={
            "model": "m", "messages": MESSAGES, "stream": True, "ponder": {"strategy": "self-consistency", "n": 2},
        }) as raw:
            lines = [line for line in raw.iter_lines() if line]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finish) == 1 and finish[0].to_dict()["ponder"]["votes"] == {"4": 3}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3 * len(tokenize(REPLY))
    assert any(line.startswith(": ponder progress") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_requests_are_logged_to_the_store(upstream: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "served.db"
    with run_proxy(upstream, log=True, store_path=str(path)) as proxy:
        reply = client(proxy).chat.completions.create(
            model="fake-model", messages=MESSAGES, extra_body={"ponder": {"strategy": "self-consistency", "n": 3}})  # type: ignore[arg-type]
        client(proxy).chat.completions.create(model="fake-model", messages=MESSAGES)  # type: ignore[arg-type]
    with Store(path) as store:
        runs = {r.strategy: r for r in store.runs()}
        assert set(runs) == {"self-consistency", "passthrough"}
        run = runs["self-consistency"]
        assert run.id.startswith("serve-self-consistency-") and run.task == "serve"
        assert run.config["params"] == {"n": 3, **DEFAULTS}
        (record,) = store.results(run.id)
        assert record.problem_id == reply.id and record.answer == "4" and record.traces == 3
        assert record.completion_tokens == 3 * len(tokenize(REPLY))
        assert len(store.traces(run.id)) == 3
        assert store.messages(run.id, reply.id) == MESSAGES


def test_show_and_report_work_on_served_runs(upstream: FakeOpenAIServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ponder.cli import app

    path = tmp_path / "served.db"
    with run_proxy(upstream, log=True, store_path=str(path)) as proxy:
        for n in (2, 4):
            client(proxy).chat.completions.create(
                model=f"ponder:self-consistency:n={n}", messages=MESSAGES)  # type: ignore[arg-type]
    runner = CliRunner()
    shown = runner.invoke(app, ["runs", "--store", str(path)])
    assert shown.exit_code == 0 and "serve" in shown.output
    report = runner.invoke(app, ["report", "--store", str(path), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "index.html").is_file()
