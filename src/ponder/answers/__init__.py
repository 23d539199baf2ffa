"""Answers: extract a model's final answer, normalise it, and decide whether two answers are the same."""

from ponder.answers.equivalence import AnswerChecker, check_math, get_checker
from ponder.answers.extract import extract_answer, extract_number_answer
from ponder.answers.normalize import normalize_answer

__all__ = [
    "AnswerChecker",
    "check_math",
    "extract_answer",
    "extract_number_answer",
    "get_checker",
    "normalize_answer",
]
