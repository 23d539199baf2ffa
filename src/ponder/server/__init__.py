"""``ponder serve``: an OpenAI-compatible proxy that runs a reasoning strategy per request.

See ``requests`` for how a request picks a strategy (``ponder`` body object or ``ponder:STRATEGY…/MODEL``
model prefix), ``strategy`` for the ``ponder`` response field and logging, ``responses`` for error mapping.
"""

from ponder.server.requests import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # lazy: importing the package must not import FastAPI
        from ponder.server.app import create_app

        return create_app
    raise AttributeError(name)
