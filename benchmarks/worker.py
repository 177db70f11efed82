"""One solver on one bundle, in a process of its own: `python -m marshrut.benchmarks.worker --help`.

Writes `result.json` (status, the solver's own objective and bound, seconds, load seconds, progress
history, peak resident memory of this process) and `assignments.csv` (SPEC §6) into --out. The
runner (benchmarks.run) checks the plan with the independent oracle; nothing here is trusted.

Seconds are counted from the loaded region to the plan, building the solver's instance included.
With --wall the time limit covers loading too (issue 3's "120 s wall, loading included").
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
import traceback
from pathlib import Path

SOLVERS = ("marshrut", "greedy", "cpsat", "mip", "timefold")


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB), C++ and JVM allocations included."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _after_solve_seconds(teachers: int) -> float:
    return 2.0 + 0.4e-3 * teachers


def run(bundle: str, solver: str, time_limit: float, out: Path, wall: bool = False, workers: int = 2,
        seed: int = 0) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    if solver == "marshrut":  # numba's one-time compilation after installation is not the run's time
        from marshrut.engine.solver.routes import warm_up

        warm_up()
    started = time.perf_counter()
    from marshrut.engine import Params, load_bundle

    region = load_bundle(bundle)
    load_seconds = time.perf_counter() - started
    # "Wall, loading included": the solve gets what is left after imports and loading, less what
    # building the plan's tables takes afterwards (about 2 s per 10,000 teachers, measured).
    limit = max(0.5, time_limit - (time.perf_counter() - started) - _after_solve_seconds(len(region.teachers))) \
        if wall else time_limit
    params = Params(time_limit_s=limit, workers=workers, seed=seed)
    info: dict = {"solver": solver, "bundle": bundle, "time_limit": time_limit, "solver_time_limit": limit,
                  "load_seconds": round(load_seconds, 3), "teachers": len(region.teachers)}
    (out / "assignments.csv").unlink(missing_ok=True)
    try:
        if solver == "marshrut":
            info |= _marshrut(region, params, out)
        else:
            info |= _peer(region, params, limit, solver, out, workers)
    except Exception as error:  # recorded, never hidden: the runner marks the row
        info |= {"status": "ERROR", "error": f"{type(error).__name__}: {error}",
                 "traceback": traceback.format_exc(limit=8)}
    info["peak_rss_mib"] = round(peak_rss_mib(), 1)
    info["wall_seconds"] = round(time.perf_counter() - started, 3)
    (out / "result.json").write_text(json.dumps(info, ensure_ascii=False, indent=1, default=_plain), encoding="utf-8")
    return info


def _marshrut(region, params, out: Path) -> dict:
    """The engine as shipped: deficit profiles, solve, plan files (plan_region, as the CLI does)."""
    from marshrut.engine import plan_region

    history = []
    started = time.perf_counter()
    files = plan_region(region, params, on_progress=lambda p: history.append(
        (time.perf_counter() - started, p.objective, p.bound, p.phase)))
    seconds = time.perf_counter() - started
    files.assignments.to_csv(out / "assignments.csv", index=False, lineterminator="\n")
    summary = files.summary
    first = next((h[0] for h in history if h[1] is not None and math.isfinite(h[1])), None)
    return {"status": summary["status"], "objective": summary["objective"], "bound": summary["bound"],
            "seconds": round(seconds, 3), "solve_seconds": summary["solve_seconds"],
            "first_plan_seconds": first, "history": history, "statistics": summary.get("statistics", {})}


def _peer(region, params, limit: float, solver: str, out: Path, workers: int) -> dict:
    if solver == "timefold":
        from .timefold_peer import timefold_peer as peer
        result = peer(region, params, limit)
    else:
        from .peers import PEERS
        kwargs = {"log_path": str(out / "highs.log")} if solver == "mip" else {}
        if solver == "cpsat":
            kwargs["workers"] = workers
        result = PEERS[solver](region, params, limit, **kwargs)
    from .peers import assignments_frame

    info = {"status": result.status, "bound": result.bound, "seconds": round(result.seconds, 3),
            "history": result.history, "statistics": result.statistics,
            "first_plan_seconds": result.history[0][0] if result.history else None}
    if result.chosen is not None:
        assignments_frame(result.instance, result.chosen).to_csv(out / "assignments.csv", index=False,
                                                                 lineterminator="\n")
        info["objective"] = result.objective
    return info


def _plain(value):
    try:
        import numpy as np
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marshrut.benchmarks.worker", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--solver", required=True, choices=SOLVERS)
    ap.add_argument("--time-limit", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--wall", action="store_true", help="the time limit includes loading the bundle")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    run(a.bundle, a.solver, a.time_limit, Path(a.out), a.wall, a.workers, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
