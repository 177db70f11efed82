"""What-if sweeps: factors parsed, regions scaled, points solved in order each from its neighbour's
plan and prices, the marginal value of a rouble where the budget binds (slope and row price), the
monotone envelope, every point's plan checked by the independent oracle at its own budget, CSV and
PNG from the CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import typer
from oracle import check_plan, objective, plan_frame, random_bundle
from typer.testing import CliRunner

from marshrut.engine import InputError, Params, load_bundle
from marshrut.engine.changes import scaled
from marshrut.engine.sweep import parse_factors, sweep, sweep_plans, with_marginals
from marshrut.whatif import register
from tiny import tiny_bundle

TEACHERS = dict(teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144),
                          ("T3", "S2", "teacher", 50000, 144)],
                diagnostics=[("T1", "K1", 35), ("T2", "K1", 10), ("T3", "K1", 20)])
SITE = dict(sites=[("SITE1", "S3", "Площадка")], site_competencies=[("SITE1", "K1", 0.7)],
            site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 9, 16, 4000)])


def test_parse_factors():
    assert parse_factors("0.5x..2x", 4) == [0.5, 1.0, 1.5, 2.0]
    assert parse_factors("0.5x..1.5x", 2) == [0.5, 1.0, 1.5]  # 1x is always a point of a range around it
    assert parse_factors("2x, 0.5x,1x") == [0.5, 1.0, 2.0]
    for bad in ("2x..0.5x", "ax..b", "", "-1x"):
        with pytest.raises(InputError):
            parse_factors(bad)


def test_scaled_region(tmp_path):
    region = load_bundle(tiny_bundle(tmp_path, **TEACHERS, **SITE, budgets=[("region", "", 9999),
                                                                            ("municipality", "A", 5001)],
                                     mentors=[("M1", "", "S2", 3, 1, 0, 10)], mentor_competencies=[("M1", "K1", 0.5)]))
    half = scaled(region, budget=0.5)
    assert half.budgets.region_rub == 4999 and half.budgets.municipality_rub[region.municipalities.index["A"]] == 2500
    assert half.budgets.municipality_rub[region.municipalities.index["B"]] == -1  # no row stays no row
    assert list(scaled(region, vouchers=0.25).teachers.voucher_rub) == [12500] * 3
    seats = scaled(region, seats=0.5)
    assert list(seats.site_sessions.seats) == [5] and list(seats.mentors.capacity) == [2]
    assert region.budgets.region_rub == 9999  # the original is untouched


def test_budget_sweep_in_a_solver_process_has_a_positive_marginal_value_where_money_binds(tmp_path):
    region = load_bundle(tiny_bundle(tmp_path, **TEACHERS, **SITE, budgets=[("region", "", 8000)]))
    frame = sweep(region, Params(time_limit_s=5, rub_per_point=1e9), "budget", [1.5, 0.5, 1.0], workers=2,
                  context="spawn")
    assert list(frame["factor"]) == [0.5, 1.0, 1.5]
    assert list(frame["amount"]) == [4000, 8000, 12000]
    assert list(frame["assignments"]) == [1, 2, 3]  # one internship per 4000 roubles
    assert (frame["status"] == "OPTIMAL").all()
    covered = frame["need_covered"].to_numpy()
    assert covered[0] < covered[1] < covered[2]
    # Central slope at 1x: (covered(1.5x) - covered(0.5x)) / 8000 roubles.
    assert frame.loc[1, "marginal_need"] == pytest.approx((covered[2] - covered[0]) / 8000)
    assert frame.loc[1, "marginal_need_per_million_rub"] == pytest.approx(frame.loc[1, "marginal_need"] * 1e6)
    assert (frame["marginal_need"] > 0).all()
    # The budget row's price: positive where money binds, and (the Lagrangian bound being tight on
    # this region) a bound on what the next roubles bring: objective(1x) - objective(0.5x) <= price * 4000.
    prices = frame["price_objective"].to_numpy()
    assert (prices >= 0).all() and prices[0] > 0 and prices[1] > 0
    gained = frame.loc[1, "objective"] - frame.loc[0, "objective"]
    assert 0 < gained <= prices[0] * 4000 + 1e-6
    assert frame.loc[0, "price_objective_per_million_rub"] == pytest.approx(prices[0] * 1e6)


def test_envelope_never_falls():
    rows = [{"what": "budget", "factor": f, "amount": 1000 * f, "unit": "rub", "status": "FEASIBLE", "objective": o,
             "bound": 10.0, "gap": 0.0, "need_total": 10.0, "need_covered": o, "need_covered_share": o / 10,
             "cost_total_rub": 0, "spent_budget_rub": 0, "spent_voucher_rub": 0, "assignments": 1, "seconds": 1.0}
            for f, o in ((1.0, 5.0), (2.0, 4.0), (3.0, 6.0))]
    frame = with_marginals(pd.DataFrame(rows))
    assert list(frame["objective"]) == [5.0, 5.0, 6.0]
    assert list(frame["plan_from_factor"]) == [1.0, 1.0, 3.0]


def test_cli_sweep_writes_table_and_png(tmp_path):
    folder = tiny_bundle(tmp_path / "b", **TEACHERS, **SITE, budgets=[("region", "", 8000)])
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["sweep", str(folder), "--seats", "0.5x..1x", "--points", "2", "--out",
                                      str(tmp_path / "out"), "--time-limit", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out" / "sweep-seats.csv")
    assert list(frame["factor"]) == [0.5, 1.0] and set(frame["unit"]) == {"seat"}
    assert (tmp_path / "out" / "sweep-seats.png").read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(app, ["sweep", str(folder), "--budget", "2x..1x", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2


def _budget_scaled_copy(folder, factor: float, out):
    """The bundle with every budget row scaled as engine.changes.scaled does (whole roubles, down)."""
    shutil.copytree(folder, out)
    budgets = pd.read_csv(out / "budgets.csv", dtype=str, keep_default_na=False)
    budgets["amount_rub"] = np.floor(budgets["amount_rub"].astype(float) * factor + 1e-9).astype(np.int64)
    budgets.to_csv(out / "budgets.csv", index=False, lineterminator="\n")
    return out


@pytest.mark.parametrize("seed", [4, 11])
def test_sweep_is_monotone_and_every_point_obeys_the_rules_at_its_own_budget(tmp_path, seed):
    folder = random_bundle(seed, tmp_path / "b", teachers=40, schools=6, mentors=5, sites=3, programs=5, tight=0.9)
    region = load_bundle(folder)
    params = {"time_limit_s": 2, "rub_per_point": 20000}
    factors = [2.0, 0.25, 1.0, 0.5, 1.5, 0.0, 3.0]
    frame, plans = sweep_plans(region, Params(**params), "budget", factors)
    assert list(frame["factor"]) == sorted(factors)
    values = frame["objective"].to_numpy()
    assert (np.diff(values) >= -1e-9).all()  # the curve never goes down
    assert (frame["bound"].to_numpy() >= values - 1e-6).all() and (np.diff(frame["bound"]) >= -1e-9).all()
    assert (frame["plan_from_factor"] <= frame["factor"]).all()
    for row in frame.itertuples():
        scaled_bundle = _budget_scaled_copy(folder, row.factor, tmp_path / f"x{row.factor:g}")
        assignments = plan_frame(scaled_bundle, [(a.teacher_id, a.kind, a.resource_id) for a in plans[row.factor]])
        assert check_plan(scaled_bundle, params, assignments) == [], row.factor
        # the objective reported is the SPEC formula of the plan reported
        assert objective(scaled_bundle, params, assignments) == pytest.approx(row.objective, abs=1e-6)
        assert len(assignments) == row.assignments


def test_a_start_plan_is_never_lost_and_one_that_breaks_the_rules_is_ignored(tmp_path):
    from marshrut.engine.params import KINDS, AssignmentRef
    from marshrut.engine.solver import solve

    folder = random_bundle(7, tmp_path / "b", teachers=40, schools=6, mentors=5, sites=3, programs=5, tight=0.9)
    region = load_bundle(folder)
    params = Params(time_limit_s=5, rub_per_point=20000)
    rich = solve(scaled(region, budget=2.0), params)
    acts = rich.activities  # the region's activities, which rich.plan indexes
    ids = np.asarray(region.teachers.ids, dtype=object)
    refs = [AssignmentRef(teacher_id=ids[t], kind=KINDS[acts.kind[a]], resource_id=acts.ids[a])
            for t, a in zip(rich.plan.teacher.tolist(), rich.plan.activity.tolist())]
    # at a larger budget the plan still fits: the solve starts from it and never returns less
    richer = solve(scaled(region, budget=3.0), params.model_copy(update={"time_limit_s": 0.01}), start=refs,
                   prices=rich.prices)
    assert richer.objective >= rich.objective - 1e-9
    # at a smaller budget it breaks rule 9: ignored, and the plan obeys every rule (solve checks them)
    poorer = solve(scaled(region, budget=0.25), params, start=refs)
    assert poorer.objective <= rich.objective + 1e-9
