"""Re-planning: each kind of change in a tiny region, the keep bonus holding an assignment in place,
every re-plan valid for the independent checker on the changed bundle, the CLI and the files."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from marshrut.engine import InputError, Params, load_bundle, solve, write_plan
from marshrut.engine.changes import Changes, NewTeacher, apply_changes, changes_from_dict
from marshrut.engine.params import AssignmentRef
from marshrut.engine.pipeline import plan_region
from marshrut.engine.plan import ASSIGNMENT_COLUMNS, assignments_frame
from marshrut.engine.replan import plan_objective, replan, result_refs
from marshrut.whatif import register
from oracle import check_plan, exact_optimum, random_bundle
from tiny import tiny_bundle

ONLINE = ("2026-10-01", "2026-10-20")


def ref(teacher, kind, resource):
    return AssignmentRef(teacher_id=teacher, kind=kind, resource_id=resource)


def _changes(report) -> dict:
    return {"dropped": report["dropped_by_reason"], "added": report["added_by_reason"]}


def test_mentor_ill_the_teacher_gets_the_next_mentor(tmp_path):
    folder = tiny_bundle(tmp_path, mentors=[("M1", "", "S2", 1, 1, 0, 10), ("M2", "", "S3", 1, 1, 0, 10)],
                         mentor_competencies=[("M1", "K1", 0.8), ("M2", "K1", 0.6)])
    region = load_bundle(folder)
    done = replan(region, [ref("T1", "mentor", "M1")], Changes(remove_mentors=["M1"]), Params(time_limit_s=5))
    assert {(r.kind, r.resource_id) for r in done.refs()} == {("mentor", "M2")}
    assert _changes(done.report) == {"dropped": {"mentor_unavailable": 1}, "added": {"replaces_lost": 1}}
    assert done.report["changed"] == 2 and done.report["forced"] == 1 and done.report["teachers_changed"] == 1


def _two_programs(tmp_path):
    parts = dict(programs=[("PA", "R-A", "АИРО", "A", "online", 36, 10000), ("PB", "R-B", "АИРО", "B", "online", 36, 10000)],
                 program_competencies=[("PA", "K1", 0.5), ("PB", "K1", 0.55)])
    return tiny_bundle(tmp_path, **parts, program_sessions=[("PSA", "PA", *ONLINE, 5, ""), ("PSB", "PB", *ONLINE, 5, "")])


@pytest.mark.parametrize("keep_bonus, expected", [(0.1, "PSA"), (0.0, "PSB")])
def test_keep_bonus_holds_an_assignment_unless_moving_gains_more(tmp_path, keep_bonus, expected):
    """PSB adds 0.05 x need 0.5 = 0.025 more than PSA: less than a bonus of 0.1, more than 0."""
    region = load_bundle(_two_programs(tmp_path))
    done = replan(region, [ref("T1", "program", "PSA")], Changes(note="nothing happened"),
                  Params(time_limit_s=5, max_programs=1),
                  keep_bonus=keep_bonus)
    assert {r.resource_id for r in done.refs()} == {expected}
    if expected == "PSA":
        assert done.report["changed"] == 0 and done.report["kept"] == 1
    else:
        assert _changes(done.report) == {"dropped": {"moved": 1}, "added": {"moved": 1}}


def test_session_cancelled_and_teacher_left(tmp_path):
    folder = tiny_bundle(
        tmp_path, teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144)],
        diagnostics=[("T1", "K1", 35), ("T2", "K1", 10)],
        programs=[("P1", "R1", "АИРО", "P1", "online", 36, 10000)], program_competencies=[("P1", "K1", 0.9)],
        program_sessions=[("PS1", "P1", *ONLINE, 1, ""), ("PS2", "P1", "2026-11-01", "2026-11-20", 1, "")])
    region = load_bundle(folder)
    previous = [ref("T1", "program", "PS1"), ref("T2", "program", "PS2")]
    done = replan(region, previous, Changes(cancel_sessions=["PS1"], remove_teachers=["T2"]), Params(time_limit_s=5))
    assert {(r.teacher_id, r.resource_id) for r in done.refs()} == {("T1", "PS2")}
    assert _changes(done.report) == {"dropped": {"session_cancelled": 1, "teacher_left": 1},
                                     "added": {"replaces_lost": 1}}


def test_budget_cut_drops_the_smaller_need_first(tmp_path):
    folder = tiny_bundle(
        tmp_path, teachers=[("T1", "S1", "teacher", 50000, 144), ("T2", "S1", "teacher", 50000, 144)],
        diagnostics=[("T1", "K1", 35), ("T2", "K1", 10)],
        budgets=[("region", "", 100000), ("municipality", "A", 8000)], sites=[("SITE1", "S2", "Площадка")],
        site_competencies=[("SITE1", "K1", 0.7)], site_sessions=[("SS1", "SITE1", "2026-10-05", "2026-10-07", 5, 16, 4000)])
    region = load_bundle(folder)
    previous = [ref("T1", "internship", "SS1"), ref("T2", "internship", "SS1")]
    done = replan(region, previous, Changes(budget_scale=0.5), Params(time_limit_s=5, rub_per_point=1e9))
    assert {r.teacher_id for r in done.refs()} == {"T2"}
    assert _changes(done.report) == {"dropped": {"budget_cut": 1}, "added": {}}
    assert done.region.budgets.municipality_rub[done.region.municipalities.index["A"]] == 4000


def test_new_teacher_takes_a_free_seat(tmp_path):
    folder = tiny_bundle(tmp_path, programs=[("P1", "R1", "АИРО", "P1", "online", 36, 10000)],
                         program_competencies=[("P1", "K1", 0.9)], program_sessions=[("PS1", "P1", *ONLINE, 2, "")])
    region = load_bundle(folder)
    newcomer = NewTeacher(teacher_id="N1", school_id="S3", voucher_rub=20000, max_hours=72, scores={"K1": 20})
    done = replan(region, [ref("T1", "program", "PS1")], Changes(add_teachers=[newcomer]), Params(time_limit_s=5))
    assert {(r.teacher_id, r.resource_id) for r in done.refs()} == {("T1", "PS1"), ("N1", "PS1")}
    assert _changes(done.report) == {"dropped": {}, "added": {"new_teacher": 1}}


def test_bad_changes_are_input_errors_naming_every_problem(tmp_path):
    region = load_bundle(tiny_bundle(tmp_path))
    changes = changes_from_dict({"remove_mentors": ["NOPE"], "cancel_sessions": ["NONE"],
                                 "add_teachers": [{"teacher_id": "T1", "school_id": "S9", "scores": {"K7": 120}}]})
    with pytest.raises(InputError) as caught:
        apply_changes(region, changes)
    values = {p.value for p in caught.value.problems}
    assert {"NOPE", "NONE", "T1", "S9", "K7"} <= values
    with pytest.raises(InputError):
        changes_from_dict({"remove_mentor": ["typo"]})


def _changed_folder(folder, out, changes: Changes):
    """The same changes applied to the bundle's CSV files, for the independent checker."""
    shutil.copytree(folder, out)
    read = lambda name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)  # noqa: E731
    write = lambda name, frame: frame.to_csv(out / f"{name}.csv", index=False)  # noqa: E731
    for name, key, drop in (("mentors", "mentor_id", changes.remove_mentors),
                            ("mentor_competencies", "mentor_id", changes.remove_mentors),
                            ("site_sessions", "session_id", changes.cancel_sessions),
                            ("program_sessions", "session_id", changes.cancel_sessions)):
        frame = read(name)
        write(name, frame[~frame[key].isin(drop)])
    budgets = read("budgets")
    budgets["amount_rub"] = [str(math.floor(float(v) * (changes.budget_scale or 1) + 1e-9))
                             for v in budgets["amount_rub"]]
    write("budgets", budgets)
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_replan_is_valid_on_the_changed_bundle_and_optimal_without_bonus(tmp_path, seed):
    folder = random_bundle(seed, tmp_path / "b", teachers=14, tight=0.6)
    region = load_bundle(folder)
    params = Params(time_limit_s=10, gap_limit=0.0)  # the exact optimum is compared
    before = solve(region, params)
    previous = result_refs(before)
    acts = before.activities
    used = pd.Series([acts.ids[a] for a in before.plan.activity]).value_counts()
    mentors = [i for i in used.index if i in region.mentors.index][:1]
    sessions = [i for i in used.index if i in region.site_sessions.index or i in region.program_sessions.index][:1]
    changes = Changes(remove_mentors=mentors, cancel_sessions=sessions, budget_scale=0.9)
    changed = _changed_folder(folder, tmp_path / "changed", changes)
    for bonus in (0.0, 0.1):
        done = replan(region, previous, changes, params, keep_bonus=bonus)
        rows = assignments_frame(done.result)[ASSIGNMENT_COLUMNS]
        assert check_plan(changed, {}, rows) == []
        assert done.report["kept"] + done.report["added"] == len(rows)
        assert done.report["kept"] + done.report["dropped"] == len(previous)
        if bonus == 0.0:
            exact, _ = exact_optimum(changed, {})
            assert done.result.objective == pytest.approx(exact, abs=1e-6)
        assert plan_objective(done.region, params, done.refs()) == pytest.approx(done.result.objective, abs=1e-9)


def test_cli_replan_writes_the_plan_and_the_report(tmp_path):
    folder = random_bundle(21, tmp_path / "b", teachers=16)
    region = load_bundle(folder)
    params = Params(time_limit_s=5)
    plan_dir = write_plan(plan_region(region, params), tmp_path / "plan")
    assignments = pd.read_csv(plan_dir / "assignments.csv", dtype=str)
    session = next(r for k, r in zip(assignments["kind"], assignments["resource_id"]) if k != "mentor")
    (tmp_path / "changes.json").write_text(json.dumps({"cancel_sessions": [session], "budget_scale": 0.9}))
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["replan", str(plan_dir), "--bundle", str(folder), "--changes",
                                 str(tmp_path / "changes.json"), "--out", str(tmp_path / "new"), "--time-limit", "5"])
    assert result.exit_code == 0, result.output
    for name in ("assignments.csv", "routes.csv", "summary.json", "explain.csv", "changes.csv", "replan.json"):
        assert (tmp_path / "new" / name).exists(), name
    report = json.loads((tmp_path / "new" / "replan.json").read_text(encoding="utf-8"))
    assert report["dropped_by_reason"].get("session_cancelled", 0) == int((assignments["resource_id"] == session).sum())
    summary = json.loads((tmp_path / "new" / "summary.json").read_text(encoding="utf-8"))
    assert summary["replan"]["changed"] == report["changed"]
    new = pd.read_csv(tmp_path / "new" / "assignments.csv", dtype=str, keep_default_na=False)
    changed = _changed_folder(folder, tmp_path / "changed", Changes(cancel_sessions=[session], budget_scale=0.9))
    assert check_plan(changed, {}, new) == []
    # Unknown ids: exit 2 with the problems listed, nothing written.
    (tmp_path / "bad.json").write_text(json.dumps({"remove_mentors": ["NOPE"]}))
    result = runner.invoke(app, ["replan", str(plan_dir), "--bundle", str(folder), "--changes",
                                 str(tmp_path / "bad.json"), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and not (tmp_path / "bad").exists()
    # Without --bundle the plan folder must name it.
    result = runner.invoke(app, ["replan", str(plan_dir), "--changes", str(tmp_path / "changes.json")])
    assert result.exit_code == 2
