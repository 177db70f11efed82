"""From a validated region to the plan's files: profiles, solve, plan."""

from __future__ import annotations

import time
from collections.abc import Callable

from .deadline import MIN_SOLVE_SECONDS, Deadline, write_reserve_seconds
from .params import Params
from .plan import PlanFiles, deficit_profiles, plan_files
from .region import RegionData
from .solver import Progress, solve
from .solver.floor import FLOOR_SHARE, meet_floor


def plan_region(region: RegionData, params: Params, on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None, deadline: Deadline | None = None,
                extra_rows: float = 0.0) -> PlanFiles:
    """Clusters deficit profiles (they shape the solver's neighbourhoods), solves and builds the plan.

    `params.time_limit_s` is the whole request's (engine.deadline): `deadline` is the request's clock
    (made here when not given); the solve gets what is left after the profiles, less a reserve for
    building and writing the plan files and for `extra_rows` rows' worth of the caller's own work after
    it (at the same measured pace)."""
    deadline = deadline or Deadline(params.time_limit_s)
    profiles = deficit_profiles(region, params, random_state=params.seed)
    reserve = write_reserve_seconds(len(region.teachers), extra_rows)  # measured now: after it, the clock
    before = deadline.elapsed()
    left = max(MIN_SOLVE_SECONDS, deadline.limit_s - before - reserve)
    floor = bool(params.min_reached_share.active())
    result = solve(region, params.model_copy(update={"time_limit_s": left * (1 - FLOOR_SHARE) if floor else left}),
                   on_progress=on_progress, profiles=profiles.labels, should_stop=should_stop)
    if floor:  # the floor for the left-out, in the share of the solve's time kept for it (engine.solver.floor)
        def floor_progress(phase: str, objective: float) -> None:
            if on_progress:
                on_progress(Progress(deadline.elapsed(), objective, None, phase))

        floor_ends = time.perf_counter() + max(0.0, before + left - deadline.elapsed())
        result = meet_floor(result, floor_ends, floor_progress)
    solved = deadline.elapsed()
    files = plan_files(result, profiles)
    files.summary["params"]["time_limit_s"] = params.time_limit_s  # the planner's, not the search's share
    # How the request's time went (the files are written after this, by the caller).
    files.summary["wall_clock"] = {"limit_s": deadline.limit_s, "before_solve_s": round(before, 3),
                                   "reserve_s": round(reserve, 3), "solve_limit_s": round(left, 3),
                                   "solve_s": round(solved - before, 3)}
    return files
