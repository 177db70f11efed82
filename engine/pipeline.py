"""From a validated region to the plan's files: profiles, solve, plan."""

from __future__ import annotations

import time
from collections.abc import Callable

from .params import Params
from .plan import PlanFiles, deficit_profiles, plan_files
from .region import RegionData
from .solver import Progress, solve


def plan_region(region: RegionData, params: Params, on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> PlanFiles:
    """Clusters deficit profiles (they shape the solver's neighbourhoods), solves and builds the plan.

    `params.time_limit_s` covers the clustering too: the solve gets what is left."""
    started = time.perf_counter()
    profiles = deficit_profiles(region, params, random_state=params.seed)
    left = max(1.0, params.time_limit_s - (time.perf_counter() - started))
    result = solve(region, params.model_copy(update={"time_limit_s": left}), on_progress=on_progress,
                   profiles=profiles.labels, should_stop=should_stop)
    return plan_files(result, profiles)
