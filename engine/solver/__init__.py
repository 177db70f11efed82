"""Solvers: greedy start, LP bound, CP-SAT (full model or neighbourhoods)."""

from .solve import Progress, Result, solve

__all__ = ["Progress", "Result", "solve"]
