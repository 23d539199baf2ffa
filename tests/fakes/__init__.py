"""Test doubles for ponder's test suite (fake OpenAI-compatible server, ...)."""
