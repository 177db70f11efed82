"""A nation planned as one problem against what is done by hand today: quotas split by population.

    python -m marshrut.benchmarks.nation NATION --plan PLAN_DIR [--time-limit S]
    python -m marshrut.benchmarks.nation NATION --full-size 37,49,6 --time-limit 120   # pricing at full size

PLAN_DIR is the coordinated plan written by `marshrut plan NATION --out PLAN_DIR`. The peer splits
every federal resource by the regions' teacher counts (proportional to population): each online
session's seats (largest remainder), the federal budget (capped by a region's own quota where one
exists); an offline session's seats all go to its host region, the only one that may use them.
Each region is then planned alone by the regional engine on its share of seats, and its federal
assignments of least value are dropped until its share of money is respected. Both plans are
scored by the same formula (SPEC §5); the table compares need covered, teachers reached and money.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from marshrut.datasets.generator import apportion
from marshrut.engine.nation import NationData, load_nation, nation_params, regional_view
from marshrut.engine.solver import solve
from marshrut.engine.solver.bound import relative_gap


def split_by_population(nation: NationData) -> tuple[np.ndarray, np.ndarray]:
    """Seats (regions x sessions) and money (per region) of the hand split."""
    fed = nation.federal
    teachers = np.array([len(r.teachers) for r in nation.regions], dtype=float)
    seats = np.zeros((len(nation.regions), len(fed.session_ids)), dtype=np.int64)
    for s in range(len(fed.session_ids)):
        if fed.session_region[s] >= 0:
            seats[fed.session_region[s], s] = fed.seats[s]
        else:
            seats[:, s] = apportion(int(fed.seats[s]), teachers)
    money = np.floor(fed.budget_rub * teachers / teachers.sum()).astype(np.int64)
    money = np.where(fed.quota_rub >= 0, np.minimum(money, fed.quota_rub), money)
    return seats, money


def plan_alone(nation: NationData, r: int, seats: np.ndarray, money: int, time_limit: float) -> dict:
    fed = nation.federal
    alone = replace(nation, federal=replace(fed, seats=seats))
    view = regional_view(alone, r)
    params = nation_params(None, nation.region_ids).for_region(nation.region_ids[r], time_limit)
    price = fed.session_price[view.federal_session]
    first = len(view.region.mentors) + len(view.region.site_sessions) + view.first_federal
    cost = np.zeros(first + len(view.federal_session))
    cost[first:] = price / params.rub_per_point  # rule 11: free for the teacher, the price is still a cost
    result = solve(view.region, params, activity_price=cost)
    inst, chosen = result.instance, result.chosen.copy()
    federal = inst.options.activity >= first

    def spend(plan: np.ndarray) -> int:
        return int(price[inst.options.activity[plan & federal] - first].sum())

    def value(plan: np.ndarray) -> float:
        return inst.objective(plan) - spend(plan) / params.rub_per_point

    while spend(chosen) > money:  # drop the federal assignment whose loss is least
        candidates = np.flatnonzero(chosen & federal & ~inst.options.pinned)
        losses = []
        for o in candidates:
            trial = chosen.copy()
            trial[o] = False
            losses.append(value(chosen) - value(trial))
        chosen[candidates[int(np.argmin(losses))]] = False
    idx = np.flatnonzero(chosen)
    cover = np.zeros_like(inst.need)
    np.add.at(cover, inst.options.teacher[idx], inst.activities.weights[inst.options.activity[idx]])
    return {"objective": value(chosen), "need_total": float(inst.need.sum()),
            "need_covered": float((inst.need * np.minimum(1.0, cover)).sum()),
            "teachers_reached": int(len(np.unique(inst.options.teacher[idx]))),
            "federal_seats": int((chosen & federal).sum()), "federal_rub": spend(chosen),
            "cost_rub": int(inst.activities.cost_rub[inst.options.activity[idx]].sum()) + spend(chosen)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nation")
    ap.add_argument("--plan", help="the coordinated plan's folder")
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds for all regions alone")
    ap.add_argument("--full-size", help="instead: region indices (0-based, regions_table order) to price at "
                                        "full size, one at a time, --time-limit seconds each")
    a = ap.parse_args(argv)
    if a.full_size:
        full_size_pricing([int(x) for x in a.full_size.split(",")], a.time_limit, a.nation)
        return 0
    if not a.plan:
        ap.error("--plan is required")
    nation = load_nation(a.nation)
    seats, money = split_by_population(nation)
    started = time.perf_counter()
    per_region = a.time_limit / len(nation.regions)
    alone = [plan_alone(nation, r, seats[r], int(money[r]), per_region) for r in range(len(nation.regions))]
    seconds = time.perf_counter() - started
    coordinated = json.loads((Path(a.plan) / "summary.json").read_text(encoding="utf-8"))
    spent = 0
    for rid in nation.region_ids:
        region = json.loads((Path(a.plan) / "regions" / rid / "summary.json").read_text(encoding="utf-8"))
        spent += region["cost_total_rub"]
    rows = [
        ("coordinated (marshrut, one nation)", coordinated["objective"], coordinated["need_covered"],
         coordinated["teachers_reached"], sum(s["used"] for s in coordinated["federal"]["sessions"]),
         coordinated["federal"]["budget"]["used_rub"], spent, coordinated["solve_seconds"], coordinated["gap"]),
        ("quotas split by population, regions alone", sum(x["objective"] for x in alone),
         sum(x["need_covered"] for x in alone), sum(x["teachers_reached"] for x in alone),
         sum(x["federal_seats"] for x in alone), sum(x["federal_rub"] for x in alone),
         sum(x["cost_rub"] for x in alone), round(seconds, 1), None),
    ]
    print("| plan | objective | need covered | teachers reached | federal seats used | federal ₽ | all ₽ "
          "| seconds | proved gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        gap = "—" if row[8] is None else f"{100 * row[8]:.3f}%"
        print(f"| {row[0]} | {row[1]:.2f} | {row[2]:.2f} | {row[3]} | {row[4]} | {row[5]:,} | {row[6]:,} "
              f"| {row[7]} | {gap} |")
    return 0



def full_size_pricing(region_indices: list[int], time_limit: float, scale_nation: str) -> list[dict]:
    """Region pricing as an actor does it, on full-size regions of the russia preset, one at a time: the
    seconds to a 1% proved gap of the priced region and the status at `time_limit`. The federal layer is
    the online part of `scale_nation`'s (offline sessions are tied to that nation's municipalities)."""
    import tempfile

    from marshrut.datasets.generator import generate_frames, write_frames
    from marshrut.datasets.nation import region_preset, regions_table
    from marshrut.engine.bundle import load_bundle
    from marshrut.engine.nation_solve import FederalPrices, RegionPricer

    nation = load_nation(scale_nation)
    fed = nation.federal
    online = fed.session_region < 0
    federal = replace(fed, session_ids=tuple(s for s, o in zip(fed.session_ids, online) if o),
                      session_program=fed.session_program[online], start=fed.start[online], end=fed.end[online],
                      seats=fed.seats[online] * 50, session_region=fed.session_region[online],
                      session_municipality=tuple(m for m, o in zip(fed.session_municipality, online) if o),
                      quota_rub=fed.quota_rub[:1])
    table = regions_table()
    out = []
    for i in region_indices:
        with tempfile.TemporaryDirectory() as folder:
            frames, meta = generate_frames(region_preset(table, i), seed=i)
            region = load_bundle(write_frames(frames, meta, folder))
        params = nation_params(None, ("R",)).for_region("R")
        pricer = RegionPricer(federal, region, 0, "R", params)
        started = time.perf_counter()
        # (the planner's gap_limit: a pricing gap of 0 leaves it as it is)
        pricing = pricer.price(FederalPrices.zero(len(federal.session_ids), 1), time_limit, 0.0)
        seconds = time.perf_counter() - started
        gap = relative_gap(pricing.columns[0].value, pricing.bound)  # at prices 0
        out.append({"region": table.iloc[i]["name"], "teachers": len(region.teachers), "seconds": round(seconds, 1),
                    "gap": gap, "status": pricing.status})
        print(out[-1], flush=True)
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
