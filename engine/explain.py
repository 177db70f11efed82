"""Why this plan: what each assignment gives, and why each need left uncovered is uncovered.

For every assignment, the needs it addresses and the cover it adds (in route order: an
assignment adds `min(1, cover before + weight) - min(1, cover before)`), so the `need_closed`
of a teacher's rows sums to the need the plan covers for them.

For every need left uncovered (need > 0, cover < 1) the reason is computed from the plan, not
guessed. The candidates are the activities that address the competency and are not yet in the
teacher's route. Each candidate is checked against every rule, with everyone else's plan fixed:

    no option exists    no_resource     nothing in the region addresses the competency
                        out_of_travel   something does, but only beyond max_travel_minutes
                        not_allowed     only at the teacher's own school, the teacher as their own
                                        mentor, a forbidden assignment, a kind allowed 0 times
                        all_used        every activity addressing it is in the route already
    taken               capacity_full   the seats (mentor places) are all taken: by whom, what need
    money ran out       municipal_budget / region_budget / voucher: which, what is left, the price
    teacher full        hours_full, dates_full, kind_full (count of the kind reached),
                        same_program_or_site (another session of that program or site is in the route)
    cost                not_worth_cost  it fits, but costs more (cost / rub_per_point) than it adds
                        improvable      it fits and adds more than it costs: the plan is not optimal

The reason named is the one of the candidate closest to fitting (fewest rules in the way; then
the largest weight on the competency; then the cheapest), by the order above; `blockers` counts,
over all candidates that are options, how many each rule blocks.

Totals per municipality and per competency (count of needs, need left) show a planner where the
region lacks mentors, seats or money.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .needs import need_matrix
from .options import INTERNSHIP, MENTOR, Activities, build_activities
from .params import KINDS, Params
from .region import RegionData

# Bits: tier 1 (no option at all), tier 2 (the option is blocked by the plan), then "in the route".
KIND_OFF, FORBIDDEN, SELF, OWN_SCHOOL, TRAVEL = 1, 2, 4, 8, 16
CAPACITY, MUNICIPAL, REGION, VOUCHER, HOURS, DATES, COUNT, GROUP = 32, 64, 128, 256, 512, 1024, 2048, 4096
IN_ROUTE = 8192
TIER1 = KIND_OFF | FORBIDDEN | SELF | OWN_SCHOOL | TRAVEL
TIER2 = CAPACITY | MUNICIPAL | REGION | VOUCHER | HOURS | DATES | COUNT | GROUP
# Order of precedence when a candidate is blocked by several rules.
BLOCKERS = [(CAPACITY, "capacity_full"), (MUNICIPAL, "municipal_budget"), (REGION, "region_budget"),
            (VOUCHER, "voucher"), (HOURS, "hours_full"), (DATES, "dates_full"), (COUNT, "kind_full"),
            (GROUP, "same_program_or_site")]
NOT_ALLOWED = [(OWN_SCHOOL, "своя школа (own school)"), (SELF, "сам себе наставник (oneself)"),
               (FORBIDDEN, "запрещено параметрами (forbidden)"), (KIND_OFF, "вид не разрешён (kind limit 0)")]

REASON_GROUP = {
    "no_resource": "no_option", "out_of_travel": "no_option", "not_allowed": "no_option", "all_used": "no_option",
    "capacity_full": "taken",
    "municipal_budget": "money", "region_budget": "money", "voucher": "money",
    "hours_full": "teacher_full", "dates_full": "teacher_full", "kind_full": "teacher_full",
    "same_program_or_site": "teacher_full",
    "not_worth_cost": "cost", "improvable": "improvable",
}
REASONS = tuple(REASON_GROUP)

EXPLAIN_COLUMNS = ["row", "teacher_id", "municipality_id", "competency_id", "need", "cover", "need_left", "kind",
                   "resource_id", "weight", "cover_added", "need_closed", "reason", "reason_group", "detail",
                   "blockers"]
TOTAL_COLUMNS = ["scope", "scope_id", "reason_group", "reason", "needs", "need_left"]
_BLOCK = 1024


@dataclass
class Explanation:
    assignments: pd.DataFrame  # one row per (assignment, competency it addresses with need)
    uncovered: pd.DataFrame  # one row per uncovered need, with its reason
    totals: pd.DataFrame  # reason totals over the region, per municipality, per competency

    def frame(self) -> pd.DataFrame:
        """explain.csv: assignment rows then uncovered rows, one schema."""
        return pd.concat([self.assignments.reindex(columns=EXPLAIN_COLUMNS),
                          self.uncovered.reindex(columns=EXPLAIN_COLUMNS)], ignore_index=True)

    def reason_counts(self) -> dict[str, dict]:
        region = self.totals[self.totals["scope"] == "region"]
        return {r.reason: {"group": r.reason_group, "needs": int(r.needs), "need_left": float(r.need_left)}
                for r in region.itertuples()}


def explain_plan(region: RegionData, params: Params, teacher: np.ndarray, activity: np.ndarray,
                 activities: Activities | None = None) -> Explanation:
    """`teacher`, `activity`: the plan as indices into region.teachers and `activities`."""
    acts = activities or build_activities(region)
    teacher = np.asarray(teacher, dtype=np.int64)
    activity = np.asarray(activity, dtype=np.int64)
    need = need_matrix(region, params)
    cover = np.zeros_like(need)
    np.add.at(cover, teacher, acts.weights[activity])
    state = _State(region, params, acts, teacher, activity, need, cover)
    return Explanation(_assignment_rows(state), *_uncovered_rows(state))


def explain_result(result) -> Explanation:
    """The explanation of a solver Result."""
    inst = result.instance
    plan = result.plan
    return explain_plan(inst.region, inst.params, plan.teacher, plan.activity, result.activities)


def explain_assignments(region: RegionData, params: Params, assignments: pd.DataFrame) -> Explanation:
    """From assignments.csv rows (teacher_id, kind, resource_id) of a plan of this region."""
    acts = build_activities(region)
    teacher, activity = plan_indices(region, acts, assignments)
    return explain_plan(region, params, teacher, activity, acts)


def plan_indices(region: RegionData, acts: Activities, assignments) -> tuple[np.ndarray, np.ndarray]:
    """Teacher and activity indices of assignment rows (a frame or AssignmentRefs); unknown ids are skipped."""
    if isinstance(assignments, pd.DataFrame):
        rows = zip(assignments["teacher_id"], assignments["kind"], assignments["resource_id"])
    else:
        rows = ((a.teacher_id, a.kind, a.resource_id) for a in assignments)
    teacher, activity = [], []
    for t_id, kind, r_id in rows:
        t = region.teachers.index.get(str(t_id))
        a = acts.lookup(str(kind), str(r_id)) if str(kind) in KINDS else None
        if t is not None and a is not None:
            teacher.append(t)
            activity.append(a)
    return np.asarray(teacher, dtype=np.int64), np.asarray(activity, dtype=np.int64)


def write_explanation(explanation: Explanation, out_dir: str | Path) -> Path:
    """explain.csv and explain_totals.csv into the plan folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    explanation.frame().to_csv(out / "explain.csv", index=False, lineterminator="\n")
    explanation.totals.to_csv(out / "explain_totals.csv", index=False, lineterminator="\n")
    return out / "explain.csv"


# ------------------------------------------------------------------------------------------------


class _State:
    """The plan's residuals and each teacher's route, as the rules see them."""

    def __init__(self, region, params, acts, teacher, activity, need, cover):
        self.region, self.params, self.acts = region, params, acts
        self.teacher, self.activity, self.need, self.cover = teacher, activity, need, cover
        n_t, n_a = len(region.teachers), len(acts)
        self.limits = np.array([1, params.max_internships, params.max_programs])
        self.municipality = region.teacher_municipality
        used = np.bincount(activity, minlength=n_a)
        self.used = used
        self.cap_left = acts.capacity - used
        spent = np.bincount(self.municipality[teacher], weights=acts.budget_rub[activity],
                            minlength=len(region.municipalities))
        self.spent = spent
        limits = region.budgets.municipality_rub.astype(float)
        self.mun_left = np.where(limits >= 0, limits - spent, np.inf)
        self.region_left = float(region.budgets.region_rub - spent.sum())
        self.hours_left = region.teachers.max_hours - np.bincount(teacher, weights=acts.hours[activity],
                                                                   minlength=n_t)
        self.voucher_left = region.teachers.voucher_rub - np.bincount(teacher, weights=acts.voucher_rub[activity],
                                                                      minlength=n_t)
        self.counts = np.zeros((n_t, 3), dtype=np.int64)
        np.add.at(self.counts, (teacher, acts.kind[activity]), 1)
        order = np.argsort(teacher, kind="stable")
        self.route_first = np.searchsorted(teacher[order], np.arange(n_t + 1))
        self.route = activity[order]
        self.forbidden: dict[int, set[int]] = {}
        for ref in params.forbidden:
            t = region.teachers.index.get(ref.teacher_id)
            a = acts.lookup(ref.kind, ref.resource_id)
            if t is not None and a is not None:
                self.forbidden.setdefault(t, set()).add(a)
        by_act = np.argsort(activity, kind="stable")
        act_first = np.searchsorted(activity[by_act], np.arange(n_a + 1))
        self._users_sorted, self._users_first = teacher[by_act], act_first

    def users_of(self, a: int) -> np.ndarray:
        return self._users_sorted[self._users_first[a]:self._users_first[a + 1]]

    def route_of(self, t: int) -> np.ndarray:
        return self.route[self.route_first[t]:self.route_first[t + 1]]

    def _static_bits(self) -> np.ndarray:
        """Bits that depend on the teacher's school only (its municipality too): schools x activities."""
        cached = getattr(self, "_school_bits", None)
        if cached is not None:
            return cached
        region, params, acts = self.region, self.params, self.acts
        kind = acts.kind
        n_s = len(region.schools)
        out = np.zeros((n_s, len(acts)), dtype=np.uint16)
        _mark(out, (self.limits[kind] <= 0)[None, :], KIND_OFF)
        same_school = acts.school[None, :] == np.arange(n_s)[:, None]
        own = same_school & (kind == INTERNSHIP)[None, :]
        if params.mentor_from_other_school:
            own |= same_school & (kind == MENTOR)[None, :]
        _mark(out, own, OWN_SCHOOL)
        place = acts.municipality
        in_person = place >= 0
        travel = region.travel_minutes[:, np.where(in_person, place, 0)]  # municipalities x activities
        by_municipality = np.zeros(travel.shape, dtype=np.uint16)
        _mark(by_municipality, in_person[None, :] & (travel > params.max_travel_minutes), TRAVEL)
        budget = acts.budget_rub[None, :]
        paid = budget > 0
        _mark(by_municipality, paid & (budget > self.mun_left[:, None]), MUNICIPAL)
        out |= by_municipality[region.schools.municipality]
        _mark(out, (self.cap_left <= 0)[None, :], CAPACITY)
        _mark(out, paid & (budget > self.region_left), REGION)
        self._school_bits = out
        return out

    def _clashes(self) -> tuple[np.ndarray, np.ndarray]:
        """activities x activities: another session of the same program or site; overlapping dates."""
        cached = getattr(self, "_clash", None)
        if cached is None:
            acts = self.acts
            group = acts.group
            same = (group[:, None] == group[None, :]) & (group >= 0)[:, None]
            dated = acts.dated
            overlap = dated[:, None] & dated[None, :] & (acts.start[:, None] <= acts.end[None, :]) \
                & (acts.end[:, None] >= acts.start[None, :])
            cached = self._clash = (same, overlap)
        return cached

    def bits(self, teachers: np.ndarray) -> np.ndarray:
        """Blocker bits of every (teacher, activity) pair of a block: uint16 (teachers x activities)."""
        acts = self.acts
        kind = acts.kind
        out = self._static_bits()[self.region.teachers.school[teachers]]
        _mark(out, (acts.mentor_teacher[None, :] == teachers[:, None]) & (kind == MENTOR)[None, :], SELF)
        _mark(out, acts.voucher_rub[None, :] > self.voucher_left[teachers][:, None], VOUCHER)
        _mark(out, acts.hours[None, :] > self.hours_left[teachers][:, None] + 1e-9, HOURS)
        full = (self.counts[teachers] >= self.limits[None, :]) & (self.limits > 0)[None, :]  # teachers x kinds
        _mark(out, full[:, kind], COUNT)
        # The route's own activities, other sessions of its programs and sites, and date clashes.
        lo, hi = self.route_first[teachers], self.route_first[teachers + 1]
        has = np.flatnonzero(hi > lo)
        if len(has):
            rows = np.repeat(has, (hi - lo)[has])
            entries = self.route[np.concatenate([np.arange(a, b) for a, b in zip(lo[has], hi[has])])]
            out[rows, entries] |= np.uint16(IN_ROUTE)
            starts = np.r_[0, np.cumsum((hi - lo)[has])[:-1]]
            clash_group, clash_dates = self._clashes()
            part = out[has]
            _mark(part, np.logical_or.reduceat(clash_group[entries], starts, axis=0), GROUP)
            _mark(part, np.logical_or.reduceat(clash_dates[entries], starts, axis=0), DATES)
            out[has] = part
        for t, forbidden in self.forbidden.items():
            rows = np.flatnonzero(teachers == t)
            for row in rows.tolist():
                out[row, list(forbidden)] |= np.uint16(FORBIDDEN)
        return out


def _mark(out: np.ndarray, where: np.ndarray, bit: int) -> None:
    """out |= bit where `where` (broadcast), in place: no temporary of the block's size."""
    np.bitwise_or(out, np.uint16(bit), out=out, where=where)


def _assignment_rows(st: _State) -> pd.DataFrame:
    region, acts = st.region, st.acts
    t, a = st.teacher, st.activity
    # Route order as routes.csv: by teacher, then date, kind, resource id.
    ids = np.asarray(acts.ids, dtype=object)[a]
    order = np.lexsort((ids.astype(str), acts.kind[a], acts.start[a], t))
    t, a = t[order], a[order]
    w = acts.weights[a]
    cum = np.cumsum(w, axis=0)
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]]) if len(t) else np.zeros(0, np.int64)
    group_offset = np.zeros_like(cum)
    if len(t):
        base = np.vstack([np.zeros((1, w.shape[1])), cum[starts[1:] - 1]])
        group_offset = np.repeat(base, np.diff(np.r_[starts, len(t)]), axis=0)
    after = cum - group_offset
    before = after - w
    added = np.minimum(1.0, after) - np.minimum(1.0, before)
    need = st.need[t]
    rows, comps = np.nonzero((w > 0) & (need > 0))
    tr, ar = t[rows], a[rows]
    need_rc = need[rows, comps]
    return pd.DataFrame({
        "row": "assignment",
        "teacher_id": np.asarray(region.teachers.ids, dtype=object)[tr],
        "municipality_id": np.asarray(region.municipalities.ids, dtype=object)[st.municipality[tr]],
        "competency_id": np.asarray(region.competencies.ids, dtype=object)[comps],
        "need": np.round(need_rc, 6),
        "cover": np.round(np.minimum(1.0, st.cover[tr, comps]), 6),
        "need_left": np.round(need_rc * (1 - np.minimum(1.0, st.cover[tr, comps])), 6),
        "kind": np.asarray(KINDS, dtype=object)[acts.kind[ar]],
        "resource_id": np.asarray(acts.ids, dtype=object)[ar],
        "weight": np.round(w[rows, comps], 6),
        "cover_added": np.round(added[rows, comps], 6),
        "need_closed": np.round(need_rc * added[rows, comps], 6),
    }, columns=EXPLAIN_COLUMNS[:12])


def _uncovered_rows(st: _State) -> tuple[pd.DataFrame, pd.DataFrame]:
    region, acts, need, cover = st.region, st.acts, st.need, st.cover
    uncovered = (need > 0) & (cover < 1 - 1e-9)
    teachers_all = np.flatnonzero(uncovered.any(axis=1))
    addresses = [np.flatnonzero(acts.weights[:, c] > 0) for c in range(need.shape[1])]
    out_t, out_c, out_reason, out_act, out_blockers, out_value = [], [], [], [], [], []
    for lo in range(0, len(teachers_all), _BLOCK):
        block = teachers_all[lo:lo + _BLOCK]
        bits = st.bits(block)
        for c in range(need.shape[1]):
            rows = np.flatnonzero(uncovered[block, c])
            if len(rows) == 0:
                continue
            cand = addresses[c]
            teachers = block[rows]
            if len(cand) == 0:
                out_t.append(teachers), out_c.append(np.full(len(rows), c))
                out_reason.append(np.full(len(rows), "no_resource", dtype=object))
                out_act.append(np.full(len(rows), -1)), out_blockers.append(np.zeros((len(rows), len(BLOCKERS))))
                out_value.append(np.full(len(rows), np.nan))
                continue
            sub = bits[np.ix_(rows, cand)]
            reason, chosen, blockers, value = _classify(st, teachers, c, cand, sub)
            out_t.append(teachers), out_c.append(np.full(len(rows), c)), out_reason.append(reason)
            out_act.append(chosen), out_blockers.append(blockers), out_value.append(value)
    if out_t:
        t = np.concatenate(out_t)
        c = np.concatenate(out_c)
        reason = np.concatenate(out_reason)
        act = np.concatenate(out_act)
        blockers = np.vstack(out_blockers)
        value = np.concatenate(out_value)
    else:
        t = c = act = np.zeros(0, np.int64)
        value = np.zeros(0)
        reason = np.zeros(0, dtype=object)
        blockers = np.zeros((0, len(BLOCKERS)))
    order = np.lexsort((c, t))
    t, c, reason, act, blockers, value = t[order], c[order], reason[order], act[order], blockers[order], value[order]
    need_tc = need[t, c]
    cov = np.minimum(1.0, cover[t, c])
    # "Taken" reads the same for every teacher wanting one activity for one competency: said once.
    taken: dict[tuple[int, int], str] = {}
    details = []
    for ti, ci, r, ai, v in zip(t.tolist(), c.tolist(), reason, act.tolist(), value.tolist()):
        if r == "capacity_full":
            text = taken.get((ai, ci))
            if text is None:
                text = taken[(ai, ci)] = _detail(st, ti, ci, r, ai, v)
            details.append(text)
        else:
            details.append(_detail(st, ti, ci, r, ai, v))
    names = [name for _, name in BLOCKERS]
    distinct, inverse = np.unique(blockers.astype(np.int64), axis=0, return_inverse=True)
    texts = [";".join(f"{names[j]}:{n}" for j, n in enumerate(row.tolist()) if n > 0) for row in distinct]
    blocker_text = [texts[i] for i in np.asarray(inverse).ravel().tolist()] if len(blockers) else []
    frame = pd.DataFrame({
        "row": "uncovered",
        "teacher_id": np.asarray(region.teachers.ids, dtype=object)[t],
        "municipality_id": np.asarray(region.municipalities.ids, dtype=object)[st.municipality[t]],
        "competency_id": np.asarray(region.competencies.ids, dtype=object)[c],
        "need": np.round(need_tc, 6),
        "cover": np.round(cov, 6),
        "need_left": np.round(need_tc * (1 - cov), 6),
        "kind": _at(np.asarray(KINDS, dtype=object)[acts.kind], act),
        "resource_id": _at(np.asarray(acts.ids, dtype=object), act),
        "reason": reason,
        "reason_group": [REASON_GROUP[r] for r in reason],
        "detail": details,
        "blockers": blocker_text,
    })
    return frame.reindex(columns=EXPLAIN_COLUMNS), _totals(frame)


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index], and "" where index is -1 (also when there are no values at all)."""
    out = np.full(len(index), "", dtype=object)
    found = index >= 0
    out[found] = values[index[found]]
    return out


def _classify(st: _State, teachers: np.ndarray, c: int, cand: np.ndarray, sub: np.ndarray):
    """Reason, the candidate it refers to (-1: none), blocker counts and the candidate's marginal value."""
    acts = st.acts
    n = len(teachers)
    reason = np.full(n, "", dtype=object)
    chosen = np.full(n, -1, dtype=np.int64)
    value = np.full(n, np.nan)
    is_cand = (sub & IN_ROUTE) == 0
    is_option = is_cand & ((sub & TIER1) == 0)
    blockers = np.stack([(is_option & ((sub & bit) != 0)).sum(axis=1) for bit, _ in BLOCKERS], axis=1)
    popcount = np.zeros(sub.shape, dtype=np.int64)
    for bit, _ in BLOCKERS:
        popcount += (sub & bit) != 0
    any_option = is_option.any(axis=1)
    any_cand = is_cand.any(axis=1)
    reason[~any_cand] = "all_used"
    # No option: the nearest candidate that only travel rules out, else a candidate some other rule forbids.
    travel_only = is_cand & ((sub & TIER1) == TRAVEL)
    rows = np.flatnonzero(any_cand & ~any_option & travel_only.any(axis=1))
    if len(rows):
        minutes = st.region.travel_minutes[st.municipality[teachers[rows]]][:, np.maximum(acts.municipality[cand], 0)]
        minutes = np.where(travel_only[rows], minutes, np.inf)
        reason[rows] = "out_of_travel"
        chosen[rows] = cand[np.argmin(minutes, axis=1)]
    rows = np.flatnonzero(any_cand & ~any_option & ~travel_only.any(axis=1))
    reason[rows] = "not_allowed"
    chosen[rows] = cand[np.argmax(is_cand[rows], axis=1)]
    # Options exist: the one closest to fitting (fewest blockers, largest weight on c, cheapest).
    rows = np.flatnonzero(any_option)
    if len(rows):
        weight = acts.weights[cand, c]
        cost = acts.cost_rub[cand].astype(float)
        key = popcount[rows] * 1e6 - weight[None, :] * 1e3 + cost[None, :] / (cost.max() + 1.0)
        best = np.argmin(np.where(is_option[rows], key, np.inf), axis=1)
        chosen[rows] = cand[best]
        bits = sub[rows, best]
        names = np.full(len(rows), "", dtype=object)
        for bit, name in reversed(BLOCKERS):  # the first in precedence wins
            names[(bits & bit) != 0] = name
        free = names == ""
        if free.any():
            t_free, a_free = teachers[rows[free]], cand[best[free]]
            gain = (st.need[t_free] * (np.minimum(1.0, st.cover[t_free] + acts.weights[a_free])
                                       - np.minimum(1.0, st.cover[t_free]))).sum(axis=1)
            marginal = gain - acts.cost_rub[a_free] / st.params.rub_per_point
            names[free] = np.where(marginal > 1e-9, "improvable", "not_worth_cost")
            value[rows[free]] = marginal
        reason[rows] = names
    return reason, chosen, blockers, value


def _rub(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ") + " ₽"


def _detail(st: _State, t: int, c: int, reason: str, a: int, value: float) -> str:
    region, acts = st.region, st.acts
    comp = region.competencies.ids[c]
    res = f"{KINDS[acts.kind[a]]} {acts.ids[a]}" if a >= 0 else ""
    if reason == "no_resource":
        return f"ни наставник, ни площадка, ни программа не работают с {comp} (nothing in the region addresses it)"
    if reason == "all_used":
        return "все подходящие ресурсы уже в маршруте, их веса не закрывают дефицит полностью " \
               "(every activity addressing it is in the route)"
    if reason == "out_of_travel":
        minutes = region.travel_minutes[st.municipality[t], acts.municipality[a]]
        where = "недостижимо" if not np.isfinite(minutes) else f"{minutes:.0f} мин"
        return f"ближайший {res}: дорога {where} при лимите {st.params.max_travel_minutes:g} мин " \
               "(none within travel)"
    if reason == "not_allowed":
        candidates = [int(x) for x in np.flatnonzero(acts.weights[:, c] > 0)]
        bits = st.bits(np.array([t]))[0, candidates]
        why = [label for bit, label in NOT_ALLOWED if (bits & bit).any()]
        if (bits & TRAVEL).any():
            why.append("дорога дольше лимита (beyond travel)")
        return "нет допустимых вариантов: " + ", ".join(why)
    if reason == "capacity_full":
        users = st.users_of(a)
        users = users[np.argsort(-st.need[users, c], kind="stable")]
        listed = ", ".join(f"{region.teachers.ids[u]} (потребность {st.need[u, c]:.2f})" for u in users[:3])
        more = f" и ещё {len(users) - 3}" if len(users) > 3 else ""
        return f"{res}: занято {st.used[a]} из {acts.capacity[a]} — {listed}{more} (taken)"
    if reason == "municipal_budget":
        m = st.municipality[t]
        return f"бюджет муниципалитета {region.municipalities.ids[m]}: осталось {_rub(st.mun_left[m])}, " \
               f"{res} стоит {_rub(acts.budget_rub[a])} (municipal budget spent)"
    if reason == "region_budget":
        return f"бюджет региона: осталось {_rub(st.region_left)}, {res} стоит {_rub(acts.budget_rub[a])} " \
               "(regional budget spent)"
    if reason == "voucher":
        if region.teachers.voucher_rub[t] <= 0:
            return f"сертификата нет (0 ₽), {res} стоит {_rub(acts.voucher_rub[a])} (no voucher)"
        return f"сертификат: осталось {_rub(st.voucher_left[t])} из {_rub(region.teachers.voucher_rub[t])}, " \
               f"{res} стоит {_rub(acts.voucher_rub[a])} (voucher spent)"
    if reason == "hours_full":
        return f"часы: осталось {st.hours_left[t]:g} из {region.teachers.max_hours[t]:g}, {res} — " \
               f"{acts.hours[a]:g} ч (hours full)"
    if reason == "dates_full":
        route = st.route_of(t)
        clash = [acts.ids[r] for r in route if acts.dated[r] and acts.start[r] <= acts.end[a]
                 and acts.end[r] >= acts.start[a]]
        return f"{res} пересекается по датам с {', '.join(clash)} (dates full)"
    if reason == "kind_full":
        k = int(acts.kind[a])
        return f"уже {st.counts[t, k]} × {KINDS[k]} при лимите {st.limits[k]} (route full for this kind)"
    if reason == "same_program_or_site":
        route = st.route_of(t)
        same = [acts.ids[r] for r in route if acts.group[r] == acts.group[a]]
        return f"{res}: в маршруте уже сеанс той же программы или площадки {', '.join(same)}"
    if reason == "not_worth_cost":
        gain = value + acts.cost_rub[a] / st.params.rub_per_point
        return f"{res} добавил бы {gain:.4f} при стоимости {_rub(acts.cost_rub[a])} = " \
               f"{acts.cost_rub[a] / st.params.rub_per_point:.4f} (costs more than it adds)"
    if reason == "improvable":
        return f"{res} помещается и добавил бы {value:.4f}: план не оптимален " \
               "(fits and would add value: the plan is not optimal)"
    return ""


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for scope, column in (("region", None), ("municipality", "municipality_id"), ("competency", "competency_id")):
        keys = ["reason_group", "reason"] if column is None else [column, "reason_group", "reason"]
        if frame.empty:
            continue
        grouped = frame.groupby(keys, sort=True).agg(needs=("need", "size"), need_left=("need_left", "sum"))
        grouped = grouped.reset_index()
        grouped.insert(0, "scope", scope)
        grouped.insert(1, "scope_id", "" if column is None else grouped.pop(column))
        parts.append(grouped)
    if not parts:
        return pd.DataFrame(columns=TOTAL_COLUMNS)
    out = pd.concat(parts, ignore_index=True)[TOTAL_COLUMNS]
    out["need_left"] = out["need_left"].round(6)
    return out


__all__ = ["Explanation", "explain_assignments", "explain_plan", "explain_result", "plan_indices",
           "write_explanation", "REASONS", "REASON_GROUP"]
