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

# The reserve for finishing the search (its last greedy pass and rules check) and building and
# writing the plan files (frames, explanation, CSV, summary, plan.xlsx) is measured where the plan
# runs, as the request goes: a small sheet like the plan's is written (`write_pace`, seconds per
# row), and the reserve is that pace times WRITE_FIXED_ROWS + WRITE_ROWS_PER_TEACHER x teachers.
# Both were measured on 2 cores shared with other work (2026-11-28 09:09-09:28 UTC, load average
# 3.3-4.4), with plan.xlsx written by XlsxWriter: `marshrut plan`'s steps at --time-limit 60, the time
# from the end of the search's window to the last file written divided by the pace the reserve used.
# krymsky-district (700 teachers): 4,100-12,800 rows' worth; altai-krai (21,000): 89,000-202,000,
# 4 to 9.5 rows per teacher as the load moved between the measure and the writing (10-13 s at a
# quiet pace of 65 us per row, search's last steps ~2 s, plan_files ~3 s, write_plan ~8 s). So
# 4,000 + 8 per teacher: at a quiet pace a region's files come ~2 s (3%) late at worst, at a busy
# one the search gives back what the pace overstates. The ratio follows the machine's speed and
# load, since both sides slow down together. (openpyxl wrote plan.xlsx before: 3,300 + 4.5 per
# teacher at its pace, which was about twice as slow on the same small sheet.)
PACE_ROWS, PACE_REPEATS = 200, 5
WRITE_FIXED_ROWS = 4000.0
WRITE_ROWS_PER_TEACHER = 8.0
# The solve always gets this much, even when loading ate the limit: a plan (the greedy start at
# least) is always written, and the overrun is then what the plan files cost.
MIN_SOLVE_SECONDS = 1.0
# More than an interpreter's start-up before marshrut's first import ever takes, even on a loaded machine
# (Deadline.since_process_start).
EXEC_SLACK = 3.0


@dataclass
class Deadline:
    """`limit_s` seconds from `started` (time.monotonic())."""

    limit_s: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def since_process_start(cls, limit_s: float) -> "Deadline":
        """A deadline whose clock started with this process (interpreter start-up and imports count:
        they are the command's), where the system says when that was; else from now.

        A shell running `... && marshrut plan ...` (as `bash -c` does) exec's the last command in its own
        process, whose start is then the shell's: the commands before ours would count (a `pip install`
        made a 20 s plan's clock read 88 s at its start). A process older than marshrut's first import by
        more than EXEC_SLACK seconds, which an interpreter's start-up never takes, is such a process: the
        clock then starts at that import."""
        import marshrut

        imported = time.monotonic() - marshrut.IMPORTED
        try:
            ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
            uptime = float(Path("/proc/uptime").read_text().split()[0])
            age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            age = imported
        return cls.since(limit_s, imported if age > imported + EXEC_SLACK else age)

    @classmethod
    def since(cls, limit_s: float, seconds_ago: float) -> "Deadline":
        """A deadline whose clock started `seconds_ago` (e.g. when the API accepted the plan)."""
        return cls(limit_s, time.monotonic() - max(0.0, seconds_ago))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.limit_s - self.elapsed()


def write_pace() -> float:
    """Seconds per row of writing, now, a sheet like the plan's assignments as CSV and as xlsx."""
    import io

    import numpy as np
    import pandas as pd

    from .workbook import write_frames

    rows = np.arange(PACE_ROWS)
    frame = pd.DataFrame({
        "teacher_id": [f"T{i:06d}" for i in rows], "kind": "program", "resource_id": [f"PS{i:04d}" for i in rows],
        "start": "2026-10-05", "end": "2026-10-09", "hours": 36, "cost_rub": rows * 100,
        "funded_by": "municipality:MUN01", "addresses": "fl_reading;fl_math", "need_total": rows / 7.0})
    write_frames({"pace": frame.head(20)}, io.BytesIO())  # first use: imports and caches, not measured
    times = []
    for _ in range(PACE_REPEATS):  # the median: a burst of other work does not double the reserve
        started = time.perf_counter()
        frame.to_csv(io.StringIO(), index=False)
        write_frames({"pace": frame}, io.BytesIO())
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] / PACE_ROWS


def write_reserve_seconds(teachers: int, extra_rows: float = 0.0) -> float:
    """Seconds kept back from the search for finishing it and building and writing the plan files of
    `teachers` teachers, plus `extra_rows` rows' worth of the caller's own work after it (e.g. the
    API's storing), all at the pace measured now (write_pace, once)."""
    return write_pace() * (WRITE_FIXED_ROWS + WRITE_ROWS_PER_TEACHER * teachers + extra_rows)


def warm_up_in_background() -> threading.Thread:
    """Loads (or, the first time, compiles) the route search in a thread, beside the loading of the
    bundle: the solve's own warm-up waits for it (numba compiles under one lock)."""
    from .solver.routes import warm_up

    thread = threading.Thread(target=warm_up, name="marshrut-warm-up", daemon=True)
    thread.start()
    return thread
