"""Step-level beam search: the scorer steers it to an answer the first sampled steps miss."""

from __future__ import annotations

import json
import socket

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.errors import BackendUnavailable, CapabilityError, ConfigError
from ponder.search import SearchTree
from ponder.strategies import get_strategy
from ponder.types import GenerationRequest
from tests.conftest import make_problem
from tests.search.search_scripts import TRAP, judged_step, likes_seven, stepper

beam = get_strategy("beam")


async def test_the_first_sampled_path_is_wrong() -> None:
    # the control: without a search, the model's first step leads to 8
    problem = make_problem()
    ctx = Ctx(stepper(TRAP), problem)
    result = await beam(problem, ctx, n=1, expansions=1, scorer="judge")
    assert result.answer == "8"


@pytest.mark.parametrize("scorer", ["judge", "confidence", "confidence:neg_perplexity"])
async def test_the_scorer_steers_the_beam_to_the_right_answer(scorer: str) -> None:
    problem = make_problem()
    ctx = Ctx(stepper(TRAP, judge=likes_seven), problem)
    result = await beam(problem, ctx, n=1, expansions=2, scorer=scorer)
    assert result.answer == "7" and result.votes.keys() == {"7"}
    tree = SearchTree.from_json(result.info["tree"])
    eight, seven = (tree.nodes[i] for i in tree.root.children)
    assert eight.pruned and not eight.selected and seven.selected and not seven.pruned
    assert seven.value is not None and eight.value is not None and seven.value > eight.value
    (final,) = [n for n in tree.nodes if n.selected and n.terminal]
    assert final.answer == "7" and final.step == "The answer is 7."


async def test_a_scorer_with_the_opposite_taste_finds_the_other_answer() -> None:
    problem = make_problem()
    ctx = Ctx(stepper(TRAP, judge=lambda step: not likes_seven(step)), problem)
    assert (await beam(problem, ctx, n=1, expansions=2)).answer == "8"


WIDE: dict[str, list[str | Scripted]] = {
    "": [Scripted("Guess: seven.", 0.9), Scripted("Guess: seven, surely.", 0.8), Scripted("Guess: six.", 0.5),
         Scripted("Guess: two.", 0.2)],
    "Guess: seven.": [Scripted("The answer is 7.", 0.9)],
    "Guess: seven, surely.": [Scripted("The answer is 7.", 0.7)],
}


async def test_beam_keeps_the_n_best_paths_and_records_the_whole_search() -> None:
    problem = make_problem()
    backend = stepper(WIDE)
    ctx = Ctx(backend, problem)
    result = await beam(problem, ctx, n=2, expansions=2, scorer="confidence:neg_perplexity")
    assert backend.calls[0].request.n == 4  # the question is grown by n x expansions
    tree = SearchTree.from_json(result.info["tree"])
    firsts = [tree.nodes[i] for i in tree.root.children]
    assert [n.pruned for n in firsts] == [False, False, True, True]
    assert result.answer == "7" and result.info["completed"] == 2
    finals = [n for n in tree.nodes if n.terminal and not n.pruned]
    assert len(finals) == 2 and all(n.answer == "7" for n in finals)
    # weighted vote: the answer's weight is the sum of its paths' values (last step's score)
    assert result.votes["7"] == pytest.approx(sum(n.value or 0 for n in finals))
    assert result.confidence == pytest.approx(1.0)
    # the chosen path is the best-valued one among the winning answer's paths
    chosen = max(finals, key=lambda n: n.value or 0)
    assert chosen.selected and tree.nodes[chosen.parent or 0].step == "Guess: seven."
    # every token is accounted: node tokens add up to the generation calls' tokens
    assert sum(n.tokens for n in tree.nodes) == ctx.usage.completion_tokens
    assert [t.answer for t in result.traces] == ["7", "7"]
    assert result.traces[0].text.startswith("Guess: seven")


async def test_the_tree_round_trips_through_json() -> None:
    problem = make_problem()
    result = await beam(problem, Ctx(stepper(WIDE), problem), n=2, expansions=2, scorer="confidence")
    stored = json.loads(json.dumps(result.info))
    assert SearchTree.from_json(stored["tree"]).to_json() == result.info["tree"]


def endless(words: str = "Let me keep thinking about it.") -> FakeBackend:
    def script(request: GenerationRequest, index: int) -> str:
        return "Yes" if judged_step(request) is not None else words

    return FakeBackend(script)


@pytest.mark.parametrize("where", ["param", "ctx"])
async def test_the_token_budget_stops_the_search_cleanly(where: str) -> None:
    problem = make_problem()
    ctx = Ctx(endless(), problem, token_budget=40 if where == "ctx" else None)
    result = await beam(problem, ctx, n=2, expansions=2, budget=40 if where == "param" else 0)
    assert ctx.usage.completion_tokens <= 40
    assert result.info["stopped"] == "budget" and result.info["search_tokens"] == ctx.usage.completion_tokens
    tree = SearchTree.from_json(result.info["tree"])
    assert len(tree.nodes) > 2 and any(n.selected for n in tree.nodes)
    assert result.answer is None and result.confidence == 0.0


async def test_parameters_are_checked() -> None:
    problem = make_problem()
    ctx = Ctx(endless(), problem)
    with pytest.raises(ConfigError, match="'n'"):
        await beam(problem, ctx, n=0)
    with pytest.raises(ConfigError, match="'aggregation'"):
        await beam(problem, ctx, aggregation="mean")
    with pytest.raises(ConfigError, match="unknown step scorer"):
        await beam(problem, ctx, scorer="oracle")
    with pytest.raises(ConfigError, match="'delimiter'"):
        await beam(problem, ctx, delimiter="")
    assert ctx.usage.calls == 0


async def test_scorer_failures_are_clear_errors() -> None:
    problem = make_problem()
    no_logprobs = Ctx(stepper(TRAP, logprobs=False), problem)
    with pytest.raises(CapabilityError, match="logprobs"):
        await beam(problem, no_logprobs, scorer="confidence")
    assert no_logprobs.usage.calls == 0  # refused before spending anything
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/score"
    with pytest.raises(BackendUnavailable, match=f"PRM server at {url}"):
        await beam(problem, Ctx(stepper(TRAP), problem), n=1, expansions=1, scorer=f"prm:{url}")


async def test_a_delimiter_typed_on_the_command_line_is_unescaped() -> None:
    problem = make_problem()
    backend = stepper(TRAP)
    await beam(problem, Ctx(backend, problem), n=1, expansions=1, scorer="confidence", delimiter=r"\n")
    assert backend.calls[0].request.stop == ["\n"]
