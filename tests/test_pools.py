"""Pools (engine.solver.pools): the pooled model has the unpooled optimum, and splitting a pooled plan back
into sessions and mentors always gives a plan that obeys every rule.

Bundles: the oracle's random ones (online programs of two sessions pool), with clones of mentors added at
the same school with the same weights, stipend, hours and format (so mentors pool too), some of the clones
being teachers of that school, so that "never oneself" matters when `mentor_from_other_school` is off.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle import check_plan, exact_optimum, objective, random_bundle

from marshrut.engine import Params, load_bundle, plan_region
from marshrut.engine.plan import ASSIGNMENT_COLUMNS, assignments_frame
from marshrut.engine.rules import violations
from marshrut.engine.solver.greedy import greedy
from marshrut.engine.solver.instance import Instance
from marshrut.engine.solver.solve import Result


def pooled_bundle(seed: int, folder, teachers: int = 12, **kwargs):
    """A random bundle with every mentor cloned once or twice at her school (a clone of a mentor-teacher
    is another teacher of that school when there is one)."""
    rng = np.random.default_rng(seed)
    out = random_bundle(seed, folder, teachers=teachers, **kwargs)
    mentors = pd.read_csv(out / "mentors.csv", dtype=str, keep_default_na=False)
    weights = pd.read_csv(out / "mentor_competencies.csv", dtype=str, keep_default_na=False)
    staff = pd.read_csv(out / "teachers.csv", dtype=str, keep_default_na=False)
    used = set(mentors.teacher_id)
    rows, weight_rows = [], []
    for _, mentor in mentors.iterrows():
        for copy in range(int(rng.integers(1, 3))):
            clone = mentor.copy()
            clone["mentor_id"] = f"{mentor.mentor_id}c{copy}"
            colleagues = [t for t in staff.teacher_id[staff.school_id == mentor.school_id] if t not in used]
            clone["teacher_id"] = colleagues[0] if colleagues and rng.random() < 0.7 else ""
            used.add(clone["teacher_id"])
            rows.append(clone)
            own = weights[weights.mentor_id == mentor.mentor_id].copy()
            own["mentor_id"] = clone["mentor_id"]
            weight_rows.append(own)
    pd.concat([mentors, pd.DataFrame(rows)]).to_csv(out / "mentors.csv", index=False)
    pd.concat([weights, *weight_rows]).to_csv(out / "mentor_competencies.csv", index=False)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_pooled_optimum_equals_the_exact_unpooled_milp(tmp_path, seed):
    folder = pooled_bundle(seed, tmp_path / "b", tight=0.6 + 0.05 * seed)
    params = {"mentor_from_other_school": seed % 2 == 0}
    region = load_bundle(folder)
    inst = Instance.build(region, Params(**params), pool=True)
    assert inst.pools.n_pooled > 0  # the case is the one meant: some activities do pool
    assert len(inst.activities) < len(inst.real_activities)
    files = plan_region(region, Params(time_limit_s=20, gap_limit=0.0, **params))
    assert check_plan(folder, params, files.assignments) == []
    assert files.summary["objective"] == pytest.approx(objective(folder, params, files.assignments), abs=1e-9)
    exact, _ = exact_optimum(folder, params)
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), other_school=st.booleans(), tight=st.floats(0.0, 1.0))
def test_split_back_always_obeys_every_rule(tmp_path_factory, seed, other_school, tight):
    """Any pooled plan that keeps the pools' seats (here: greedy plans in random teacher orders, which
    fill pools to their last seat) splits into a plan the engine's and the oracle's checkers accept."""
    folder = pooled_bundle(seed, tmp_path_factory.mktemp("b"), teachers=16, tight=tight,
                           sessions_per_program=3)
    params = {"mentor_from_other_school": other_school}
    region = load_bundle(folder)
    inst = Instance.build(region, Params(**params), pool=True)
    rng = np.random.default_rng(seed)
    chosen = greedy(inst, order=rng.permutation(len(inst.need)))
    plan = inst.real_plan(chosen)
    assert len(plan.teacher) == int(chosen.sum())  # nobody dropped
    assert violations(region, Params(**params), inst.real_activities, plan) == []
    value = inst.objective(chosen)
    frame = assignments_frame(Result(inst, chosen, "FEASIBLE", value, value, 0.0))[ASSIGNMENT_COLUMNS]
    assert check_plan(folder, params, frame) == []
    # The split keeps each teacher's value: the objective is the pooled plan's.
    assert objective(folder, params, frame) == pytest.approx(inst.objective(chosen), abs=1e-9)


def test_pinned_and_forbidden_activities_stay_alone(tmp_path):
    folder = pooled_bundle(3, tmp_path / "b")
    region = load_bundle(folder)
    inst = Instance.build(region, Params(), pool=True)
    pooled = next(m for m in inst.pools.members if len(m) > 1)
    real = inst.real_activities
    kind = ("mentor", "internship", "program")[real.kind[pooled[0]]]
    ref = {"teacher_id": region.teachers.ids[0], "kind": kind, "resource_id": real.ids[pooled[0]]}
    inst = Instance.build(region, Params(forbidden=[ref]), pool=True)
    assert all(pooled[0] not in m or len(m) == 1 for m in inst.pools.members)
    assert real.ids[pooled[0]] in inst.activities.ids


def test_split_keeps_a_mentor_teacher_off_her_own_member(tmp_path):
    """A full pool whose users include a member's own teacher: the max-flow split places everyone, her on
    another member, and no member over its capacity."""
    folder = pooled_bundle(5, tmp_path / "b", teachers=30)
    region = load_bundle(folder)
    inst = Instance.build(region, Params(mentor_from_other_school=False), pool=True)
    real = inst.real_activities
    tried = 0
    for solver_activity, members in enumerate(inst.pools.members):
        owners = real.mentor_teacher[members]
        if len(members) < 2 or not (owners >= 0).any():
            continue
        owner = int(owners[owners >= 0][0])
        others = [t for t in range(len(region.teachers)) if t != owner]
        users = np.array([owner, *others[:int(real.capacity[members].sum()) - 1]])
        plan = inst.pools.split(users, np.full(len(users), solver_activity))
        assert sorted(plan.teacher.tolist()) == sorted(users.tolist())
        assert set(plan.activity.tolist()) <= set(members.tolist())
        assert (np.bincount(plan.activity, minlength=len(real)) <= real.capacity).all()
        assert not (real.mentor_teacher[plan.activity] == plan.teacher).any()
        tried += 1
    assert tried > 0


@pytest.mark.parametrize("seed", range(3))
def test_worthwhile_options_are_those_of_positive_value_alone_and_pins(tmp_path, seed):
    folder = pooled_bundle(seed, tmp_path / "b", teachers=15)
    region = load_bundle(folder)
    everything = Instance.build(region, Params(rub_per_point=2e4))
    ref = {"teacher_id": region.teachers.ids[int(everything.options.teacher[0])], "kind": "program",
           "resource_id": region.program_sessions.ids[0]}
    for params in (Params(rub_per_point=2e4), Params(rub_per_point=2e4, pinned=[ref])):
        try:
            inst = Instance.build(region, params, worthwhile=True)
        except Exception:  # the pin breaks a rule in this bundle: nothing to compare
            continue
        value = inst.standalone_value(np.arange(inst.n_options))
        assert ((value > 0) | inst.options.pinned).all()
        full = Instance.build(region, params)
        kept = full.standalone_value(np.arange(full.n_options)) > 0
        assert inst.n_options == int((kept | full.options.pinned).sum())


def test_a_start_plan_that_names_pooled_sessions_and_mentors_is_taken_whole(tmp_path):
    # A neighbouring sweep point hands its plan over by the region's session and mentor ids; with pools
    # the solver must find each of them as its pool, or the warm start is silently lost.
    from marshrut.engine.params import KINDS, AssignmentRef
    from marshrut.engine.solver.solve import _start_plan, solve

    region = load_bundle(pooled_bundle(3, tmp_path / "b", teachers=20, tight=0.9))
    params = Params(time_limit_s=10)
    first = solve(region, params)
    assert first.instance.pools.n_pooled > 0
    acts, ids = first.activities, np.asarray(region.teachers.ids, dtype=object)
    refs = [AssignmentRef(teacher_id=ids[t], kind=KINDS[acts.kind[a]], resource_id=acts.ids[a])
            for t, a in zip(first.plan.teacher.tolist(), first.plan.activity.tolist())]
    pooled_members = {str(acts.ids[a]) for m in first.instance.pools.members if len(m) > 1 for a in m.tolist()}
    assert any(ref.resource_id in pooled_members for ref in refs)  # the case meant: the plan uses a pool
    inst = Instance.build(region, params, pool=True, worthwhile=True)
    chosen = _start_plan(inst, refs)
    assert int(chosen.sum()) == len(refs)
    assert inst.solver_objective(chosen) == pytest.approx(first.objective, abs=1e-6)
