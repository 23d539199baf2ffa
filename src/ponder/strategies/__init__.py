"""Strategies: each reads like its paper's algorithm and draws every sample through ``ctx``."""

from ponder.strategies.registry import (
    StrategyInfo,
    coerce_params,
    get_strategy,
    list_strategies,
    strategy,
)

__all__ = ["StrategyInfo", "coerce_params", "get_strategy", "list_strategies", "strategy"]
