"""What-if: the need covered as the regional budget, the vouchers or the seats scale.

    sweep(region, params, "budget", [0.5, 0.75, 1, 1.5, 2]) -> DataFrame (+ sweep_plot -> PNG)

`budget` scales the region's and every municipality's budget, `vouchers` every teacher's
voucher, `seats` every mentor's capacity and every session's seats. Each point is an
independent solve, so points run in parallel processes (2 workers by default, one solver
thread each). The marginal value at each point is the slope of the curve there (central
difference; one-sided at the ends): need covered per rouble (shown per million roubles), or per
seat for `seats`, from which a planner reads where money helps most.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .changes import scaled
from .params import Params
from .problems import InputError, Problem
from .region import RegionData

WHAT = ("budget", "vouchers", "seats")
SWEEP_COLUMNS = ["what", "factor", "amount", "unit", "status", "objective", "bound", "gap", "need_total",
                 "need_covered", "need_covered_share", "cost_total_rub", "spent_budget_rub", "spent_voucher_rub",
                 "assignments", "plan_from_factor", "marginal_need", "marginal_objective", "marginal_need_per_million_rub", "seconds"]


def parse_factors(text: str, points: int = 7) -> list[float]:
    """`0.5x..2x` (evenly spaced, `points` of them, 1x included), or a list `0.5x,1x,2x`."""
    def number(part: str) -> float:
        part = part.strip().lower().rstrip("x×").strip()
        value = float(part)
        if not (0 <= value <= 100):
            raise ValueError(part)
        return value

    try:
        if ".." in text:
            low, high = (number(p) for p in text.split("..", 1))
            if high < low or points < 2:
                raise ValueError(text)
            values = set(np.round(np.linspace(low, high, points), 6).tolist())
            if low <= 1 <= high:
                values.add(1.0)
            return sorted(values)
        values = sorted({number(p) for p in re.split(r"[,;\s]+", text) if p.strip()})
        if not values:
            raise ValueError(text)
        return values
    except ValueError:
        raise InputError([Problem("sweep", "ожидается диапазон вида 0.5x..2x или список 0.5x,1x,2x", "bad_range",
                                  None, "factors", text)], title="Ошибки в параметрах анализа «что если»") from None


def amount_of(region: RegionData, what: str) -> tuple[float, str]:
    if what == "budget":
        return float(region.budgets.region_rub), "rub"
    if what == "vouchers":
        return float(region.teachers.voucher_rub.sum()), "rub"
    return float(region.mentors.capacity.sum() + region.site_sessions.seats.sum()
                 + region.program_sessions.seats.sum()), "seat"


def scale_region(region: RegionData, what: str, factor: float) -> RegionData:
    if what not in WHAT:
        raise InputError([Problem("sweep", f"ожидается одно из {', '.join(WHAT)}", "bad_value", None, "what", what)],
                         title="Ошибки в параметрах анализа «что если»")
    return scaled(region, **{what: factor})


def solve_point(region: RegionData, params: Params, what: str, factor: float) -> dict:
    """One point of the curve (runs in a worker process)."""
    from .solver import solve

    started = time.perf_counter()
    point = scale_region(region, what, factor)
    result = solve(point, params)
    inst = result.instance
    plan = result.plan
    acts = result.activities
    cover = np.zeros_like(inst.need)
    np.add.at(cover, plan.teacher, acts.weights[plan.activity])
    need_total = float(inst.need.sum())
    covered = float((inst.need * np.minimum(1.0, cover)).sum())
    amount, unit = amount_of(point, what)
    return {"what": what, "factor": factor, "amount": amount, "unit": unit, "status": result.status,
            "objective": result.objective, "bound": result.bound, "gap": result.gap, "need_total": need_total,
            "need_covered": covered, "need_covered_share": covered / need_total if need_total else 1.0,
            "cost_total_rub": int(acts.cost_rub[plan.activity].sum()),
            "spent_budget_rub": int(acts.budget_rub[plan.activity].sum()),
            "spent_voucher_rub": int(acts.voucher_rub[plan.activity].sum()),
            "assignments": int(len(plan.teacher)), "seconds": round(time.perf_counter() - started, 3)}


def sweep(region: RegionData, params: Params, what: str, factors: list[float], workers: int = 2,
          on_point: Callable[[dict], None] | None = None, context: str = "spawn") -> pd.DataFrame:
    """Solves every point (in `workers` processes; 1 = in this process) and adds the marginal values.
    `context`: how worker processes start (spawn: a fresh interpreter, safe beside threads; a server
    with a preloaded forkserver passes "forkserver")."""
    scale_region(region, what, 1.0)  # checks `what`
    point_params = params.model_copy(update={"workers": 1})
    rows = []
    if workers <= 1 or len(factors) <= 1:
        for factor in factors:
            rows.append(solve_point(region, point_params, what, factor))
            if on_point:
                on_point(rows[-1])
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(factors)),
                                 mp_context=multiprocessing.get_context(context)) as pool:
            futures = [pool.submit(solve_point, region, point_params, what, factor) for factor in factors]
            for future in futures:
                rows.append(future.result())
                if on_point:
                    on_point(rows[-1])
    return with_marginals(pd.DataFrame(rows))


def with_marginals(frame: pd.DataFrame) -> pd.DataFrame:
    """Monotone envelope, then slopes. Scaling up only relaxes the rules, so the plan of a smaller
    factor is feasible at a larger one: where a time-limited solve did worse, that plan's figures
    are shown instead (`plan_from_factor` says whose), and the curve never falls."""
    frame = frame.sort_values("factor", kind="stable").reset_index(drop=True)
    frame["plan_from_factor"] = frame["factor"]
    carried = ["objective", "need_covered", "need_covered_share", "cost_total_rub", "spent_budget_rub",
               "spent_voucher_rub", "assignments", "plan_from_factor"]
    for i in range(1, len(frame)):
        if frame.at[i, "objective"] < frame.at[i - 1, "objective"] - 1e-9:
            for column in carried:
                frame.at[i, column] = frame.at[i - 1, column]
            frame.at[i, "status"] = "FEASIBLE"
            frame.at[i, "gap"] = max(0.0, (frame.at[i, "bound"] - frame.at[i, "objective"])
                                     / max(1.0, abs(frame.at[i, "bound"])))
    amount = frame["amount"].to_numpy(float)
    for column, target in (("need_covered", "marginal_need"), ("objective", "marginal_objective")):
        values = frame[column].to_numpy(float)
        frame[target] = _slope(amount, values)
    frame["marginal_need_per_million_rub"] = np.where(frame["unit"] == "rub", frame["marginal_need"] * 1e6, np.nan)
    return frame.reindex(columns=SWEEP_COLUMNS)


def _slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = len(x)
    out = np.full(n, np.nan)
    for i in range(n):
        lo, hi = max(0, i - 1), min(n - 1, i + 1)
        if x[hi] > x[lo]:
            out[i] = (y[hi] - y[lo]) / (x[hi] - x[lo])
    return out


def sweep_plot(frame: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Need covered against the amount, and the marginal value at each point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    what = str(frame["what"].iloc[0]) if len(frame) else ""
    rub = len(frame) and frame["unit"].iloc[0] == "rub"
    scale = 1e6 if rub else 1.0
    x = frame["amount"].to_numpy(float) / scale
    label = {"budget": "регион. бюджет, млн ₽ (regional budget, M RUB)",
             "vouchers": "сертификаты, млн ₽ (vouchers, M RUB)",
             "seats": "места (seats and mentor places)"}.get(what, what)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    top.plot(x, frame["need_covered"], marker="o")
    for xi, yi, f in zip(x, frame["need_covered"], frame["factor"]):
        top.annotate(f"{f:g}×", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=8)
    top.set_ylabel("закрыто потребности (need covered)")
    top.grid(alpha=0.3)
    marginal = frame["marginal_need_per_million_rub"] if rub else frame["marginal_need"]
    width = (x.max() - x.min()) / max(1, len(x)) * 0.6 if len(x) > 1 else 0.5
    bottom.bar(x, marginal, width=width)
    bottom.set_ylabel("на 1 млн ₽ (per M RUB)" if rub else "на место (per seat)")
    bottom.set_xlabel(label)
    bottom.grid(alpha=0.3)
    fig.suptitle(title or f"Что если: {what} (what-if)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
