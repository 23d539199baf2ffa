"""Building blocks of the search strategies: the search tree and the step-scorer interface."""

from ponder.search.scoring import AGGREGATIONS, Aggregation, StepScorer, aggregate
from ponder.search.tree import Node, SearchTree

__all__ = ["AGGREGATIONS", "Aggregation", "Node", "SearchTree", "StepScorer", "aggregate"]
