"""The engine: each rule binds in one tiny case and not in its twin; optimum equals an independent
exact MILP on random bundles; the bound is never below it; files follow SPEC §6."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marshrut.engine import InputError, Params, load_bundle, plan_region, write_plan
from oracle import check_plan, exact_optimum, objective, random_bundle
from tiny import merge, program, tiny_bundle

ONLINE = ("2026-10-01", "2026-10-20")


def _plan(folder, **params):
    params.setdefault("time_limit_s", 10)
    params.setdefault("gap_limit", 0.0)  # the exact optimum is asked for, not the default 1e-4
    region = load_bundle(folder)
    files = plan_region(region, Params(**params))
    oracle_params = {k: v for k, v in params.items() if k not in ("time_limit_s", "gap_limit")}
    assert check_plan(folder, oracle_params, files.assignments) == []
    assert files.summary["objective"] == pytest.approx(objective(folder, oracle_params, files.assignments), abs=1e-9)
    exact, _ = exact_optimum(folder, oracle_params)
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9
    return set(zip(files.assignments["teacher_id"], files.assignments["kind"], files.assignments["resource_id"]))


TWO_TEACHERS = dict(teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144)],
                    diagnostics=[("T1", "K1", 30), ("T2", "K1", 40)])


@pytest.mark.parametrize("capacity, expected", [(1, 1), (2, 2)])
def test_rule_1_mentor_capacity(tmp_path, capacity, expected):
    folder = tiny_bundle(tmp_path, **TWO_TEACHERS, mentors=[("M1", "", "S2", capacity, 0, 0, 10)],
                         mentor_competencies=[("M1", "K1", 0.8)])
    plan = _plan(folder)
    assert sum(1 for a in plan if a[1] == "mentor") == expected


@pytest.mark.parametrize("seats, expected", [(1, 1), (2, 2)])
def test_rule_1_session_seats(tmp_path, seats, expected):
    folder = tiny_bundle(tmp_path, **TWO_TEACHERS, **merge(program("P1")),
                         program_sessions=[("PS1", "P1", *ONLINE, seats, "")])
    assert len(_plan(folder)) == expected


@pytest.mark.parametrize("max_programs, expected", [(1, 1), (2, 2)])
def test_rule_2_count_of_programs(tmp_path, max_programs, expected):
    parts = merge(program("P1", 0.5), program("P2", 0.5, "K2"))
    folder = tiny_bundle(tmp_path, diagnostics=[("T1", "K1", 30), ("T1", "K2", 30)], **parts,
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P2", *ONLINE, 5, "")])
    assert len(_plan(folder, max_programs=max_programs)) == expected


@pytest.mark.parametrize("same_program, expected", [(True, 1), (False, 2)])
def test_rule_2_never_two_sessions_of_oneprogram(tmp_path, same_program, expected):
    parts = merge(program("P1", 0.5), program("P2", 0.5))
    second = "P1" if same_program else "P2"
    folder = tiny_bundle(tmp_path, **parts, program_sessions=[("PS1", "P1", *ONLINE, 5, ""),
                                                              ("PS2", second, "2026-11-01", "2026-11-05", 5, "")])
    assert len(_plan(folder)) == expected


@pytest.mark.parametrize("other_school_rule, expected", [(True, 0), (False, 1)])
def test_rule_3_mentor_from_other_school(tmp_path, other_school_rule, expected):
    folder = tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", 0, 144), ("T9", "S1", "teacher", 0, 144)],
                         mentors=[("M1", "T9", "S1", 3, 0, 0, 10)], mentor_competencies=[("M1", "K1", 0.8)])
    assert len(_plan(folder, mentor_from_other_school=other_school_rule)) == expected


def test_rule_3_never_oneself(tmp_path):
    folder = tiny_bundle(tmp_path, mentors=[("M1", "T1", "S2", 3, 1, 0, 10), ("M2", "", "S2", 3, 1, 0, 10)],
                         mentor_competencies=[("M1", "K1", 1.0), ("M2", "K1", 0.3)])
    assert _plan(folder, mentor_from_other_school=False) == {("T1", "mentor", "M2")}


@pytest.mark.parametrize("site_school, expected", [("S1", 0), ("S2", 1)])
def test_rule_4_no_internship_at_own_school(tmp_path, site_school, expected):
    folder = tiny_bundle(tmp_path, sites=[("SITE1", site_school, "Площадка")], site_competencies=[("SITE1", "K1", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 0)])
    assert len(_plan(folder)) == expected


@pytest.mark.parametrize("max_travel, expected", [(60, 0), (180, 1)])
def test_rule_5_travel(tmp_path, max_travel, expected):
    parts = program("P1", fmt="offline")
    folder = tiny_bundle(tmp_path, **parts, program_sessions=[("PS1", "P1", *ONLINE, 5, "B")])
    assert len(_plan(folder, max_travel_minutes=max_travel)) == expected


@pytest.mark.parametrize("remote, expected", [(0, 0), (1, 1)])
def test_rule_5_travel_to_a_mentor_unless_remote(tmp_path, remote, expected):
    folder = tiny_bundle(tmp_path, mentors=[("M1", "", "S3", 3, remote, 0, 10)],
                         mentor_competencies=[("M1", "K1", 0.8)])
    assert len(_plan(folder, max_travel_minutes=60)) == expected


@pytest.mark.parametrize("second_start, expected", [("2026-10-07", 1), ("2026-10-08", 2)])
def test_rule_6_schedule(tmp_path, second_start, expected):
    folder = tiny_bundle(tmp_path, diagnostics=[("T1", "K1", 30), ("T1", "K2", 30)],
                         sites=[("SITE1", "S2", "Площадка 1"), ("SITE2", "S2", "Площадка 2")],
                         site_competencies=[("SITE1", "K1", 0.7), ("SITE2", "K2", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 0),
                                        ("SS2", "SITE2", second_start, "2026-10-09", 5, 16, 0)])
    assert len(_plan(folder, max_internships=2)) == expected


@pytest.mark.parametrize("max_hours, expected", [(30, 0), (40, 1)])
def test_rule_7_hours(tmp_path, max_hours, expected):
    folder = tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", 50000, max_hours)], **program("P1", hours=36),
                         program_sessions=[("PS1", "P1", *ONLINE, 5, "")])
    assert len(_plan(folder)) == expected


@pytest.mark.parametrize("voucher, expected", [(15000, 1), (25000, 2)])
def test_rule_8_voucher(tmp_path, voucher, expected):
    parts = merge(program("P1", 0.5, price=12000), program("P2", 0.5, "K2", price=12000))
    folder = tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", voucher, 144)],
                         diagnostics=[("T1", "K1", 30), ("T1", "K2", 30)], **parts,
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P2", *ONLINE, 5, "")])
    assert len(_plan(folder)) == expected


@pytest.mark.parametrize("budgets, expected", [
    ([("region", "", 100000), ("municipality", "A", 5000)], 1),  # municipality's budget binds
    ([("region", "", 5000), ("municipality", "A", 100000)], 1),  # region's budget binds
    ([("region", "", 100000)], 2),  # neither binds
])
def test_rule_9_budgets(tmp_path, budgets, expected):
    folder = tiny_bundle(tmp_path, **TWO_TEACHERS, budgets=budgets,
                         sites=[("SITE1", "S2", "Площадка")], site_competencies=[("SITE1", "K1", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 4000)])
    assert len(_plan(folder, rub_per_point=1e9)) == expected


def test_rule_10_pinned_and_forbidden(tmp_path):
    parts = merge(program("P1", 0.9), program("P2", 0.2, price=1000))
    folder = tiny_bundle(tmp_path, **parts, program_sessions=[("PS1", "P1", *ONLINE, 5, ""),
                                                              ("PS2", "P2", "2026-11-01", "2026-11-05", 5, "")])
    assert _plan(folder, max_programs=1) == {("T1", "program", "PS1")}
    pinned = [{"teacher_id": "T1", "kind": "program", "resource_id": "PS2"}]
    assert _plan(folder, max_programs=1, pinned=pinned) == {("T1", "program", "PS2")}
    forbidden = [{"teacher_id": "T1", "kind": "program", "resource_id": "PS1"}]
    assert _plan(folder, max_programs=1, forbidden=forbidden) == {("T1", "program", "PS2")}


def test_pinned_that_breaks_a_rule_is_an_input_error(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1", hours=72), program_sessions=[("PS1", "P1", *ONLINE, 5, "")],
                         teachers=[("T1", "S1", "teacher", 50000, 40)])
    region = load_bundle(folder)
    params = Params(pinned=[{"teacher_id": "T1", "kind": "program", "resource_id": "PS1"}], time_limit_s=2)
    with pytest.raises(InputError) as caught:
        plan_region(region, params)
    assert "PS1" in str(caught.value.problems[0])
    with pytest.raises(InputError):
        plan_region(region, Params(pinned=[{"teacher_id": "NOBODY", "kind": "program", "resource_id": "PS1"}]))


def test_low_results_priority_weights_need(tmp_path):
    folder = tiny_bundle(tmp_path, diagnostics=TWO_TEACHERS["diagnostics"],
                         schools=[("S1", "Школа 1", "A", 0), ("S2", "Школа 2", "A", 0), ("S3", "Школа 3", "B", 1)],
                         teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S3", "teacher", 50000, 144)],
                         mentors=[("M1", "", "S2", 1, 1, 0, 10)], mentor_competencies=[("M1", "K1", 0.8)])
    # T1 lacks more (score 30 vs 40), but T2's school is low_results: 1.5 * 30/70 > 40/70.
    assert _plan(folder) == {("T2", "mentor", "M1")}


@pytest.mark.parametrize("seed", range(12))
def test_engine_optimum_equals_exact_milp_on_random_bundles(tmp_path, seed):
    rng = np.random.default_rng(seed)
    folder = random_bundle(100 + seed, tmp_path / "b", teachers=int(rng.integers(6, 16)),
                           tight=float(rng.uniform(0.2, 0.9)))
    params = {"max_internships": int(rng.integers(1, 3)), "max_programs": int(rng.integers(1, 3)),
              "mentor_from_other_school": bool(rng.integers(0, 2)), "rub_per_point": float(rng.choice([2e4, 1e5]))}
    region = load_bundle(folder)
    files = plan_region(region, Params(time_limit_s=10, gap_limit=0.0, **params))
    assert check_plan(folder, params, files.assignments) == []
    exact, _ = exact_optimum(folder, params)
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9
    assert files.summary["status"] == "OPTIMAL"


def test_plan_files_follow_the_spec(tmp_path):
    folder = random_bundle(5, tmp_path / "b", teachers=20)
    files = plan_region(load_bundle(folder), Params(time_limit_s=5))
    out = write_plan(files, tmp_path / "plan")
    assignments = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)
    assert list(assignments.columns) == ["teacher_id", "kind", "resource_id", "start", "end", "hours", "cost_rub",
                                         "funded_by"]
    assert check_plan(folder, {}, assignments) == []
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("status", "objective", "bound", "gap", "solve_seconds", "need_total", "need_covered", "spending",
                "capacity_use", "profiles"):
        assert key in summary
    assert summary["objective"] == pytest.approx(objective(folder, {}, assignments), abs=1e-9)
    assert summary["gap"] == pytest.approx((summary["bound"] - summary["objective"]) / max(1, abs(summary["bound"])))
    routes = pd.read_csv(out / "routes.csv", dtype=str, keep_default_na=False)
    assert len(routes) == len(assignments) and {"need_total", "need_covered", "addresses"} <= set(routes.columns)
    clusters = pd.read_csv(out / "clusters.csv", dtype=str, keep_default_na=False)
    assert len(clusters) == 20 and {"teacher_id", "cluster"} <= set(clusters.columns)
    workbook = pd.read_excel(out / "plan.xlsx", sheet_name=None)
    assert {"Сводка", "Маршруты", "Назначения", "Муниципалитеты", "Ресурсы", "Профили", "Причины"} <= set(workbook)
    assert len(workbook["Назначения"]) == len(assignments)


def test_keep_bonus_keeps_every_assignment_still_valid(tmp_path):
    from marshrut.engine import AssignmentRef, solve
    from marshrut.engine.plan import assignments_frame

    folder = random_bundle(21, tmp_path / "b", teachers=14)
    region = load_bundle(folder)
    first = assignments_frame(solve(region, Params(time_limit_s=10)))
    refs = [AssignmentRef(teacher_id=t, kind=k, resource_id=r)
            for t, k, r in zip(first["teacher_id"], first["kind"], first["resource_id"])]
    assert refs, "the random region should give a non-empty plan"
    dropped = refs[0]
    params = Params(time_limit_s=10, forbidden=[dropped])
    again = assignments_frame(solve(region, params, keep=refs, keep_bonus=100.0))
    kept = set(zip(again["teacher_id"], again["kind"], again["resource_id"]))
    expected = {(r.teacher_id, r.kind, r.resource_id) for r in refs[1:]}
    assert expected <= kept
    assert (dropped.teacher_id, dropped.kind, dropped.resource_id) not in kept
    assert check_plan(folder, {"forbidden": [dropped.model_dump()]}, again[list(again.columns[:8])]) == []


@pytest.mark.parametrize("seed", range(3))
def test_cp_sat_subsolver_also_reaches_the_exact_optimum(tmp_path, seed):
    folder = random_bundle(300 + seed, tmp_path / "b", teachers=10)
    files = plan_region(load_bundle(folder), Params(time_limit_s=20, subsolver="cp-sat", gap_limit=0.0))
    assert check_plan(folder, {}, files.assignments) == []
    exact, _ = exact_optimum(folder, {})
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9


@pytest.mark.parametrize("shape", [dict(mentors=0, sites=0, programs=0), dict(mentors=0), dict(sites=0),
                                   dict(programs=0), dict(teachers=1), dict(diag_density=0.0),
                                   dict(municipalities=1), dict(competencies=1)],
                         ids=["no resources", "no mentors", "no sites", "no programs", "one teacher",
                              "no diagnostics", "one municipality", "one competency"])
def test_regions_of_unusual_shape_plan_and_write(tmp_path, shape):
    """Regression: a region without any activity used to crash on an empty max()."""
    folder = random_bundle(11, tmp_path / "b", **shape)
    files = plan_region(load_bundle(folder), Params(time_limit_s=5, gap_limit=0.0))
    write_plan(files, tmp_path / "plan")
    assert check_plan(folder, {}, files.assignments) == []
    exact, _ = exact_optimum(folder, {})
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert (tmp_path / "plan" / "explain.csv").exists()


@pytest.mark.parametrize("value", [-0.1, 1.0, 2, "x"])
def test_gap_limit_is_validated(value):
    from marshrut.engine.params import params_from_dict

    with pytest.raises(InputError) as error:
        params_from_dict({"gap_limit": value})
    assert error.value.problems[0].column == "gap_limit"
    assert Params().gap_limit == 1e-4 and params_from_dict({"gap_limit": 0}).gap_limit == 0


def test_the_solve_stops_at_the_gap_limit(tmp_path):
    from marshrut.engine import solve

    region = load_bundle(random_bundle(13, tmp_path / "b", teachers=40, schools=6, mentors=5, sites=3, programs=5))
    loose = solve(region, Params(time_limit_s=20, gap_limit=0.9))
    assert loose.gap <= 0.9
    # proved within its limit after the decomposition: neither the MIP of everything nor the
    # neighbourhood search started
    assert "mip_status" not in loose.statistics and "lns_moves" not in loose.statistics
    tight = solve(region, Params(time_limit_s=20, gap_limit=0))
    assert tight.status == "OPTIMAL" and tight.objective >= loose.objective - 1e-9
