"""The warm-started master LP (engine.solver.master): highspy beside OR-Tools in one process, in both import
orders, and the same value and valid prices as a cold solve while columns come and go."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.optimize import linprog

from oracle import random_bundle

from marshrut.engine.bundle import load_bundle
from marshrut.engine.params import Params
from marshrut.engine.solver.decompose import Decomposition, Duals
from marshrut.engine.solver.instance import Instance

HIGHSPY = """
import highspy
import numpy as np
h = highspy.Highs()
h.setOptionValue("output_flag", False)
h.addVars(2, np.zeros(2), np.ones(2))
h.changeColsCost(2, np.array([0, 1], dtype=np.int32), np.array([-1.0, -2.0]))
h.addRows(1, np.array([-highspy.kHighsInf]), np.array([1.0]), 2, np.array([0], dtype=np.int32),
          np.array([0, 1], dtype=np.int32), np.array([1.0, 1.0]))
h.run()
assert abs(h.getInfo().objective_function_value + 2.0) < 1e-9
"""
ORTOOLS = """
from ortools.linear_solver import pywraplp
from ortools.sat.python import cp_model
for backend in ("HIGHS", "GLOP"):
    solver = pywraplp.Solver.CreateSolver(backend)
    if solver is not None:
        x = solver.NumVar(0, 1, "x")
        solver.Maximize(x)
        assert solver.Solve() == pywraplp.Solver.OPTIMAL
model = cp_model.CpModel()
v = model.NewBoolVar("v")
model.Maximize(v)
assert cp_model.CpSolver().Solve(model) == cp_model.OPTIMAL
"""


@pytest.mark.parametrize("first, second", [(HIGHSPY, ORTOOLS), (ORTOOLS, HIGHSPY)], ids=["highspy-first",
                                                                                         "ortools-first"])
def test_highspy_and_ortools_in_one_process(first, second):
    code = textwrap.dedent(first) + textwrap.dedent(second) + textwrap.dedent(first) + "print('ok')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def _cold(decomposition: Decomposition) -> float:
    master = decomposition._master()
    pinned = np.isfinite(master.lower)
    result = linprog(-master.value, A_ub=master.matrix[~pinned], b_ub=master.upper[~pinned],
                     A_eq=master.matrix[pinned] if pinned.any() else None,
                     b_eq=master.upper[pinned] if pinned.any() else None, bounds=(0, None), method="highs")
    return -float(result.fun)


@pytest.mark.parametrize("seed", range(4))
def test_warm_master_matches_a_cold_solve_round_after_round(tmp_path, seed):
    folder = random_bundle(200 + seed, tmp_path / "b", teachers=20, tight=0.7)
    inst = Instance.build(load_bundle(folder), Params(), pool=True)
    decomposition = Decomposition(inst)
    decomposition.add(inst.options.pinned.copy())
    _, routes, _ = decomposition.price(Duals.zero(inst), node_limit=300)
    decomposition.add(routes)
    for _ in range(6):
        value, duals = decomposition.solve_master(10.0)
        assert value == pytest.approx(_cold(decomposition), abs=1e-6)
        # Prices are >= 0, and the Lagrangian at them bounds the master's value (weak duality).
        assert (duals.capacity >= 0).all() and (duals.municipal >= 0).all() and duals.region >= 0
        bound, routes, _ = decomposition.price(duals, node_limit=10**6, tolerance=0.0)
        assert bound >= value - 1e-6
        if decomposition.add(routes) == 0:
            break


@pytest.mark.parametrize("seed", range(2))
def test_when_no_round_fits_the_master_is_still_solved_once(tmp_path, seed):
    # The biggest regions can spend their decomposition time on the first pricing: the plan is rounded from
    # the master's solution, so the master over the routes known is solved once even without a round.
    folder = random_bundle(210 + seed, tmp_path / "b", teachers=20, tight=0.7)
    inst = Instance.build(load_bundle(folder), Params(), pool=True)
    decomposition = Decomposition(inst)
    rounds = decomposition.run(inst.options.pinned.copy(), time_limit=10.0, max_rounds=0)
    assert rounds == []
    assert decomposition.final_master == pytest.approx(_cold(decomposition), abs=1e-6)
    assert decomposition.last_duals is not None and len(decomposition.x) == decomposition.n_columns
    assert decomposition.final_master > 0


def test_gap_limit_is_a_param_between_0_and_1():
    assert Params().gap_limit == 1e-4
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            Params(gap_limit=bad)


@pytest.mark.parametrize("seed", range(3))
def test_the_solve_stops_once_proved_within_the_gap_limit(tmp_path, seed):
    from oracle import exact_optimum

    from marshrut.engine.solver.solve import solve

    folder = random_bundle(300 + seed, tmp_path / "b", teachers=25, tight=0.6)
    region = load_bundle(folder)
    exact, _ = exact_optimum(folder, {})
    loose = solve(region, Params(time_limit_s=20, gap_limit=0.5))
    assert loose.gap <= 0.5 + 1e-12
    assert loose.bound >= exact - 1e-9 and loose.objective <= exact + 1e-9
    # Within half of the bound from the start: no neighbourhood search was needed, nor a second round.
    assert "lns_moves" not in loose.statistics
    assert loose.statistics["decomposition_rounds"] <= 1
    tight = solve(region, Params(time_limit_s=20, gap_limit=0.0))
    assert tight.objective == pytest.approx(exact, abs=1e-6)


def test_the_first_highs_model_prints_no_banner():
    # HiGHS writes a banner on stdout when a process makes its first model; the CLI's stdout must not
    # carry it (it would break `--json` output and the progress display).
    import subprocess
    import sys

    code = ("from marshrut.engine.solver.master import quiet_highs\n"
            "quiet_highs(); quiet_highs(); print('done')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "done\n"


@pytest.mark.parametrize("seed", range(3))
def test_route_mips_improve_a_plan_group_by_group_and_keep_every_rule(tmp_path, seed):
    # The biggest regions have too many routes for one MIP: improve_plan solves a group of teachers at a time
    # over their routes, within what the rest of the plan leaves. From a plan with half its routes taken away
    # the groups (a few routes each, so there are many) must win value back, and never break a rule.
    from marshrut.engine.rules import violations
    from marshrut.engine.solver.greedy import Residuals, greedy

    folder = random_bundle(230 + seed, tmp_path / "b", teachers=30, tight=0.7)
    region = load_bundle(folder)
    inst = Instance.build(region, Params(), pool=True)
    decomposition = Decomposition(inst)
    start = greedy(inst, inst.options.pinned.copy())
    decomposition.run(start, time_limit=10.0)
    poor = start.copy()
    teachers = np.unique(inst.options.teacher[start & ~inst.options.pinned])
    poor[np.isin(inst.options.teacher, teachers[::2]) & ~inst.options.pinned] = False
    better = decomposition.improve_plan(poor, time_limit=20.0, max_columns=4)
    assert decomposition.improve_stats["route_mip_groups"] > 1
    assert not Residuals(inst, better).overdrawn()
    assert violations(region, inst.params, inst.real_activities, inst.real_plan(better)) == []
    assert (better & inst.options.pinned).sum() == inst.options.pinned.sum()
    assert inst.solver_objective(better) > inst.solver_objective(poor) + 1e-6
