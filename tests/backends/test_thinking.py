from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ponder.backends.thinking import ThinkSplitter, split_reasoning


def test_split_finished_text() -> None:
    assert split_reasoning("<think>hmm</think>The answer is 4.") == ("The answer is 4.", "hmm")
    assert split_reasoning("hmm, 2+2</think>\n\nThe answer is 4.") == ("The answer is 4.", "hmm, 2+2")
    assert split_reasoning("plain answer") == ("plain answer", "")
    assert split_reasoning("<think>never closed") == ("", "never closed")


@given(st.text(alphabet="ab<>/thinkT ", max_size=40), st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_split(body: str, cuts: list[int]) -> None:
    text = f"x<think>{body}</think>y{body}"
    whole = ThinkSplitter()
    expected = [a + b for a, b in zip(whole.feed(text), whole.flush(), strict=True)]
    splitter = ThinkSplitter()
    answer, reasoning, pos = "", "", 0
    for cut in cuts * 10:
        if pos >= len(text):
            break
        a, r = splitter.feed(text[pos : pos + cut])
        answer, reasoning, pos = answer + a, reasoning + r, pos + cut
    a, r = splitter.feed(text[pos:])
    fa, fr = splitter.flush()
    assert [answer + a + fa, reasoning + r + fr] == expected
