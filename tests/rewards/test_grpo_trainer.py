"""ponder's rewards inside a real ``trl.GRPOTrainer``: its reward path, on a tiny random model, without training.

The trainer scores one batch with ``_generate_and_score_completions``, the step that generates, decodes, calls the
reward functions (``_calculate_rewards``) and turns their values into advantages. A ``rollout_func`` supplies
fixed completions, so the rewards are known, and logprob columns as extra fields, which TRL forwards to reward
functions. Skipped without trl (``pip install '.[rl]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

trl = pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from datasets import Dataset  # noqa: E402  (trl's dependencies, present once trl is)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl.trainer.utils import get_callable_name, is_async_callable  # noqa: E402

from ponder import rewards  # noqa: E402
from ponder.errors import ConfigError  # noqa: E402

GENERATIONS = 4
QUESTIONS = [
    {"prompt": [{"role": "user", "content": "Half of 1? Put your final answer within \\boxed{}."}], "answer": "0.5"},
    {"prompt": [{"role": "user", "content": "Eggs? Put your final answer within \\boxed{}."}],
     "answer": "She sells 16 - 3 - 4 = 9 eggs at $2.\n#### 18"},
]
# Per prompt, GENERATIONS completions and their expected (correctness, format) rewards.
COMPLETIONS = [
    ("Half of one is \\boxed{\\frac{1}{2}}.", 1.0, 1.0),  # an equivalent form of 0.5
    ("It is \\boxed{1/2}", 1.0, 1.0),
    ("\\boxed{0.25}", 0.0, 1.0),  # wrong
    ("I am not sure what half means.", 0.0, 0.0),  # nothing to read
    ("9 eggs at $2 each: \\boxed{18}", 1.0, 1.0),
    ("She makes $18.", 1.0, 0.0),  # right, but not in the asked form
    ("\\boxed{17}", 0.0, 1.0),
    ("\\boxed{", 0.0, 0.0),  # cut off
]
SURE = [("a", -0.01), ("b", -5.0)]
UNSURE = [("a", -0.7), ("b", -0.7)]


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """One token per byte and no merges: every text survives encode and decode exactly, with no download."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: i for i, symbol in enumerate([*alphabet, "<eos>", "<pad>"])}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", pad_token="<pad>")
    wrapped.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                             "{% if add_generation_prompt %}assistant: {% endif %}")
    return wrapped


def make_trainer(tmp_path: Path, reward_funcs: list[Any], rollout: Any = None) -> Any:
    tokenizer = byte_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=512))
    args = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=len(QUESTIONS) * GENERATIONS,
                          num_generations=GENERATIONS, max_completion_length=8, report_to="none", use_cpu=True,
                          save_strategy="no")
    return trl.GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, processing_class=tokenizer,
                           train_dataset=Dataset.from_list(QUESTIONS), rollout_func=rollout)


def batch() -> list[dict[str, Any]]:
    """A batch as GRPOTrainer's sampler makes it: each question repeated once per generation, each row its own dict
    (TRL writes a rollout's extra fields into the rows)."""
    return [dict(row) for row in QUESTIONS for _ in range(GENERATIONS)]


def fixed_rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
    """The completions above, with top-k logprobs as an extra field (sure on the right answers)."""
    assert len(prompts) == len(COMPLETIONS)
    tokenizer = trainer.processing_class
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
           for text, _, _ in COMPLETIONS]
    tops = [[SURE if correct else UNSURE] * len(i) for i, (_, correct, _) in zip(ids, COMPLETIONS, strict=True)]
    return {"prompt_ids": [[1, 2, 3]] * len(prompts), "completion_ids": ids, "logprobs": [[0.0] * len(i) for i in ids],
            rewards.TOP_LOGPROBS_COLUMN: tops}


def test_rewards_through_the_trainer_reward_path(tmp_path: Path) -> None:
    funcs = [rewards.correctness("gsm8k"), rewards.answer_format("gsm8k"), rewards.confidence("mean")]
    trainer = make_trainer(tmp_path, funcs, fixed_rollout)
    assert trainer.reward_func_names == ["correctness_gsm8k", "format_gsm8k", "confidence_mean"]
    output = trainer._generate_and_score_completions(batch())
    logged = {name: list(values) for name, values in trainer._logs["rewards"].items()}
    assert logged["correctness_gsm8k"] == [correct for _, correct, _ in COMPLETIONS]
    assert logged["format_gsm8k"] == [formatted for _, _, formatted in COMPLETIONS]
    sure, unsure = (2.505, 0.7)  # DeepConf's mean token confidence of SURE and UNSURE
    assert logged["confidence_mean"] == pytest.approx([sure if correct else unsure for _, correct, _ in COMPLETIONS])
    # The completions table shows what correctness read as each answer.
    assert list(trainer._logs["extra"]["correctness_gsm8k/answer"]) == [
        "\\frac{1}{2}", "1/2", "0.25", None, "18", "18", "17", None]
    # GRPO's advantages follow: above the group's mean for the right answers, below for the others.
    advantages = output["advantages"].tolist()
    assert all((a > 0) == (c == 1.0) for a, (_, c, _) in zip(advantages, COMPLETIONS, strict=True))


def test_trainer_generation_without_logprob_columns(tmp_path: Path) -> None:
    # The trainer's own generation (a random model, so gibberish): correctness and format still score every
    # completion, and the confidence reward stops with the reason instead of scoring nothing.
    trainer = make_trainer(tmp_path, [rewards.correctness("gsm8k"), rewards.answer_format("gsm8k")])
    trainer._generate_and_score_completions(batch())
    for name in ("correctness_gsm8k", "format_gsm8k"):
        assert list(trainer._logs["rewards"][name]) == [0.0] * len(COMPLETIONS)
    trainer = make_trainer(tmp_path, [rewards.confidence("mean")])
    with pytest.raises(ConfigError, match="passes no logprobs to reward functions"):
        trainer._generate_and_score_completions(batch())


def test_reward_names_and_kind_as_trl_sees_them() -> None:
    assert get_callable_name(rewards.correctness("gsm8k")) == "correctness_gsm8k"
    assert get_callable_name(rewards.answer_format("add1")) == "format_add1"
    assert get_callable_name(rewards.confidence("tail")) == "confidence_tail"
    assert not is_async_callable(rewards.correctness("gsm8k"))  # TRL calls it directly, not on its event loop
