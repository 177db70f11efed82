"""marshrut against its peers on sample regions: `python -m marshrut.benchmarks.run --help`.

For each bundle every solver runs in turn, with the same time limit and 2 workers, each in a fresh
process of its own (benchmarks.worker) started by this one. Why a process per solver: peak memory
must include what C++ (OR-Tools, HiGHS) and the JVM (Timefold) allocate, which tracemalloc does not
see, and a process's peak resident size (getrusage ru_maxrss) is a high-water mark that cannot be
reset, so in one shared process a solver that needs less than an earlier one would show nothing.
A fresh process gives each solver its own honest peak, keeps a crash or an overrun of one solver
from taking the others down (a run past its limit plus a grace is stopped and recorded), and lets
HiGHS, OR-Tools and a JVM never share an address space. Loading the bundle is timed apart and not
counted in a solver's seconds (issue 3's 120 s-wall row is the exception: see engine_table).

Every plan is checked by the independent oracle (tests/oracle.py) before its row is written, and
its objective is recomputed there; a broken plan is marked in the `check` column, never dropped.

Outputs in --out: results.csv / results.md (the comparison), scaling.csv / scaling.md /
scaling.png (the scaling run), curves.png / curves.csv (objective over time on altai-krai),
runs/ (each worker's result.json, plan and solver log); and, for the default --out, the tables of
benchmarks/README.md between its markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
DEFAULT_OUT = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
PRESETS = ("tomsk-school-44", "krymsky-district", "altai-krai", "krasnoyarsk-krai")
SCALING_PRESET = "altai-krai"
SCALING_SIZES = (300, 1000, 3000, 10000, 20000, 50000)
SOLVERS = ("marshrut", "greedy", "cpsat", "mip", "timefold")
PEER_NAMES = {"marshrut": "marshrut", "greedy": "greedy by need", "cpsat": "textbook CP-SAT",
              "mip": "plain MIP (HiGHS)", "timefold": "Timefold"}
ANSWERED = ("OPTIMAL", "FEASIBLE")
MEMORY_CAP_MIB = 16 * 1024  # a worker past this is stopped (the machine has 24 GiB, shared)
TIMEFOLD_STARTUP_ALLOWANCE = 60.0  # seconds: JVM start-up and translating the domain to Java, under load
SEED = 0
WORKERS = 2
COLORS = {"marshrut": "tab:blue", "greedy": "tab:orange", "cpsat": "tab:green", "mip": "tab:red",
          "timefold": "tab:purple"}
CURVE_BUNDLES = ("altai-krai", "krymsky-district")  # the region of issue 5, and one where every peer answers


def _oracle():
    sys.path.insert(0, str(ROOT / "tests"))
    import oracle  # noqa: E402  (the independent checker, imported by path)
    return oracle


# ---------------------------------------------------------------------------------------------
# bundles
# ---------------------------------------------------------------------------------------------

def cache_dir() -> Path:
    return Path(os.environ.get("MARSHRUT_BENCH_CACHE", Path.home() / ".cache" / "marshrut-bench"))


def bundle_for(preset: str, teachers: int | None = None, seed: int = SEED) -> tuple[str, Path]:
    """The generated bundle (cached: the generator is deterministic) and its name in the tables."""
    from marshrut.datasets.generator import GENERATOR_VERSION, generate_bundle

    name = preset if teachers is None else f"{preset}@{teachers}"
    path = cache_dir() / f"v{GENERATOR_VERSION}" / f"{preset}-s{seed}-{teachers or 'natural'}"
    if not (path / "budgets.csv").exists():
        generate_bundle(preset, path, seed=seed, teachers=teachers)
    return name, path


def available_solvers(requested) -> list[str]:
    solvers = list(requested or SOLVERS)
    for s in solvers:
        if s not in SOLVERS:
            raise SystemExit(f"unknown solver {s!r}; known: {', '.join(SOLVERS)}")
    if "timefold" in solvers and not timefold_available() and requested is None:
        solvers.remove("timefold")
    return solvers


def timefold_available() -> bool:
    import importlib.util
    import shutil
    return importlib.util.find_spec("timefold") is not None and shutil.which("java") is not None


# ---------------------------------------------------------------------------------------------
# one solver on one bundle, in its own process
# ---------------------------------------------------------------------------------------------

def run_worker(bundle: Path, solver: str, time_limit: float, out: Path, wall: bool = False,
               grace: float | None = None, memory_cap_mib: float = MEMORY_CAP_MIB) -> dict:
    """Starts benchmarks.worker, watches its memory, stops it past limit + grace; returns its result."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "assignments.csv"):
        (out / stale).unlink(missing_ok=True)
    grace = max(30.0, 0.5 * time_limit) if grace is None else grace
    if solver == "timefold":  # its JVM start and Java translation are timed apart, not counted in the limit
        grace += TIMEFOLD_STARTUP_ALLOWANCE
    cmd = [sys.executable, "-m", "marshrut.benchmarks.worker", "--bundle", str(bundle), "--solver", solver,
           "--time-limit", str(time_limit), "--out", str(out), "--workers", str(WORKERS), "--seed", str(SEED)]
    if wall:
        cmd.append("--wall")
    started = time.perf_counter()
    with open(out / "worker.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        peak, stopped, loads = 0.0, None, []
        while proc.poll() is None:
            loads.append(os.getloadavg()[0])
            rss = _rss_mib(proc.pid)
            peak = max(peak, rss)
            elapsed = time.perf_counter() - started
            if elapsed > time_limit + grace:
                stopped = "TIMEOUT"
            elif rss > memory_cap_mib:
                stopped = "OOM"
            if stopped:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.2)
    wall_seconds = time.perf_counter() - started
    result_file = out / "result.json"
    if stopped or not result_file.exists():
        tail = (out / "worker.log").read_text(errors="replace")[-600:]
        note = {"TIMEOUT": f"stopped after {wall_seconds:.0f} s (limit {time_limit:g} s + grace {grace:g} s)",
                "OOM": f"stopped at {peak:.0f} MiB resident (cap {memory_cap_mib:.0f} MiB)"}.get(
            stopped, f"worker exited {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}")
        return {"status": stopped or "ERROR", "error": note, "peak_rss_mib": round(peak, 1),
                "seconds": round(wall_seconds, 3), "history": [], "load_avg": _mean(loads)}
    info = json.loads(result_file.read_text())
    info["load_avg"] = _mean(loads)
    info["peak_rss_mib"] = max(info.get("peak_rss_mib") or 0.0, round(peak, 1))
    return info


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


def _rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else 0.0


# ---------------------------------------------------------------------------------------------
# checking and rows
# ---------------------------------------------------------------------------------------------

ROW_COLUMNS = ["bundle", "teachers", "solver", "status", "objective", "bound", "gap", "pct_best",
               "seconds", "first_plan_s", "peak_mib", "assignments", "check", "note", "load"]


def checked_row(oracle, index, bundle_name: str, solver: str, info: dict, run_dir: Path) -> dict:
    """The row for one run, after the oracle has checked its plan (if any) and recomputed its objective."""
    row = {"bundle": bundle_name, "teachers": info.get("teachers"), "solver": solver,
           "status": info.get("status", "ERROR"), "objective": None, "bound": info.get("bound"),
           "gap": None, "pct_best": None, "seconds": info.get("seconds"),
           "first_plan_s": info.get("first_plan_seconds"), "peak_mib": info.get("peak_rss_mib"),
           "assignments": None, "check": "no plan",
           "note": info.get("error") or (info.get("statistics") or {}).get("note", ""),
           "load": info.get("load_avg")}
    plan = run_dir / "assignments.csv"
    if plan.exists():
        frame = pd.read_csv(plan, dtype=str, keep_default_na=False)
        problems = oracle.check_plan(index, {}, frame)
        objective = oracle.objective(index, {}, frame)
        row["objective"] = objective
        row["assignments"] = len(frame)
        if problems:
            row["check"] = f"BROKEN: {len(problems)} violations, e.g. {problems[0]}"
            (run_dir / "violations.txt").write_text("\n".join(problems) + "\n", encoding="utf-8")
        else:
            row["check"] = "ok"
        own = info.get("objective")
        if own is not None and abs(own - objective) > 1e-6 * max(1.0, abs(objective)):
            row["note"] = (row["note"] + "; " if row["note"] else "") + \
                f"solver claimed objective {own:.6f}, the oracle recomputes {objective:.6f}"
    if row["bound"] is not None and row["objective"] is not None:
        from marshrut.engine.solver.bound import relative_gap

        b = row["bound"]
        row["gap"] = max(0.0, relative_gap(row["objective"], b))
    return row


def finish_bundle(rows: list[dict]) -> None:
    """% of the best objective known (valid plans of this run) and honest-bound checks."""
    valid = [r["objective"] for r in rows if r["check"] == "ok" and r["objective"] is not None]
    best = max(valid) if valid else None
    for r in rows:
        if best is not None and r["objective"] is not None and r["check"] == "ok":
            r["pct_best"] = 100.0 * r["objective"] / best if best > 0 else None
        if best is not None and r["bound"] is not None and r["bound"] < best - 1e-6 * max(1.0, abs(best)):
            r["check"] += f"; BOUND {r['bound']:.4f} BELOW A KNOWN PLAN {best:.4f}"


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------

def compare(bundles: list[tuple[str, Path]], solvers: list[str], time_limit: float, out: Path,
            log=print) -> pd.DataFrame:
    oracle = _oracle()
    rows = []
    for name, path in bundles:
        index = oracle.BundleIndex(str(path))
        bundle_rows = []
        for solver in solvers:
            run_dir = out / "runs" / name / solver
            log(f"[{_now()}] {name}: {solver} ({time_limit:g} s)")
            info = run_worker(path, solver, time_limit, run_dir)
            row = checked_row(oracle, index, name, solver, info, run_dir)
            row["teachers"] = row["teachers"] or len(index.teachers)
            bundle_rows.append(row)
            log(f"    {row['status']} objective={_fmt(row['objective'])} bound={_fmt(row['bound'])} "
                f"{_fmt(row['seconds'])} s peak={_fmt(row['peak_mib'])} MiB check={row['check'][:80]}")
        finish_bundle(bundle_rows)
        rows += bundle_rows
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """marshrut against each peer, per bundle, from the same run: objective and time ratios."""
    out = []
    for bundle, group in frame.groupby("bundle", sort=False):
        ours = group[group.solver == "marshrut"]
        if ours.empty:
            continue
        ours = ours.iloc[0]
        for _, peer in group[group.solver != "marshrut"].iterrows():
            both = ours.check == "ok" and peer.check == "ok" and peer.objective is not None \
                and ours.objective is not None and not pd.isna(peer.objective)
            out.append({
                "bundle": bundle, "peer": PEER_NAMES.get(peer.solver, peer.solver),
                "objective_ratio": ours.objective / peer.objective if both and peer.objective > 0 else None,
                "marshrut_objective": ours.objective, "peer_objective": peer.objective,
                "peer_status": peer.status,
                "seconds_ratio": ours.seconds / peer.seconds if both and peer.seconds else None,
            })
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# the scaling run
# ---------------------------------------------------------------------------------------------

SCALING_COLUMNS = ["teachers", "solver", "status", "first_plan_s", "to_2pct_s", "seconds", "objective", "bound",
                   "gap", "pct_best", "peak_mib", "options", "check", "note", "load"]
PROVED_GAP = 0.02  # the scaling run's "time to a proved gap" is to this gap


def time_to_gap(history, gap: float = PROVED_GAP) -> float | None:
    """The first time in a run's progress (time, objective, bound, ...) at which its plan was proved within
    `gap` (SPEC's relative gap); None if it never was."""
    from marshrut.engine.solver.bound import relative_gap

    for point in history or []:
        seconds, objective, bound = point[0], point[1], point[2] if len(point) > 2 else None
        if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
            continue
        if relative_gap(objective, bound) <= gap:
            return float(seconds)
    return None


def scaling(sizes: list[int], solvers: list[str], time_limit: float, out: Path, preset: str = SCALING_PRESET,
            log=print) -> pd.DataFrame:
    """marshrut at every size; each peer until the first size where it gives no valid plan."""
    oracle = _oracle()
    rows = []
    stopped: dict[str, int] = {}
    for size in sorted(sizes):
        name, path = bundle_for(preset, size)
        index = oracle.BundleIndex(str(path))
        size_rows = []
        for solver in solvers:
            if solver in stopped:
                continue
            run_dir = out / "runs" / "scaling" / f"{size}" / solver
            log(f"[{_now()}] scaling {size}: {solver} ({time_limit:g} s)")
            info = run_worker(path, solver, time_limit, run_dir)
            row = checked_row(oracle, index, name, solver, info, run_dir)
            row["teachers"] = size
            row["options"] = (info.get("statistics") or {}).get("options")
            row["to_2pct_s"] = time_to_gap(info.get("history"))
            size_rows.append(row)
            log(f"    {row['status']} objective={_fmt(row['objective'])} first={_fmt(row['first_plan_s'])} s "
                f"peak={_fmt(row['peak_mib'])} MiB check={row['check'][:80]}")
            if solver != "marshrut" and (row["status"] not in ANSWERED or row["check"] != "ok"):
                stopped[solver] = size
        finish_bundle(size_rows)
        rows += size_rows
    return pd.DataFrame(rows, columns=SCALING_COLUMNS)


def slopes(frame: pd.DataFrame) -> dict[str, float]:
    """Least-squares slopes of log(time to first plan), log(seconds), log(peak memory) over log(teachers)."""
    ours = frame[(frame.solver == "marshrut") & frame.first_plan_s.notna()]
    out = {}
    if len(ours) >= 2:
        x = np.log(ours.teachers.astype(float))
        for column in ("first_plan_s", "to_2pct_s", "peak_mib", "options"):
            if column not in ours:
                continue
            y = pd.to_numeric(ours[column], errors="coerce").astype(float)
            if column == "to_2pct_s":  # over the sizes proved within 2% in the run (see proved_range)
                reached = (y > 0).to_numpy()
                if reached.sum() >= 2:
                    out[column] = float(np.polyfit(x[reached], np.log(y[reached]), 1)[0])
            elif (y > 0).all():
                out[column] = float(np.polyfit(x, np.log(y), 1)[0])
    return out


def proved_range(frame: pd.DataFrame) -> str:
    """Which sizes marshrut proved within PROVED_GAP in the run, and which it did not."""
    ours = frame[frame.solver == "marshrut"]
    if "to_2pct_s" not in ours:
        return ""
    column = pd.to_numeric(ours["to_2pct_s"], errors="coerce")
    reached = ours[column.notna().to_numpy()]
    missed = ours[column.isna().to_numpy()]
    text = ""
    if len(reached):
        text += (f" It proved a plan within {PROVED_GAP:.0%} at {len(reached)} sizes, "
                 f"{int(reached.teachers.min()):,} to {int(reached.teachers.max()):,} teachers")
    if len(missed):
        text += ("; not" if text else " It did not prove a plan within " + f"{PROVED_GAP:.0%}") + \
            " within the time limit at " + ", ".join(f"{int(t):,}" for t in missed.teachers)
    return text + "." if text else ""


def plot_scaling(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for solver, group in frame.groupby("solver", sort=False):
        group = group[group.status.isin(ANSWERED)]
        if group.empty:
            continue
        label = PEER_NAMES.get(solver, solver)
        style = dict(marker="o", label=label, linewidth=2.5 if solver == "marshrut" else 1.2,
                     color=COLORS.get(solver))
        axes[0].plot(group.teachers, group.first_plan_s, **style)
        axes[1].plot(group.teachers, group.peak_mib, **style)
        with_gap = group[group.gap.notna()]
        if not with_gap.empty:
            axes[2].plot(with_gap.teachers, 100 * with_gap.gap.astype(float).clip(lower=1e-4), **style)
    for ax, title in zip(axes, ("time to first plan, s", "peak memory, MiB",
                                "final proved gap, % (0 drawn at 0.01%)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("teachers")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("Scaling on generated altai-krai bundles (log-log)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# objective over time
# ---------------------------------------------------------------------------------------------

def curves(out: Path, bundle: str, solvers: list[str]) -> pd.DataFrame:
    """Every solver's (time, objective, bound) points on one bundle, from the runs' histories."""
    rows = []
    for solver in solvers:
        result = out / "runs" / bundle / solver / "result.json"
        if not result.exists():
            continue
        info = json.loads(result.read_text())
        for point in info.get("history") or []:
            elapsed, objective, bound = point[0], point[1], point[2]
            if objective is None or not math.isfinite(objective):
                continue
            rows.append({"solver": solver, "seconds": elapsed, "objective": objective,
                         "bound": bound if bound is None or math.isfinite(bound) else None})
    return pd.DataFrame(rows, columns=["solver", "seconds", "objective", "bound"])


def at_times(points: pd.DataFrame, times=(1, 10, 60)) -> pd.DataFrame:
    """Best objective each solver had reached after 1 s, 10 s, 60 s (None: no plan yet)."""
    out = []
    for solver, group in points.groupby("solver", sort=False):
        row = {"solver": PEER_NAMES.get(solver, solver)}
        for t in times:
            reached = group[group.seconds <= t]
            row[f"after {t} s"] = reached.objective.max() if not reached.empty else None
        best = group.objective.max()
        row["final"] = best
        row["final at, s"] = group[group.objective >= best].seconds.min()
        out.append(row)
    return pd.DataFrame(out)


def plot_curves(points: pd.DataFrame, rows: pd.DataFrame, time_limit: float, path: Path) -> None:
    """One panel per bundle in `points` (column `bundle`): best objective so far, per solver."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bundles = list(dict.fromkeys(points.bundle))
    fig, axes = plt.subplots(1, len(bundles), figsize=(8 * len(bundles), 5.5), squeeze=False)
    for ax, bundle in zip(axes[0], bundles):
        _curve_panel(ax, points[points.bundle == bundle], rows[rows.bundle == bundle], bundle, time_limit)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curve_panel(ax, points: pd.DataFrame, here: pd.DataFrame, bundle: str, time_limit: float) -> None:
    for _, row in here.iterrows():
        solver = row.solver
        group = points[points.solver == solver].sort_values("seconds")
        label = PEER_NAMES.get(solver, solver)
        if group.empty or row.check != "ok":
            ax.plot([], [], linestyle="none", marker="x", color=COLORS.get(solver),
                    label=f"{label}: no plan ({row.status})")
            continue
        best = group.objective.cummax()
        t = np.r_[group.seconds.to_numpy(), max(time_limit, float(row.seconds or 0))]
        y = np.r_[best.to_numpy(), best.to_numpy()[-1]]
        ax.step(t, y, where="post", marker="o", markersize=3, label=label, color=COLORS.get(solver),
                linewidth=2.5 if solver == "marshrut" else 1.2)
    top = points.objective.max() if not points.empty else 1.0
    low = min(0.0, points.objective.min()) if not points.empty else 0.0
    ours = here[here.solver == "marshrut"]
    bound = None if ours.empty or ours.iloc[0].bound is None or pd.isna(ours.iloc[0].bound) else ours.iloc[0].bound
    if bound is not None and bound <= 1.25 * top:
        ax.axhline(bound, color="grey", linestyle="--", linewidth=1, label="marshrut's proved bound")
        top = bound
    elif bound is not None:
        ax.set_title(f"(marshrut's proved bound {bound:,.0f} is off the chart)", fontsize=9, loc="right")
    ax.set_ylim(low, top * 1.08 if top > 0 else 1.0)
    for mark in (1, 10, 60):
        if mark <= time_limit:
            ax.axvline(mark, color="grey", alpha=0.3, linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1.0)
    answered = here[here.check == "ok"].seconds
    ax.set_xlim(0, max([time_limit] + [float(v) for v in answered if v is not None]) * 1.05)
    ax.set_xlabel("seconds since the region was loaded (instance building included)")
    ax.set_ylabel("objective (SPEC §5)")
    ax.set_title(f"{bundle} ({int(here.teachers.iloc[0]):,} teachers), 2 workers", loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)


# ---------------------------------------------------------------------------------------------
# markdown and the README
# ---------------------------------------------------------------------------------------------

def _fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(frame: pd.DataFrame, columns: dict[str, tuple[str, int]]) -> str:
    """A markdown table: columns maps frame column -> (header, digits)."""
    head = "| " + " | ".join(h for h, _ in columns.values()) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    lines = [head, rule]
    for _, r in frame.iterrows():
        cells = []
        for column, (_, digits) in columns.items():
            value = r[column]
            if column == "gap":
                cells.append("–" if value is None or pd.isna(value) else f"{100 * value:.2f}%")
            elif column == "solver":
                cells.append(PEER_NAMES.get(value, value))
            else:
                cells.append(_fmt(value, digits))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


RESULT_TABLE = {"bundle": ("bundle", 0), "teachers": ("teachers", 0), "solver": ("solver", 0),
                "status": ("status", 0), "objective": ("objective", 2), "bound": ("bound", 2), "gap": ("gap", 0),
                "pct_best": ("% of best", 1), "seconds": ("seconds", 1), "first_plan_s": ("first plan, s", 1),
                "peak_mib": ("peak MiB", 0), "check": ("checker", 0)}
RATIO_TABLE = {"bundle": ("bundle", 0), "peer": ("peer", 0), "objective_ratio": ("marshrut / peer objective", 3),
               "marshrut_objective": ("marshrut", 2), "peer_objective": ("peer", 2),
               "peer_status": ("peer status", 0), "seconds_ratio": ("marshrut / peer seconds", 2)}
SCALING_TABLE = {"teachers": ("teachers", 0), "solver": ("solver", 0), "status": ("status", 0),
                 "options": ("options", 0), "first_plan_s": ("first plan, s", 2),
                 "to_2pct_s": ("proved 2%, s", 1), "seconds": ("seconds", 1),
                 "objective": ("objective", 2), "gap": ("gap", 0), "pct_best": ("% of best", 1),
                 "peak_mib": ("peak MiB", 0), "check": ("checker", 0)}


def _short_checks(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["check"] = [c if len(str(c)) <= 60 else str(c)[:57] + "..." for c in frame["check"]]
    frame["status"] = [s if not n or s in ANSWERED else f"{s} ({n})" for s, n in
                       zip(frame["status"], frame.get("note", [""] * len(frame)).fillna(""))]
    frame["status"] = [s if len(s) <= 90 else s[:87] + "..." for s in frame["status"]]
    return frame


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        memory = f"{kib / 1024 ** 2:.0f} GiB"
    except (OSError, AttributeError):
        pass
    versions = []
    for module in ("ortools", "scipy", "numpy", "pandas", "timefold"):
        try:
            from importlib.metadata import version
            versions.append(f"{module} {version(module)}")
        except Exception:  # noqa: BLE001 - not installed
            pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "engine"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return (f"{platform.machine()}, {os.cpu_count()} cores ({cpu or 'unknown CPU'}), {memory}, "
            f"Python {platform.python_version()}, {', '.join(versions)}; "
            f"engine at commit {commit or '?'}{' with uncommitted changes' if dirty else ''}; "
            f"taken {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, load average {_load()} at the end "
            "(other work shared the machine when it is above 2)")


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min)"


def replace_section(text: str, key: str, body: str) -> str:
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    return text.rstrip() + "\n\n" + block + "\n"


def update_readme(sections: dict[str, str], readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# marshrut benchmarks\n"
    for key, body in sections.items():
        text = replace_section(text, key, body)
    readme.write_text(text, encoding="utf-8")


def _now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def _relative(path: Path, readme: Path) -> str:
    try:
        return str(path.resolve().relative_to(readme.resolve().parent))
    except ValueError:
        return str(path.resolve())


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------

def main(presets=PRESETS, sizes=(), time_limit: float = 60.0, out_dir=DEFAULT_OUT, solvers=None,
         quick: bool = False, readme: Path | None = None, log=print, merge: bool = False) -> dict:
    """Runs the comparison on `presets` and the scaling run on `sizes`; writes tables and plots.

    `quick`: a smoke run (tomsk-school-44 rescaled to 30 teachers unless presets are given).
    `readme`: the README whose marked sections are rewritten (default: benchmarks/README.md when
    out_dir is the default). `merge`: keep the previous run's rows for the (bundle, solver) pairs not
    run now (to re-run one solver). Returns the frames written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if readme is None and out.resolve() == DEFAULT_OUT.resolve() and not quick:
        readme = README
    solvers = available_solvers(solvers)
    written: dict = {}
    sections: dict[str, str] = {}
    command = _command()
    if quick:
        bundles = [bundle_for(p) for p in presets] if presets else [bundle_for("tomsk-school-44", 30)]
    else:
        bundles = [bundle_for(p) for p in presets]
    if bundles:
        started = time.perf_counter()
        frame = compare(bundles, solvers, time_limit, out, log=log)
        meta = {"time_limit": time_limit, "solvers": solvers, "minutes": (time.perf_counter() - started) / 60,
                "machine": machine(), "command": command}
        if merge:
            frame, meta = merge_previous(frame, meta, out / "results.csv", "bundle")
        frame.to_csv(out / "results.csv", index=False)
        (out / "results.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        written |= report_comparison(frame, meta, out, readme, sections)
    if sizes:
        started = time.perf_counter()
        frame = scaling(list(sizes), solvers, time_limit, out, log=log)
        meta = {"time_limit": time_limit, "solvers": solvers, "minutes": (time.perf_counter() - started) / 60,
                "machine": machine(), "command": command}
        if merge:
            frame, meta = merge_previous(frame, meta, out / "scaling.csv", "teachers")
        frame.to_csv(out / "scaling.csv", index=False)
        (out / "scaling.meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        written |= report_scaling(frame, meta, out, readme, sections)
    if readme and sections:
        update_readme(sections, readme)
    return written


def merge_previous(frame: pd.DataFrame, meta: dict, previous: Path, key: str) -> tuple[pd.DataFrame, dict]:
    """This run's rows plus the previous run's rows for the (key, solver) pairs not run now."""
    if not previous.exists():
        return frame, meta
    old = pd.read_csv(previous, keep_default_na=False, na_values=[""])
    old = old.astype(object).where(old.notna(), None)
    ran = set(zip(frame[key].astype(str), frame.solver))
    kept = old[[(str(k), s) not in ran for k, s in zip(old[key], old.solver)]]
    merged = pd.concat([kept, frame], ignore_index=True)
    merged["_order"] = [SOLVERS.index(s) if s in SOLVERS else 99 for s in merged.solver]
    first_seen = {k: i for i, k in reversed(list(enumerate(merged[key].astype(str))))}
    merged["_group"] = [first_seen[str(k)] for k in merged[key]]
    merged = merged.sort_values(["_group", "_order"], kind="stable").drop(columns=["_group", "_order"])
    rows = merged.to_dict("records")
    for r in rows:
        r["check"] = str(r["check"]).split("; BOUND")[0]
    for k in dict.fromkeys(str(r[key]) for r in rows):
        finish_bundle([r for r in rows if str(r[key]) == k])
    meta_file = previous.with_suffix(".meta.json")
    before = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    meta = meta | {"command": f"{before.get('command', '?')}, then {meta['command']} (merged)",
                   "machine": f"{before.get('machine', '?')}; rows of {', '.join(meta['solvers'])} re-run: "
                              f"{meta['machine']}",
                   "minutes": float(before.get("minutes", 0)) + meta["minutes"],
                   "solvers": list(dict.fromkeys(list(before.get("solvers", [])) + list(meta["solvers"])))}
    return pd.DataFrame(rows, columns=frame.columns), meta


def replot(out_dir=DEFAULT_OUT, readme: Path | None = None) -> dict:
    """Rewrites the tables, plots and README sections from the last runs' CSV files, running nothing."""
    out = Path(out_dir)
    if readme is None and out.resolve() == DEFAULT_OUT.resolve():
        readme = README
    sections: dict[str, str] = {}
    written: dict = {}
    for name, report in (("results", report_comparison), ("scaling", report_scaling)):
        if (out / f"{name}.csv").exists() and (out / f"{name}.meta.json").exists():
            frame = pd.read_csv(out / f"{name}.csv", keep_default_na=False, na_values=[""])
            frame["check"] = frame["check"].astype(str)
            frame = frame.astype(object).where(frame.notna(), None)
            meta = json.loads((out / f"{name}.meta.json").read_text())
            written |= report(frame, meta, out, readme, sections)
    if readme and sections:
        update_readme(sections, readme)
    return written


def report_comparison(frame: pd.DataFrame, meta: dict, out: Path, readme: Path | None, sections: dict) -> dict:
    time_limit = float(meta["time_limit"])
    ratio = ratios(frame)
    ratio.to_csv(out / "ratios.csv", index=False)
    text = (f"Time limit {time_limit:g} s per solver, {WORKERS} workers, seed {SEED}; the whole comparison took "
            f"{meta['minutes']:.1f} min; {meta['machine']}. Command: `{meta['command']}`.\n\n"
            + markdown(_short_checks(frame), RESULT_TABLE) + "\n\n**marshrut against each peer, same run** "
            "(objective ratio > 1: marshrut's plan is better; seconds ratio < 1: marshrut was faster):\n\n"
            + (markdown(ratio, RATIO_TABLE) if not ratio.empty else "(no marshrut rows)") + "\n")
    (out / "results.md").write_text(text, encoding="utf-8")
    sections["comparison"] = text
    written = {"results": frame}
    curve_bundles = [b for b in CURVE_BUNDLES if b in set(frame.bundle)] or [frame.bundle.iloc[0]]
    points = pd.concat([curves(out, b, list(meta["solvers"])).assign(bundle=b) for b in curve_bundles],
                       ignore_index=True)
    if not points.empty:
        points.to_csv(out / "curves.csv", index=False)
        plot_curves(points, frame, time_limit, out / "curves.png")
        marks = []
        for b in curve_bundles:
            at = at_times(points[points.bundle == b], [t for t in (1, 10, 60) if t <= time_limit] or [time_limit])
            for solver in frame[frame.bundle == b].solver:
                if PEER_NAMES.get(solver, solver) not in set(at.get("solver", [])):
                    at.loc[len(at)] = [PEER_NAMES.get(solver, solver)] + [None] * (len(at.columns) - 1)
            marks.append(at.assign(bundle=b)[["bundle"] + list(at.columns)])
        marks = pd.concat(marks, ignore_index=True)
        marks.to_csv(out / "curves_at.csv", index=False)
        image = _relative(out / "curves.png", readme) if readme else "curves.png"
        sections["curves"] = ("Best objective so far, time from the loaded region (building the solver's instance "
                              "included), from the runs of the comparison above; `–`: no plan yet. "
                              f"{' and '.join(curve_bundles)}: the second is where every peer answers.\n\n"
                              f"![objective over time]({image})\n\n"
                              + markdown(marks, {c: (c, 2) for c in marks.columns}) + "\n")
        (out / "curves.md").write_text(sections["curves"], encoding="utf-8")
        written["curves"] = points
    return written


def report_scaling(frame: pd.DataFrame, meta: dict, out: Path, readme: Path | None, sections: dict) -> dict:
    plot_scaling(frame, out / "scaling.png")
    sentence = scaling_sentence(frame, slopes(frame))
    image = _relative(out / "scaling.png", readme) if readme else "scaling.png"
    text = (f"Generated `{SCALING_PRESET}` bundles (seed 0), time limit {float(meta['time_limit']):g} s, {WORKERS} "
            f"workers; took {meta['minutes']:.1f} min; {meta['machine']}. Command: `{meta['command']}`.\n\n"
            f"{sentence}\n\n![scaling]({image})\n\n" + markdown(_short_checks(frame), SCALING_TABLE) + "\n")
    (out / "scaling.md").write_text(text, encoding="utf-8")
    sections["scaling"] = text
    return {"scaling": frame}


def _command() -> str:
    if sys.argv and sys.argv[0].endswith(("benchmarks/run.py", "-m")) or "benchmarks.run" in " ".join(sys.argv[:1]):
        return "python -m marshrut.benchmarks.run " + " ".join(sys.argv[1:])
    return "marshrut.benchmarks.run.main(...)"


def scaling_sentence(frame: pd.DataFrame, slope: dict[str, float]) -> str:
    ours = frame[frame.solver == "marshrut"]
    answered = ours[ours.first_plan_s.notna()]
    if "first_plan_s" not in slope or answered.empty:
        return "Too few sizes answered for a slope."
    memory = f", and its peak memory as n^{slope['peak_mib']:.2f}" if "peak_mib" in slope else ""
    if "to_2pct_s" in slope:
        memory = f"; its time to a plan proved within {PROVED_GAP:.0%} as n^{slope['to_2pct_s']:.2f}" + memory
    failed = ours[ours.first_plan_s.isna()]
    failures = "" if failed.empty else " It gave no plan at " + ", ".join(
        f"{int(r.teachers):,} ({r.status})" for _, r in failed.iterrows()) + "."
    peers = []
    for solver, group in frame[frame.solver != "marshrut"].groupby("solver", sort=False):
        ok = group[(group.check == "ok") & group.status.isin(ANSWERED)]
        bad = group[~group.index.isin(ok.index)]
        first_bad = bad.sort_values("teachers").iloc[0] if not bad.empty else None
        if ok.empty:
            text = f"no plan at {int(first_bad.teachers):,} ({first_bad.status}), not tried beyond"
        else:
            text = f"plans up to {int(ok.teachers.max()):,}"
            if first_bad is not None:
                text += f", none at {int(first_bad.teachers):,} ({first_bad.status})"
        peers.append(f"{PEER_NAMES.get(solver, solver)}: {text}")
    return (f"marshrut's time to a first plan grows as about n^{slope['first_plan_s']:.2f} in the number of "
            f"teachers n (least-squares slope of the log-log line over the {len(answered)} sizes where it answered, "
            f"{int(answered.teachers.min()):,} to {int(answered.teachers.max()):,}){memory}.{failures}"
            + proved_range(frame)
            + (f" The options (teacher, activity pairs the rules allow) grow as n^{slope['options']:.2f}: the "
               "generator scales mentors, sites and programs with n, so each teacher has more to choose from."
               if "options" in slope else "")
            + (f" Peers: {'; '.join(peers)}." if peers else ""))


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marshrut.benchmarks.run",
                                 description=__doc__.splitlines()[0].split(": `")[0] + ".",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--presets", nargs="*", default=None,
                    help=f"bundles for the comparison (default: all four: {', '.join(PRESETS)}; none: skip)")
    ap.add_argument("--sizes", nargs="*", type=int, default=None,
                    help=f"teacher counts for the scaling run on generated {SCALING_PRESET} "
                         f"(e.g. {' '.join(map(str, SCALING_SIZES))}; default: no scaling run)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per solver (default 60)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default benchmarks/results, "
                                                           "which also updates benchmarks/README.md)")
    ap.add_argument("--solvers", nargs="*", default=None,
                    help=f"subset of {', '.join(SOLVERS)} (default: all; timefold only if installed)")
    ap.add_argument("--quick", action="store_true", help="smoke run: a 30-teacher bundle, seconds")
    ap.add_argument("--readme", default=None, help="README whose marked sections to rewrite")
    ap.add_argument("--merge", action="store_true",
                    help="keep the previous run's rows for the bundles and solvers not run now")
    ap.add_argument("--replot", action="store_true",
                    help="rewrite tables, plots and README sections from the last runs in --out, running nothing")
    a = ap.parse_args(argv)
    if a.replot:
        replot(a.out, Path(a.readme) if a.readme else None)
        return 0
    presets = PRESETS if a.presets is None and not a.quick else (a.presets or [])
    main(presets, a.sizes or [], a.time_limit, a.out, a.solvers, a.quick,
         readme=Path(a.readme) if a.readme else None, merge=a.merge)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
