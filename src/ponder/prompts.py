"""Reasoning prompt templates: the words a prompting method adds to a problem's prompt.

One registry serves the prompting strategies (``zero-shot-cot``, ``plan-and-solve``) and the ``prompt=`` parameter
of the voting strategies (``self-consistency:prompt=plan-and-solve``). A template rewrites the last user message
of a problem as ``problem, trigger, format instruction``: the task's own answer-format instruction (``\\boxed{}``,
"The answer is N.", the abstention clause; see ``ponder.tasks.prompts``) stays last, so answers are extracted as
before. A prompt without a known instruction gets the trigger at its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from ponder.errors import ConfigError
from ponder.tasks.prompts import split_instruction
from ponder.types import Message

PromptName = Literal["none", "zero-shot-cot", "plan-and-solve"]
"""The templates' names, as the ``prompt`` parameter of a strategy takes them."""
PromptParam = Annotated[PromptName, "reasoning prompt added to every sample (ponder.prompts; none: the task's own)"]
"""The ``prompt`` parameter of a strategy, with its help."""


@dataclass(frozen=True)
class PromptTemplate:
    """A prompting method: its name, where it comes from, and the trigger sentence it adds."""

    name: str
    source: str
    trigger: str

    def apply(self, messages: list[Message]) -> list[Message]:
        """``messages`` with the trigger added to the last user message (before the task's format instruction)."""
        if not self.trigger:
            return [dict(m) for m in messages]
        out = [dict(m) for m in messages]
        last = max((i for i, m in enumerate(out) if m.get("role") == "user"), default=None)
        if last is None:
            raise ConfigError(f"prompt {self.name!r} needs a user message to add its trigger to")
        out[last]["content"] = with_trigger(out[last]["content"], self.trigger)
        return out


def with_trigger(content: str, trigger: str) -> str:
    """``content`` with ``trigger`` between the problem and the task's answer-format instruction."""
    body, instruction = split_instruction(content)
    return f"{body}\n\n{trigger}" + (f"\n\n{instruction}" if instruction else "")


ZERO_SHOT_COT = "Let's think step by step."
"""Kojima et al., 2022, "Large Language Models are Zero-Shot Reasoners": the trigger that starts the answer."""

PLAN_AND_SOLVE_PLUS = (
    "Let's first understand the problem, extract relevant variables and their corresponding numerals, and devise a "
    "plan. Then, let's carry out the plan, calculate intermediate variables (pay attention to correct numerical "
    "calculation and commonsense), solve the problem step by step, and show the answer."
)
"""Wang et al., 2023, "Plan-and-Solve Prompting": the PS+ trigger, the paper's best zero-shot prompt."""

PROMPTS: dict[str, PromptTemplate] = {
    t.name: t
    for t in (
        PromptTemplate("none", "the task's own prompt", ""),
        PromptTemplate("zero-shot-cot", "Kojima et al., 2022", ZERO_SHOT_COT),
        PromptTemplate("plan-and-solve", "Wang et al., 2023 (PS+)", PLAN_AND_SOLVE_PLUS),
    )
}


def get_prompt(name: str) -> PromptTemplate:
    """The template called ``name``; an unknown name is a ConfigError listing the known ones."""
    template = PROMPTS.get(name)
    if template is None:
        raise ConfigError(f"unknown prompt {name!r}; known prompts: {', '.join(PROMPTS)}")
    return template


def apply_prompt(messages: list[Message], name: str) -> list[Message]:
    """``messages`` rewritten by the template ``name`` (``none`` leaves them as they are)."""
    return get_prompt(name).apply(messages)
