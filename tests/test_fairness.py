"""Who is left out: the `fairness` block of summary.json (SPEC §6 v2) recomputed from the plan's files by
the independent oracle, the left-out sheet, and the floor `min_reached_share` on tiny regions made for
each case (met where it can be, reported with its reasons where it cannot) and against the exact MILP."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from marshrut.engine import InputError, Params, load_bundle, params_from_dict, plan_region, write_plan
from oracle import BundleIndex, Infeasible, check_plan, exact_optimum, full_params, need_table, objective, random_bundle
from tiny import tiny_bundle

DUE, RECENT = "2020-01-01", "2026-01-01"  # the tiny period ends 2027-05-31: due when trained by 2024-05-31


def _recomputed(folder, params: dict, assignments: pd.DataFrame) -> dict:
    """SPEC §6 fairness from assignments.csv and the bundle alone (the oracle's need and due status)."""
    ix = BundleIndex(folder)
    p = full_params(params)
    needs = need_table(ix, p)
    cover: dict = {}
    for r in assignments.to_dict("records"):
        for c, w in ix.acts[(r["kind"], r["resource_id"])].weights:
            cover[(r["teacher_id"], c)] = cover.get((r["teacher_id"], c), 0.0) + w
    reached = set(assignments["teacher_id"])
    need_t: dict = {}
    covered_t: dict = {}
    for (t, c), n in needs.items():
        need_t[t] = need_t.get(t, 0.0) + n
        covered_t[t] = covered_t.get(t, 0.0) + n * min(1.0, cover.get((t, c), 0.0))

    def figures(teachers):
        with_need = [t for t in teachers if t in need_t]
        total = sum(need_t[t] for t in with_need)
        covered = sum(covered_t[t] for t in with_need)
        n_reached = sum(t in reached for t in with_need)
        return {"teachers_with_need": len(with_need), "reached": n_reached,
                "reached_share": n_reached / len(with_need) if with_need else None,
                "need_total": total, "need_covered": covered, "need_covered_share": covered / total if total else None}

    teachers = list(ix.teachers)
    out = {"teachers_with_need": len(need_t), "teachers_left_out": sum(t not in reached for t in need_t),
           "low_results": figures([t for t in teachers if ix.teachers[t]["low"]]),
           "other_schools": figures([t for t in teachers if not ix.teachers[t]["low"]]),
           "due": figures([t for t in teachers if ix.due(t, p)]),
           "not_due": figures([t for t in teachers if not ix.due(t, p)]),
           "municipalities": {}}
    for m in ix.bundle["municipalities"]["municipality_id"]:
        f = figures([t for t in teachers if ix.teachers[t]["muni"] == m])
        if f["teachers_with_need"]:
            out["municipalities"][m] = f
    return out


def _assert_figures(got: dict, want: dict) -> None:
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.parametrize("seed", range(4))
def test_fairness_equals_a_recomputation_from_the_plan_files(tmp_path, seed):
    folder = random_bundle(700 + seed, tmp_path / "b", teachers=25, tight=0.7, due_share=0.3, municipalities=4)
    params = {"training_due_priority": 2.0}
    files = plan_region(load_bundle(folder), Params(time_limit_s=5, **params))
    out = write_plan(files, tmp_path / "plan")
    assignments = pd.read_csv(out / "assignments.csv", dtype=str, keep_default_na=False)
    fairness = json.loads((out / "summary.json").read_text(encoding="utf-8"))["fairness"]
    want = _recomputed(folder, params, assignments)
    assert fairness["teachers_with_need"] == want["teachers_with_need"]
    assert fairness["teachers_left_out"] == want["teachers_left_out"]
    for group in ("low_results", "other_schools", "due", "not_due"):
        _assert_figures(fairness[group], want[group])
    got = {m["municipality_id"]: m for m in fairness["municipalities"]}
    assert set(got) == set(want["municipalities"])
    for m, figures in want["municipalities"].items():
        _assert_figures(got[m], figures)
    shares = [m["reached_share"] for m in fairness["municipalities"]]
    assert shares == sorted(shares), "municipalities are listed from the least reached"
    # The left-out sheet: exactly the teachers with need and no assignment, each with a reason.
    sheet = pd.read_excel(out / "plan.xlsx", sheet_name="Без маршрута", dtype=str, keep_default_na=False)
    left = {t for t in _need_teachers(folder, params) if t not in set(assignments["teacher_id"])}
    assert set(sheet["Педагог (id)"]) == left and len(sheet) == len(left)
    assert (sheet["Причина"] != "").all() and (sheet["Группа причин"] != "").all()
    assert sum(fairness["left_out_reasons"].values()) == len(left)


def _need_teachers(folder, params) -> set[str]:
    return {t for (t, _c) in need_table(BundleIndex(folder), full_params(params))}


# ---- the floor on tiny regions made for each case ---------------------------------------------------------
# One mentor with one place; T1 lacks most, T2 is due (and lacks less, even with the multiplier).

def _one_place(tmp_path, second=("T2", "S1", "teacher", 50000, 144, DUE), **tables):
    tables = {"mentors": [("M1", "", "S2", 1, 1, 0, 10)], "mentor_competencies": [("M1", "K1", 0.8)], **tables}
    return tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", 50000, 144, RECENT), second],
                       diagnostics=[("T1", "K1", 0), ("T2", "K1", 50)], **tables)


def _plan(folder, params: dict):
    files = plan_region(load_bundle(folder), Params(time_limit_s=10, **params))
    assert check_plan(folder, params, files.assignments) == []
    assert files.summary["objective"] == pytest.approx(objective(folder, params, files.assignments), abs=1e-9)
    return files


def test_floor_moves_the_place_to_the_due_teacher_and_reports_its_price(tmp_path):
    folder = _one_place(tmp_path)
    without = _plan(folder, {})
    assert set(without.assignments["teacher_id"]) == {"T1"}
    assert without.summary["fairness"]["due"]["reached_share"] == 0.0
    floored = {"min_reached_share": {"due": 1.0}}
    files = _plan(folder, floored)
    assert set(files.assignments["teacher_id"]) == {"T2"}
    exact, _ = exact_optimum(folder, floored)
    free, _ = exact_optimum(folder, {})
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-9)
    floor = files.summary["fairness"]["floor"]
    assert floor["groups"]["due"] | {"left_out_reasons": None} == {
        "share": 1.0, "teachers_with_need": 1, "target": 1, "reached": 1, "reached_without_floor": 0,
        "met": True, "shortfall": 0, "without_any_option": 0, "left_out_reasons": None}
    assert floor["price"] == pytest.approx(free - exact, abs=1e-9) and floor["price"] > 0
    assert floor["price_at_most"] >= floor["price"] - 1e-9
    assert files.summary["status"] == "OPTIMAL" and files.summary["bound"] >= exact - 1e-9
    assert files.summary["fairness"]["due"]["reached_share"] == 1.0


def test_floor_already_met_costs_nothing(tmp_path):
    folder = _one_place(tmp_path, second=("T2", "S1", "teacher", 50000, 144, RECENT))
    files = _plan(folder, {"min_reached_share": {"due": 0.9, "low_results": 0.5}})
    floor = files.summary["fairness"]["floor"]
    assert floor["price"] == 0 and floor["method"] == "met by the plan without the floor"
    assert floor["groups"]["due"]["teachers_with_need"] == 0 and floor["groups"]["due"]["met"]
    assert floor["groups"]["low_results"]["target"] == 0
    assert set(files.assignments["teacher_id"]) == {"T1"}


def test_floor_for_low_results_schools(tmp_path):
    folder = _one_place(tmp_path, second=("T2", "S3", "teacher", 50000, 144, RECENT),
                        schools=[("S1", "Школа 1", "A", 0), ("S2", "Школа 2", "A", 0), ("S3", "Школа 3", "B", 1)])
    assert set(_plan(folder, {}).assignments["teacher_id"]) == {"T1"}
    files = _plan(folder, {"min_reached_share": {"low_results": 0.5}})
    assert set(files.assignments["teacher_id"]) == {"T2"}
    assert files.summary["fairness"]["floor"]["groups"]["low_results"]["met"]
    assert files.summary["objective"] == pytest.approx(
        exact_optimum(folder, {"min_reached_share": {"low_results": 0.5}})[0], abs=1e-9)


def test_floor_that_cannot_be_met_is_reported_with_reasons_and_met_as_far_as_it_can(tmp_path):
    """Three due teachers, one mentor place: T3's deficit nothing addresses (no option), T2 and T4 want
    the one place (taken). The floor of 100% cannot be met; one of them is reached, never failing."""
    folder = tiny_bundle(
        tmp_path,
        teachers=[("T1", "S1", "teacher", 50000, 144, RECENT), ("T2", "S1", "teacher", 50000, 144, DUE),
                  ("T3", "S1", "teacher", 50000, 144, DUE), ("T4", "S1", "teacher", 50000, 144, DUE)],
        diagnostics=[("T1", "K1", 0), ("T2", "K1", 60), ("T3", "K2", 10), ("T4", "K1", 65)],
        mentors=[("M1", "", "S2", 1, 1, 0, 10)], mentor_competencies=[("M1", "K1", 0.8)])
    params = {"min_reached_share": {"due": 1.0}}
    with pytest.raises(Infeasible):
        exact_optimum(folder, params)
    files = _plan(folder, params)
    group = files.summary["fairness"]["floor"]["groups"]["due"]
    assert group["target"] == 3 and group["reached"] == 1 and group["shortfall"] == 2 and not group["met"]
    assert group["without_any_option"] == 1
    assert group["left_out_reasons"] == {"no_option": 1, "taken": 1}
    assert set(files.assignments["teacher_id"]) == {"T2"}  # a due teacher, the one who gains most
    # as far as it can: the same as the exact optimum with the floor that can be met (1 of 3)
    assert exact_optimum(folder, {"min_reached_share": {"due": 0.33}})[0] == pytest.approx(
        files.summary["objective"], abs=1e-9)
    left = files.left_out.set_index("teacher_id")
    assert left.loc["T3", "reason_group"] == "no_option" and left.loc["T4", "reason_group"] == "taken"


def test_floor_blocked_by_money_says_money(tmp_path):
    folder = _one_place(tmp_path, mentors=[("M1", "", "S2", 2, 1, 30000, 10)],
                        budgets=[("region", "", 30000)])
    files = _plan(folder, {"min_reached_share": {"due": 1.0}, "rub_per_point": 1e9})
    assert set(files.assignments["teacher_id"]) == {"T2"}
    folder = _one_place(tmp_path / "poorer", second=("T2", "S3", "teacher", 50000, 144, DUE),
                        mentors=[("M1", "", "S2", 2, 1, 30000, 10)],
                        budgets=[("region", "", 60000), ("municipality", "B", 10000)])
    files = _plan(folder, {"min_reached_share": {"due": 1.0}, "rub_per_point": 1e9})
    group = files.summary["fairness"]["floor"]["groups"]["due"]
    assert not group["met"] and group["left_out_reasons"] == {"money": 1}


@pytest.mark.parametrize("seed", range(8))
def test_floored_optimum_equals_the_exact_milp_with_the_floor(tmp_path, seed):
    rng = np.random.default_rng(900 + seed)
    folder = random_bundle(900 + seed, tmp_path / "b", teachers=int(rng.integers(8, 16)),
                           tight=float(rng.uniform(0.3, 0.8)), due_share=0.35)
    params = {"min_reached_share": {"due": float(rng.choice([0.5, 0.75, 1.0])),
                                    "low_results": float(rng.choice([0.0, 0.5, 0.8]))}}
    files = _plan(folder, params)
    floor = files.summary["fairness"]["floor"]
    try:
        exact, _ = exact_optimum(folder, params)
    except Infeasible:  # the floor cannot be met: the plan says so, and reaches as many as it can
        assert not all(g["met"] for g in floor["groups"].values())
        return
    assert all(g["met"] for g in floor["groups"].values())
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9
    free, _ = exact_optimum(folder, {})
    assert floor["price"] == pytest.approx(free - exact, abs=1e-6)


def test_floor_parameter_is_checked():
    with pytest.raises(InputError):
        params_from_dict({"min_reached_share": {"due": 1.5}})
    with pytest.raises(InputError):
        params_from_dict({"min_reached_share": {"rural": 0.5}})
    assert Params().min_reached_share.active() == {}
    assert params_from_dict({"min_reached_share": {"due": 0.9}}).min_reached_share.active() == {"due": 0.9}
    assert math.isclose(Params().training_due_priority, 1.5) and Params().training_due_years == 3


@pytest.mark.parametrize("seed", range(10))  # seeds 3, 7, 8, 9: the floor binds and can be met
def test_large_region_path_meets_a_floor_that_can_be_met(tmp_path, monkeypatch, seed):
    """The path for regions past the exact MIP's size (displacement, then neighbourhood MIPs), forced on
    small regions: wherever the exact MILP says the floor can be met, it is met, by a plan within the rules."""
    from marshrut.engine.solver import floor as floor_module

    monkeypatch.setattr(floor_module, "FULL_MODEL_OPTIONS", 0)
    monkeypatch.setattr(floor_module, "NEIGHBOURHOOD_OPTIONS", 40)  # several small neighbourhoods
    rng = np.random.default_rng(960 + seed)
    folder = random_bundle(960 + seed, tmp_path / "b", teachers=int(rng.integers(12, 20)), tight=0.4,
                           due_share=0.5)
    params = {"min_reached_share": {"due": float(rng.choice([0.6, 0.7, 0.8]))}}
    files = _plan(folder, params)
    floor = files.summary["fairness"]["floor"]
    try:
        exact, _ = exact_optimum(folder, params)
    except Infeasible:
        assert not floor["groups"]["due"]["met"]
        return
    assert floor["groups"]["due"]["met"], floor
    assert floor["method"] in ("met by the plan without the floor",
                               "displacement and neighbourhood MIPs with the floor")
    assert files.summary["objective"] <= exact + 1e-9
    assert files.summary["bound"] >= exact - 1e-9
