"""What-if: the need covered as the regional budget, the vouchers or the seats scale.

    sweep(region, params, "budget", [0.5, 0.75, 1, 1.5, 2]) -> DataFrame (+ sweep_plot -> PNG)

`budget` scales the region's and every municipality's budget, `vouchers` every teacher's
voucher, `seats` every mentor's capacity and every session's seats. Scaling up only relaxes the
rules, so a plan that fits a smaller factor fits a larger one: the points are solved in order of
their factor, each starting from the plan of the point before it (and priced first at its prices),
and each stops at `gap_limit`. The curve reported cannot go down: the best plan of a smaller factor
is feasible at a larger one, so each point's objective is the best of its own and its neighbour's.

The whole sweep shares one clock of `SWEEP_TIME_FACTOR` times `time_limit_s` (a sweep costs at
most that many plans), split over the points still to solve as they go: the first, cold, point
weighs double, and a point that stops early at its gap limit leaves its time to the next.

The marginal value at each point is measured twice: as the slope of the curve (central
difference; one-sided at the ends) of need covered and of the objective per rouble (per seat for
`seats`), and as the price of the scaled rows at the point's best Lagrangian bound (the prices of
the budget rows, or of the seats): `price_objective`, objective points per rouble (seat) of the
whole scaled amount. It is the slope of that bound as the amount grows, so where the bound is tight
(the LP relaxation has no gap), no more than that comes of the next roubles; where it is not, it is
the LP's value of a rouble. The two columns side by side tell a planner how far the slope of the
integer curve and the value of a rouble in the relaxation agree.
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
from .solver.solve import OPTIMAL_TOLERANCE
from .params import Params
from .problems import InputError, Problem
from .region import RegionData

WHAT = ("budget", "vouchers", "seats")
SWEEP_COLUMNS = ["what", "factor", "amount", "unit", "status", "objective", "bound", "gap", "need_total",
                 "need_covered", "need_covered_share", "cost_total_rub", "spent_budget_rub", "spent_voucher_rub",
                 "assignments", "plan_from_factor", "marginal_need", "marginal_objective", "marginal_need_per_million_rub",
                 "price_objective", "price_objective_per_million_rub", "seconds"]
# The sweep's clock, in time limits of one plan. A plan itself ends a little before its limit (its files
# are written within it): at 2.4 the 7-point sweep took 2.57 plans on altai-krai (145.8 s against 56.7 s).
SWEEP_TIME_FACTOR = 2.3
FIRST_POINT_WEIGHT = 2.0  # the first point starts cold: it gets this many shares of the time


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


def solve_point(region: RegionData, params: Params, what: str, factor: float, start: list | None = None,
                prices=None) -> tuple[dict, list, object]:
    """One point of the curve, from a neighbour's plan (`start`, AssignmentRef list) and prices:
    (its row, its plan as AssignmentRef list, its prices)."""
    from .params import KINDS, AssignmentRef
    from .solver import solve

    started = time.perf_counter()
    point = scale_region(region, what, factor)
    result = solve(point, params, start=start, prices=prices)
    inst = result.instance
    plan = result.plan
    acts = result.activities
    cover = np.zeros_like(inst.need)
    np.add.at(cover, plan.teacher, acts.weights[plan.activity])
    need_total = float(inst.need.sum())
    covered = float((inst.need * np.minimum(1.0, cover)).sum())
    amount, unit = amount_of(point, what)
    row = {"what": what, "factor": factor, "amount": amount, "unit": unit, "status": result.status,
           "objective": result.objective, "bound": result.bound, "gap": result.gap, "need_total": need_total,
           "need_covered": covered, "need_covered_share": covered / need_total if need_total else 1.0,
           "cost_total_rub": int(acts.cost_rub[plan.activity].sum()),
           "spent_budget_rub": int(acts.budget_rub[plan.activity].sum()),
           "spent_voucher_rub": int(acts.voucher_rub[plan.activity].sum()),
           "assignments": int(len(plan.teacher)), "price_objective": price_of(inst, result.prices, what, amount),
           "seconds": round(time.perf_counter() - started, 3)}
    teacher_ids = np.asarray(point.teachers.ids, dtype=object)
    refs = [AssignmentRef(teacher_id=teacher_ids[t], kind=KINDS[acts.kind[a]], resource_id=acts.ids[a])
            for t, a in zip(plan.teacher.tolist(), plan.activity.tolist())]
    return row, refs, result.prices


def price_of(inst, prices, what: str, amount: float) -> float:
    """Objective points per unit of the scaled amount at these prices of the shared rows: the slope
    of the Lagrangian bound L(prices) as every scaled row grows in proportion (NaN where no row is
    scaled: vouchers are each teacher's own limit, not a shared row)."""
    if prices is None or amount <= 0:
        return float("nan")
    region = inst.region
    if what == "budget":
        municipal = region.budgets.municipality_rub
        worth = float(prices.region) * max(0, region.budgets.region_rub) \
            + float((prices.municipal * np.maximum(0, municipal)).sum())
    elif what == "seats" and prices.capacity.shape == (len(inst.activities),):
        worth = float((prices.capacity * np.maximum(0, inst.activities.capacity)).sum())
    else:
        return float("nan")
    return worth / amount


def sweep(region: RegionData, params: Params, what: str, factors: list[float], workers: int | None = None,
          on_point: Callable[[dict], None] | None = None, context: str | None = None,
          time_factor: float = SWEEP_TIME_FACTOR, started: float | None = None) -> pd.DataFrame:
    """Solves the points in order of their factor, each from its neighbour's plan and prices, within
    `time_factor` x `params.time_limit_s` in all, and adds the marginal values. `workers`: solver
    threads (params.workers when not given). `context`: None solves in this process; a start method
    (e.g. "forkserver" in a server) solves the whole chain in one child process started that way.
    `started` (time.monotonic()): when the sweep's clock started, e.g. the command's start; now if
    not given."""
    scale_region(region, what, 1.0)  # checks `what`
    if workers is not None:
        params = params.model_copy(update={"workers": workers})
    factors = sorted(factors)
    if context is None:
        rows = _chain(region, params, what, factors, time_factor, on_point, started=started)
    else:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(context)) as pool:
            rows = pool.submit(_chain, region, params, what, factors, time_factor, started=started).result()
        if on_point:
            for row in rows:
                on_point(row)
    return with_marginals(pd.DataFrame(rows))


def sweep_plans(region: RegionData, params: Params, what: str, factors: list[float],
                time_factor: float = SWEEP_TIME_FACTOR) -> tuple[pd.DataFrame, dict[float, list]]:
    """The sweep, and the plan (AssignmentRef list) each point reports: the envelope's, whose
    factor is in `plan_from_factor`."""
    plans: dict[float, list] = {}
    rows = _chain(region, params, what, sorted(factors), time_factor, None, plans)
    return with_marginals(pd.DataFrame(rows)), plans


def _chain(region: RegionData, params: Params, what: str, factors: list[float], time_factor: float,
           on_point: Callable[[dict], None] | None = None, plans: dict | None = None,
           started: float | None = None) -> list[dict]:
    """The points in order, each from the best plan so far (it fits every larger factor)."""
    from .deadline import WRITE_FIXED_ROWS, Deadline, write_pace

    # the table and the plot are written after the last point: their time is kept back
    clock = Deadline(time_factor * params.time_limit_s - write_pace() * WRITE_FIXED_ROWS,
                     time.monotonic() if started is None else started)
    rows: list[dict] = []
    best_plan, best_objective, prices = None, float("-inf"), None
    for i, factor in enumerate(factors):
        shares = FIRST_POINT_WEIGHT * (i == 0) + (len(factors) - i - (i == 0))
        share = (FIRST_POINT_WEIGHT if i == 0 else 1.0) / shares
        limit = max(0.5, clock.left() * share)
        row, plan, point_prices = solve_point(region, params.model_copy(update={"time_limit_s": limit}), what,
                                              factor, start=best_plan, prices=prices)
        if row["objective"] >= best_objective - 1e-9:  # as with_marginals: else the envelope keeps the last
            best_plan, best_objective = plan, row["objective"]
        if point_prices is not None:
            prices = point_prices
        if plans is not None:
            plans[factor] = best_plan
        rows.append(row)
        if on_point:
            on_point(row)
    return rows


def with_marginals(frame: pd.DataFrame) -> pd.DataFrame:
    """Monotone envelope, then slopes. Scaling up only relaxes the rules, so the plan of a smaller
    factor is feasible at a larger one: where a time-limited solve did worse, that plan's figures
    are shown instead (`plan_from_factor` says whose), and the curve never falls. Status and gap
    are recomputed from the envelope's objective and the tightest bound that holds."""
    frame = frame.sort_values("factor", kind="stable").reset_index(drop=True)
    frame["plan_from_factor"] = frame["factor"]
    carried = ["objective", "need_covered", "need_covered_share", "cost_total_rub", "spent_budget_rub",
               "spent_voucher_rub", "assignments", "plan_from_factor"]
    for i in range(1, len(frame)):
        if frame.at[i, "objective"] < frame.at[i - 1, "objective"] - 1e-9:
            for column in carried:
                frame.at[i, column] = frame.at[i - 1, column]
    # A bound of a larger factor bounds every smaller one too (its optimum is no larger).
    frame["bound"] = np.minimum.accumulate(frame["bound"].to_numpy(float)[::-1])[::-1]
    frame["bound"] = np.maximum(frame["bound"], frame["objective"])
    frame["gap"] = (frame["bound"] - frame["objective"]) / np.maximum(1.0, frame["bound"].abs())
    frame["status"] = np.where(frame["gap"] <= OPTIMAL_TOLERANCE, "OPTIMAL", "FEASIBLE")
    amount = frame["amount"].to_numpy(float)
    for column, target in (("need_covered", "marginal_need"), ("objective", "marginal_objective")):
        values = frame[column].to_numpy(float)
        frame[target] = _slope(amount, values)
    frame["marginal_need_per_million_rub"] = np.where(frame["unit"] == "rub", frame["marginal_need"] * 1e6, np.nan)
    if "price_objective" not in frame:
        frame["price_objective"] = np.nan
    frame["price_objective_per_million_rub"] = np.where(frame["unit"] == "rub", frame["price_objective"] * 1e6,
                                                        np.nan)
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
