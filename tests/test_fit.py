"""Fit one teacher: only what the plan leaves free, every route valid for the independent checker,
the best route as good as brute force over every route, ranked, and the CLI."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from marshrut.engine import InputError, Params, load_bundle, solve, write_plan
from marshrut.engine.changes import NewTeacher, with_teachers
from marshrut.engine.explain import plan_indices
from marshrut.engine.fit import fit_teacher
from marshrut.engine.needs import need_matrix
from marshrut.engine.options import build_activities
from marshrut.engine.pipeline import plan_region
from marshrut.engine.plan import ASSIGNMENT_COLUMNS, assignments_frame
from marshrut.engine.rules import PlanArrays, violations
from marshrut.whatif import register
from oracle import check_plan, random_bundle
from tiny import tiny_bundle

ONLINE = ("2026-10-01", "2026-10-20")


def test_fit_uses_only_free_seats_and_ranks_routes(tmp_path):
    folder = tiny_bundle(
        tmp_path, programs=[("P1", "R1", "АИРО", "P1", "online", 36, 10000), ("P2", "R2", "АИРО", "P2", "online", 36, 5000)],
        program_competencies=[("P1", "K1", 0.9), ("P2", "K1", 0.5)],
        program_sessions=[("PS1", "P1", *ONLINE, 1, ""), ("PS2", "P2", *ONLINE, 3, "")])
    region = load_bundle(folder)
    params = Params(max_programs=1)
    acts = build_activities(region)
    newcomer = NewTeacher(teacher_id="N1", school_id="S2", voucher_rub=20000, max_hours=72, scores={"K1": 14})
    # PS1 is free: the best route takes it; once T1 holds its only seat, PS2 is the best left.
    free = fit_teacher(region, params, np.zeros(0, int), np.zeros(0, int), newcomer)
    assert [s.resource_id for s in free.routes[0].steps] == ["PS1"]
    assert [[s.resource_id for s in r.steps] for r in free.routes] == [["PS1"], ["PS2"]]
    t, a = plan_indices(region, acts, [_ref("T1", "program", "PS1")])
    taken = fit_teacher(region, params, t, a, newcomer)
    assert [[s.resource_id for s in r.steps] for r in taken.routes] == [["PS2"]]
    route = taken.routes[0]
    need = (70 - 14) / 70
    assert route.gain == pytest.approx(need * 0.5) and route.cost_rub == 5000
    assert route.value == pytest.approx(need * 0.5 - 5000 / params.rub_per_point)
    assert route.steps[0].funded_by == "voucher" and route.steps[0].addresses == ["K1"]


def _ref(teacher, kind, resource):
    from marshrut.engine.params import AssignmentRef

    return AssignmentRef(teacher_id=teacher, kind=kind, resource_id=resource)


def _with_teacher_folder(folder, out, teacher: NewTeacher):
    shutil.copytree(folder, out)
    teachers = pd.read_csv(out / "teachers.csv", dtype=str, keep_default_na=False)
    teachers.loc[len(teachers)] = [teacher.teacher_id, teacher.school_id, teacher.role, str(teacher.voucher_rub),
                                   str(teacher.max_hours)]
    teachers.to_csv(out / "teachers.csv", index=False)
    diagnostics = pd.read_csv(out / "diagnostics.csv", dtype=str, keep_default_na=False)
    for c, score in teacher.scores.items():
        diagnostics.loc[len(diagnostics)] = [teacher.teacher_id, c, str(score)]
    diagnostics.to_csv(out / "diagnostics.csv", index=False)
    return out


@pytest.mark.parametrize("seed", [31, 32, 33, 34])
def test_fit_routes_are_valid_and_the_best_is_the_brute_force_best(tmp_path, seed):
    folder = random_bundle(seed, tmp_path / "b", teachers=8, tight=0.1, mentors=5, programs=5)
    region = load_bundle(folder)
    params = Params(time_limit_s=5)
    result = solve(region, params)
    plan = result.plan
    rng = np.random.default_rng(seed)
    newcomer = NewTeacher(teacher_id="NEW", school_id=region.schools.ids[int(rng.integers(len(region.schools)))],
                          voucher_rub=int(rng.choice([0, 15000, 40000])), max_hours=float(rng.choice([40, 100])),
                          scores={c: float(rng.integers(5, 90)) for c in region.competencies.ids})
    fit = fit_teacher(region, params, plan.teacher, plan.activity, newcomer, top=5)
    # Independent check of every route on the bundle with the newcomer added.
    grown_folder = _with_teacher_folder(folder, tmp_path / "grown", newcomer)
    base = assignments_frame(result)[ASSIGNMENT_COLUMNS]
    values = [r.value for r in fit.routes]
    assert values == sorted(values, reverse=True)
    for route in fit.routes:
        rows = pd.DataFrame([{"teacher_id": "NEW", **{k: getattr(s, k) for k in ASSIGNMENT_COLUMNS[1:]}}
                             for s in route.steps])
        assert check_plan(grown_folder, {}, pd.concat([base, rows], ignore_index=True)) == []
    # Brute force over every route of at most one of each kind (two programs) with engine rules.
    grown = with_teachers(region, [newcomer])
    acts = build_activities(grown)
    t_new = len(region.teachers)
    need = need_matrix(grown, params)[t_new]

    def feasible(route) -> bool:
        teacher = np.r_[plan.teacher, np.full(len(route), t_new)]
        activity = np.r_[plan.activity, np.asarray(route, dtype=np.int64)]
        return not violations(grown, params, acts, PlanArrays(teacher, activity))

    def value(route) -> float:
        cover = np.minimum(1.0, acts.weights[list(route)].sum(axis=0)) if route else np.zeros(len(need))
        return float(need @ cover - acts.cost_rub[list(route)].sum() / params.rub_per_point)

    singles = [a for a in range(len(acts)) if feasible([a]) and value([a]) > 0]
    by_kind = [[a for a in singles if acts.kind[a] == k] for k in range(3)]
    best = 0.0
    for mentor in [None] + by_kind[0]:
        for internship in [None] + by_kind[1]:
            for n in range(3):
                for programs in itertools.combinations(by_kind[2], n):
                    route = [x for x in (mentor, internship, *programs) if x is not None]
                    if route and value(route) > best + 1e-12 and feasible(route):
                        best = value(route)
    top = fit.routes[0].value if fit.routes else 0.0
    assert top == pytest.approx(best, abs=1e-9)


def test_fit_input_errors(tmp_path):
    region = load_bundle(tiny_bundle(tmp_path))
    with pytest.raises(InputError) as caught:
        fit_teacher(region, Params(), np.zeros(0, int), np.zeros(0, int),
                    NewTeacher(teacher_id="T1", school_id="S9", scores={"K9": 10, "K1": 300}))
    assert {p.value for p in caught.value.problems} >= {"T1", "S9", "K9", "300.0"}


def test_cli_fit(tmp_path):
    folder = random_bundle(41, tmp_path / "b", teachers=10)
    region = load_bundle(folder)
    plan_dir = write_plan(plan_region(region, Params(time_limit_s=3)), tmp_path / "plan")
    teacher = {"teacher_id": "NEW", "school_id": region.schools.ids[0], "voucher_rub": 30000, "max_hours": 144,
               "scores": {c: 20 for c in region.competencies.ids}}
    (tmp_path / "teacher.json").write_text(json.dumps(teacher))
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    args = ["fit", str(plan_dir), "--bundle", str(folder), "--teacher", str(tmp_path / "teacher.json"), "--top", "3"]
    result = runner.invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["teacher_id"] == "NEW" and len(answer["routes"]) <= 3
    assert all(r["value"] > 0 for r in answer["routes"])
    assert runner.invoke(app, args).exit_code == 0
    (tmp_path / "bad.json").write_text(json.dumps({**teacher, "school_id": "NOPE"}))
    assert runner.invoke(app, args[:4] + ["--teacher", str(tmp_path / "bad.json")]).exit_code == 2
