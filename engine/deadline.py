"""The planner's wall clock (SPEC §3 v2): `time_limit_s` covers the whole request.

One `Deadline` is made where the request starts (the CLI command's first line, or the API's
acceptance of the plan) and passed down: loading, validation, deficit profiles, the solve and
writing the plan files all come out of it. The solve gets what is left once the profiles are
made, less a reserve for building and writing the plan files, which grows with the region.

The first run after installation compiles the route search (numba, about half a minute on
2 cores; later runs load it from the cache in about a second). That is part of the request too:
`warm_up_in_background` starts it at the request's start, beside the loading of the bundle, and
the solve's own warm-up then only waits for it to end.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Finishing the search (the last greedy pass, the rules check) and building and writing the plan
# files (frames, explanation, CSV, summary, plan.xlsx), measured on altai-krai (21,000 teachers)
# with 2 cores at a load average of 8, i.e. with a quarter of a core each: about 28 s, so about
# 0.35 ms per teacher on a core of its own, and a second of fixed cost. Scaled by how busy the
# machine is now (its load average per core; never below 1).
FINISH_FIXED_SECONDS = 1.0
FINISH_SECONDS_PER_TEACHER = 0.00035
# The solve always gets this much, even when loading ate the limit: a plan (the greedy start at
# least) is always written, and the overrun is then what the plan files cost.
MIN_SOLVE_SECONDS = 1.0


@dataclass
class Deadline:
    """`limit_s` seconds from `started` (time.monotonic())."""

    limit_s: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def since_process_start(cls, limit_s: float) -> "Deadline":
        """A deadline whose clock started with this process (interpreter start-up and imports count:
        they are the command's), where the system says when that was; else from now."""
        try:
            ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            age = 0.0
        return cls.since(limit_s, age)

    @classmethod
    def since(cls, limit_s: float, seconds_ago: float) -> "Deadline":
        """A deadline whose clock started `seconds_ago` (e.g. when the API accepted the plan)."""
        return cls(limit_s, time.monotonic() - max(0.0, seconds_ago))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.limit_s - self.elapsed()


def machine_pace() -> float:
    """How much slower than on an idle core work runs now: the load average per core, at least 1."""
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except OSError:
        return 1.0


def write_reserve_seconds(teachers: int, extra: float = 0.0) -> float:
    """Seconds kept back from the search for finishing it and building and writing the plan files of
    `teachers` teachers, plus `extra` (e.g. the API's storing of the files)."""
    return machine_pace() * (FINISH_FIXED_SECONDS + FINISH_SECONDS_PER_TEACHER * teachers) + extra


def solve_seconds(deadline: Deadline, teachers: int, extra_reserve: float = 0.0) -> float:
    """What the solve may take: what is left, less the writing reserve (at least MIN_SOLVE_SECONDS)."""
    return max(MIN_SOLVE_SECONDS, deadline.left() - write_reserve_seconds(teachers, extra_reserve))


def warm_up_in_background() -> threading.Thread:
    """Loads (or, the first time, compiles) the route search in a thread, beside the loading of the
    bundle: the solve's own warm-up waits for it (numba compiles under one lock)."""
    from .solver.routes import warm_up

    thread = threading.Thread(target=warm_up, name="marshrut-warm-up", daemon=True)
    thread.start()
    return thread
