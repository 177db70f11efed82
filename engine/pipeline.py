"""From a validated region to the plan's files: profiles, solve, plan."""

from __future__ import annotations

from collections.abc import Callable

from .params import Params
from .plan import PlanFiles, deficit_profiles, plan_files
from .region import RegionData
from .solver import Progress, solve


def plan_region(region: RegionData, params: Params, on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> PlanFiles:
    """Clusters deficit profiles (they shape the solver's neighbourhoods), solves and builds the plan."""
    profiles = deficit_profiles(region, params, random_state=params.seed)
    result = solve(region, params, on_progress=on_progress, profiles=profiles.labels, should_stop=should_stop)
    return plan_files(result, profiles)
