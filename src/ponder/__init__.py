"""ponder: test-time reasoning strategies over any OpenAI-compatible model, measured in accuracy per token."""

from ponder.types import GenerationRequest, Message, Problem, Result, Trace, Usage

__all__ = ["GenerationRequest", "Message", "Problem", "Result", "Trace", "Usage"]
__version__ = "0.1.0"
