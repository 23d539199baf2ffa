"""Programs as reasoning and as verifiers: PAL and Prove. Every program runs in ``ponder.sandbox``, never in-process."""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.sandbox import Limits, SandboxResult, run_python
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.tasks.prompts import problem_statement
from ponder.types import Extractor, Message, Problem, Result, Trace

TRANSLATE_PROMPT = """Below is a question and a step-by-step solution. Translate the solution into a Python \
program that carries out the same steps and prints the final answer. Follow the solution exactly, even where you \
think it is wrong. Print only the final answer (a number or expression) on the last line. Use only the Python \
standard library. Write the program in one ```python code block.

Question:
{question}

Solution:
{solution}"""

PAL_PROMPT = """Write a Python program that solves the problem below and prints the final answer. Print only the \
final answer (a number or expression) on the last line. Use only the Python standard library. Write the program in \
one ```python code block.

Problem:
{question}"""

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"python", "python3", "py", "py3"}
_CODE_HINT = re.compile(r"^\s*(?:print\(|def |import |from \w+ import |\w+\s*=)", re.MULTILINE)


def extract_code(text: str) -> str | None:
    """The program in a model's reply: the last ```python block (an unclosed block at the end of a truncated reply
    counts), else the last untagged block, else the whole reply if it looks like code. A program that defines
    ``solution()`` but prints nothing gets ``print(solution())`` appended, as PAL's prompts call it."""
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    tagged = [body for tag, body in blocks if tag in _PYTHON_TAGS and body.strip()]
    untagged = [body for tag, body in blocks if not tag and body.strip()]
    if tagged:
        code = tagged[-1]
    elif untagged:
        code = untagged[-1]
    elif "```" not in text and _CODE_HINT.search(text):
        code = text
    else:
        return None
    code = code.strip("\n")
    if "print(" not in code and re.search(r"^def solution\(\s*\)", code, re.MULTILINE):
        code += "\n\nprint(solution())"
    return code + "\n"


def printed_answer(stdout: str, extract: Extractor) -> str | None:
    """The answer a program printed: its last non-empty line, or the answer extracted from that line when the
    line is a sentence ("The answer is 7", "x = 7") rather than a bare value."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    if re.search(r"answer|=|:", line, re.IGNORECASE):
        return extract(line) or line
    return line


@dataclass
class ProgramRun:
    """One model-written program, what it printed, and how the sandbox run ended."""

    code: str | None
    output: str | None
    run: SandboxResult | None

    def summary(self) -> dict[str, Any]:
        run = self.run
        return {
            "output": self.output,
            "exit_code": run.exit_code if run else None,
            "killed_reason": run.killed_reason if run else ("no code" if self.code is None else None),
            "stderr_tail": run.stderr[-300:] if run and run.stderr else "",
        }


async def run_program(reply: Trace, extract: Extractor, limits: Limits) -> ProgramRun:
    """Extract the program from a reply and run it in the sandbox."""
    code = extract_code(reply.text)
    if code is None:
        return ProgramRun(None, None, None)
    run = await run_python(code, limits)
    output = printed_answer(run.stdout, extract) if run.ok else None
    return ProgramRun(code, output, run)


def _limits(timeout_s: float) -> Limits:
    return Limits(wall_s=timeout_s, cpu_s=max(1, math.ceil(timeout_s)))


def _question_messages(problem: Problem, content: str) -> list[Message]:
    """The problem's conversation with its last user turn replaced (system prompts are kept)."""
    return [*problem.messages[:-1], {"role": "user", "content": content}]


TimeoutS = Annotated[float, Interval(gt=0, le=600), "wall-clock seconds a program may run in the sandbox"]


@strategy("prove")
async def prove(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "chain-of-thought solutions sampled"] = 16,
    program_temperature: Annotated[float, Ge(0), "temperature of the verifying program (0: greedy)"] = 0.0,
    timeout_s: TimeoutS = 5.0,
) -> Result:
    """Prove (Toh et al., 2024): programs as verifiers of sampled solutions, then a vote over the verified ones.

    From "Not All Votes Count! Programs as Verifiers Improve Self-Consistency of Language Models for Math
    Reasoning". Sample ``n`` chain-of-thought solutions. The model translates each answered solution into a Python
    program (at ``program_temperature``, greedy by default), which runs in ``ponder.sandbox`` (``timeout_s`` of
    wall time). A solution is kept when its program's printed answer is equivalent to the solution's stated
    answer; the kept solutions vote. When no program agrees with its solution, the strategy falls back to the
    plain majority vote over all ``n`` and says so in ``info["fallback"]``.
    """
    traces = await ctx.sample(n=n)
    limits = _limits(timeout_s)

    async def verify(trace: Trace) -> tuple[ProgramRun, bool]:
        prompt = TRANSLATE_PROMPT.format(question=problem_statement(problem), solution=trace.text.strip())
        with ctx.aux():  # a translation of the solution, not an answer to the problem: maj@k / pass@k skip it
            (reply,) = await ctx.sample(_question_messages(problem, prompt), n=1, temperature=program_temperature)
        program = await run_program(reply, problem.extract, limits)
        agrees = program.output is not None and await ctx.equivalent(program.output, trace.answer)
        return program, agrees

    answered = [i for i, t in enumerate(traces) if t.answer is not None]
    checks = await asyncio.gather(*(verify(traces[i]) for i in answered))
    kept = [i for i, (_, agrees) in zip(answered, checks, strict=True) if agrees]
    programs = [
        {"trace": i, "answer": traces[i].answer, "verified": agrees, **program.summary()}
        for i, (program, agrees) in zip(answered, checks, strict=True)
    ]
    info: dict[str, Any] = {"sampled": n, "answered": len(answered), "verified": len(kept), "programs": programs,
                            "fallback": None}
    if kept:
        result = await vote([traces[i].answer for i in kept], ctx.equivalent)
    else:
        info["fallback"] = "no program agreed with its solution: plain majority vote over all samples"
        result = await vote([t.answer for t in traces], ctx.equivalent)
    return result.result(traces, info)


@strategy("pal")
async def pal(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "programs sampled and run"] = 16,
    timeout_s: TimeoutS = 5.0,
) -> Result:
    """PAL (Gao et al., 2023): the model writes a program, the interpreter computes the answer; majority over N.

    From "PAL: Program-aided Language Models". Each of ``n`` samples is a Python program for the problem; it runs
    in ``ponder.sandbox`` (``timeout_s`` of wall time) and its printed answer is the sample's answer, so the
    arithmetic is done by Python, not by the model. Programs that fail, time out or print nothing do not vote;
    the confidence is the winner's share of all ``n`` programs.
    """
    replies = await ctx.sample(_question_messages(problem, PAL_PROMPT.format(question=problem_statement(problem))), n=n)
    limits = _limits(timeout_s)
    programs = await asyncio.gather(*(run_program(reply, problem.extract, limits) for reply in replies))
    for reply, program in zip(replies, programs, strict=True):
        reply.answer = program.output  # the program's answer, not whatever the reply's prose says
    info = {"programs": [p.summary() for p in programs],
            "ran": sum(p.run is not None for p in programs),
            "answered": sum(p.output is not None for p in programs)}
    result = await vote([p.output for p in programs], ctx.equivalent)
    return result.result(replies, info)
