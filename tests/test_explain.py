"""Explanations: in each tiny region exactly one thing keeps a need uncovered, and the explanation
names it (and no candidate is blocked by anything else); assignment rows add up to the need covered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marshrut.engine import Params, load_bundle, solve
from marshrut.engine.explain import REASON_GROUP, explain_assignments, explain_plan, explain_result, write_explanation
from oracle import random_bundle
from tiny import merge, program, tiny_bundle

ONLINE = ("2026-10-01", "2026-10-20")
TWO = dict(teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144)],
           diagnostics=[("T1", "K1", 35), ("T2", "K1", 10)])  # T2 needs more: T2 wins any contest


def _explain(folder, **params):
    params.setdefault("time_limit_s", 10)
    params.setdefault("gap_limit", 0.0)
    result = solve(load_bundle(folder), Params(**params))
    assert result.status == "OPTIMAL"
    return result, explain_result(result)


def _why(explanation, teacher="T1", competency="K1") -> pd.Series:
    rows = explanation.uncovered
    row = rows[(rows["teacher_id"] == teacher) & (rows["competency_id"] == competency)]
    assert len(row) == 1, f"{teacher}/{competency} is not uncovered"
    return row.iloc[0]


def _only(row, blocker: str | None) -> None:
    """`blockers` lists each rule with how many options it blocks: only the expected one may appear."""
    names = {part.split(":")[0] for part in str(row["blockers"]).split(";") if part}
    assert names == ({blocker} if blocker else set()), row["blockers"]


def test_no_option_nothing_addresses_it(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1", competency="K2"),
                         program_sessions=[("PS1", "P1", *ONLINE, 5, "")])
    _, explanation = _explain(folder)
    row = _why(explanation)
    assert row["reason"] == "no_resource" and row["reason_group"] == "no_option"
    assert row["resource_id"] == ""


@pytest.mark.parametrize("max_travel, reason", [(60, "out_of_travel"), (180, None)])
def test_no_option_within_travel(tmp_path, max_travel, reason):
    folder = tiny_bundle(tmp_path, **program("P1", fmt="offline"),
                         program_sessions=[("PS1", "P1", *ONLINE, 5, "B")])
    result, explanation = _explain(folder, max_travel_minutes=max_travel)
    if reason is None:  # the twin: within travel, the need is covered as far as the program goes
        assert len(result.plan.teacher) == 1
        assert _why(explanation)["reason"] == "all_used"
        return
    row = _why(explanation)
    assert row["reason"] == "out_of_travel" and row["resource_id"] == "PS1"
    assert "100 мин" in row["detail"] and "60" in row["detail"]


def test_no_option_only_at_own_school(tmp_path):
    folder = tiny_bundle(tmp_path, sites=[("SITE1", "S1", "Своя площадка")], site_competencies=[("SITE1", "K1", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 0)])
    row = _why(_explain(folder)[1])
    assert row["reason"] == "not_allowed" and "своя школа" in row["detail"]


def test_taken_mentor_capacity_names_who(tmp_path):
    folder = tiny_bundle(tmp_path, **TWO, mentors=[("M1", "", "S2", 1, 1, 0, 10)],
                         mentor_competencies=[("M1", "K1", 0.8)])
    row = _why(_explain(folder)[1])
    assert row["reason"] == "capacity_full" and row["reason_group"] == "taken"
    assert row["resource_id"] == "M1" and "T2" in row["detail"] and "1 из 1" in row["detail"]
    _only(row, "capacity_full")


def test_taken_session_seats(tmp_path):
    folder = tiny_bundle(tmp_path, **TWO, **program("P1"), program_sessions=[("PS1", "P1", *ONLINE, 1, "")])
    row = _why(_explain(folder)[1])
    assert row["reason"] == "capacity_full" and row["resource_id"] == "PS1" and "T2" in row["detail"]
    _only(row, "capacity_full")


@pytest.mark.parametrize("budgets, reason, where", [
    ([("region", "", 100000), ("municipality", "A", 5000)], "municipal_budget", "A"),
    ([("region", "", 5000), ("municipality", "A", 100000)], "region_budget", "региона"),
])
def test_money_budgets(tmp_path, budgets, reason, where):
    folder = tiny_bundle(tmp_path, **TWO, budgets=budgets, sites=[("SITE1", "S2", "Площадка")],
                         site_competencies=[("SITE1", "K1", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 4000)])
    row = _why(_explain(folder, rub_per_point=1e9)[1])
    assert row["reason"] == reason and row["reason_group"] == "money"
    assert where in row["detail"] and "1 000 ₽" in row["detail"]
    _only(row, reason)


def test_money_voucher(tmp_path):
    parts = merge(program("P1", 0.5, price=12000), program("P2", 0.5, "K2", price=12000))
    folder = tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", 15000, 144)],
                         diagnostics=[("T1", "K1", 30), ("T1", "K2", 35)], **parts,
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P2", *ONLINE, 5, "")])
    explanation = _explain(folder)[1]
    row = _why(explanation, competency="K2")  # K1 needs more: its program is taken
    assert row["reason"] == "voucher" and row["resource_id"] == "PS2" and "3 000 ₽" in row["detail"]
    _only(row, "voucher")
    assert _why(explanation, competency="K1")["reason"] == "all_used"  # cover 0.5: nothing else addresses K1


def test_teacher_hours_full(tmp_path):
    parts = merge(program("P1", 0.5), program("P2", 0.5, "K2"))
    folder = tiny_bundle(tmp_path, teachers=[("T1", "S1", "teacher", 50000, 40)],
                         diagnostics=[("T1", "K1", 30), ("T1", "K2", 35)], **parts,
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P2", *ONLINE, 5, "")])
    row = _why(_explain(folder)[1], competency="K2")
    assert row["reason"] == "hours_full" and row["reason_group"] == "teacher_full" and "осталось 4" in row["detail"]
    _only(row, "hours_full")


def test_teacher_dates_full(tmp_path):
    folder = tiny_bundle(tmp_path, diagnostics=[("T1", "K1", 30), ("T1", "K2", 35)],
                         sites=[("SITE1", "S2", "Площадка 1"), ("SITE2", "S2", "Площадка 2")],
                         site_competencies=[("SITE1", "K1", 0.7), ("SITE2", "K2", 0.7)],
                         site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 0),
                                        ("SS2", "SITE2", "2026-10-07", "2026-10-09", 5, 16, 0)])
    row = _why(_explain(folder, max_internships=2)[1], competency="K2")
    assert row["reason"] == "dates_full" and "SS1" in row["detail"]
    _only(row, "dates_full")


def test_teacher_route_full_for_the_kind(tmp_path):
    parts = merge(program("P1", 0.5), program("P2", 0.5, "K2"))
    folder = tiny_bundle(tmp_path, diagnostics=[("T1", "K1", 30), ("T1", "K2", 35)], **parts,
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P2", *ONLINE, 5, "")])
    row = _why(_explain(folder, max_programs=1)[1], competency="K2")
    assert row["reason"] == "kind_full"
    _only(row, "kind_full")


def test_teacher_sameprogram(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1", 0.5),
                         program_sessions=[("PS1", "P1", *ONLINE, 5, ""), ("PS2", "P1", "2026-11-01", "2026-11-20",
                                                                             5, "")])
    row = _why(_explain(folder)[1])
    assert row["reason"] == "same_program_or_site"
    _only(row, "same_program_or_site")


def test_cost_exceeds_gain(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1", price=10000), program_sessions=[("PS1", "P1", *ONLINE, 5, "")])
    result, explanation = _explain(folder, rub_per_point=1000)  # 10 points of cost for 0.45 of need
    assert len(result.plan.teacher) == 0
    row = _why(explanation)
    assert row["reason"] == "not_worth_cost" and row["reason_group"] == "cost"
    _only(row, None)


def test_a_plan_that_leaves_room_is_improvable(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1"), program_sessions=[("PS1", "P1", *ONLINE, 5, "")])
    region = load_bundle(folder)
    explanation = explain_plan(region, Params(), np.zeros(0, int), np.zeros(0, int))
    row = _why(explanation)
    assert row["reason"] == "improvable" and row["resource_id"] == "PS1"


def test_forbidden_is_no_option(tmp_path):
    folder = tiny_bundle(tmp_path, **program("P1"), program_sessions=[("PS1", "P1", *ONLINE, 5, "")])
    forbidden = [{"teacher_id": "T1", "kind": "program", "resource_id": "PS1"}]
    row = _why(_explain(folder, forbidden=forbidden)[1])
    assert row["reason"] == "not_allowed" and "forbidden" in row["detail"]


def test_assignment_rows_add_up_and_totals_agree(tmp_path):
    folder = random_bundle(7, tmp_path / "b", teachers=30, tight=0.5)
    region = load_bundle(folder)
    result = solve(region, Params(time_limit_s=5))
    explanation = explain_result(result)
    inst = result.instance
    cover = np.zeros_like(inst.need)
    np.add.at(cover, result.plan.teacher, result.activities.weights[result.plan.activity])
    covered = (inst.need * np.minimum(1, cover)).sum()
    assert explanation.assignments["need_closed"].sum() == pytest.approx(covered, abs=1e-4)
    uncovered = explanation.uncovered
    assert len(uncovered) == int(((inst.need > 0) & (cover < 1 - 1e-9)).sum())
    assert set(uncovered["reason"]) <= set(REASON_GROUP)
    totals = explanation.totals
    for scope in ("region", "municipality", "competency"):
        part = totals[totals["scope"] == scope]
        assert part["needs"].sum() == len(uncovered)
        assert part["need_left"].sum() == pytest.approx(uncovered["need_left"].sum(), abs=1e-4)
    # From the written assignments, the same explanation; the files are written.
    frame = pd.DataFrame({"teacher_id": [region.teachers.ids[t] for t in result.plan.teacher],
                          "kind": [("mentor", "internship", "program")[result.activities.kind[a]]
                                   for a in result.plan.activity],
                          "resource_id": [result.activities.ids[a] for a in result.plan.activity]})
    again = explain_assignments(region, inst.params, frame)
    pd.testing.assert_frame_equal(again.frame(), explanation.frame())
    path = write_explanation(explanation, tmp_path / "plan")
    written = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert len(written) == len(explanation.assignments) + len(uncovered)
    assert (tmp_path / "plan" / "explain_totals.csv").exists()
