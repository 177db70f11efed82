"""A plan as the people who act on it read it: names beside ids, kinds and funds in Russian.

`plan_view(region, params, assignments)` joins a plan's assignment rows (teacher, kind, resource)
with its region: the teacher (and the optional `full_name`, `position`, `subject` of
teachers.csv), school and municipality; each step's name, provider or host school, place,
format, dates, hours, cost and who pays; what it addresses; each teacher's need before and after.
The planner's workbook (engine/workbook.py) and the route documents (engine/documents.py) are
both built from it, so they always say the same thing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .explain import plan_indices
from .needs import need_matrix
from .options import INTERNSHIP, MENTOR, Activities, build_activities
from .params import KINDS, Params
from .problems import InputError, Problem
from .region import RegionData, date_of

KIND_RU = {"mentor": "Наставничество", "internship": "Стажировка", "program": "Программа ДПП"}
ROLE_RU = {False: "учитель", True: "руководитель"}
VOUCHER_RU = "Сертификат (персонифицированное финансирование)"
FEDERAL_RU = "Федеральные средства"
FORMAT_RU = {"online": "онлайн", "offline": "очно", "remote": "дистанционно"}

# Columns of PlanView.steps, in route order (by teacher, then date, kind, resource id).
STEP_COLUMNS = [
    "teacher_id", "full_name", "position", "subject", "role", "school_id", "school", "municipality_id",
    "municipality", "step", "kind", "kind_ru", "resource_id", "name", "host", "registry_id", "place", "format",
    "start", "end", "hours", "cost_rub", "funded_by", "fund", "addresses", "need_total", "need_covered",
]


def date_ru(value: dt.date) -> str:
    """ДД.ММ.ГГГГ, as Russian documents write dates."""
    return value.strftime("%d.%m.%Y")


@dataclass
class PlanView:
    region: RegionData
    params: Params
    activities: Activities
    teacher: np.ndarray  # per step: teacher index (route order)
    activity: np.ndarray  # per step: activity index
    steps: pd.DataFrame  # STEP_COLUMNS, one row per assignment
    need: np.ndarray  # need(t, c), SPEC §5
    cover: np.ndarray  # min(1, summed weights): the plan's cover(t, c)

    need_total: np.ndarray = field(init=False)  # per teacher
    need_covered: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.need_total = self.need.sum(axis=1)
        self.need_covered = (self.need * self.cover).sum(axis=1)

    def teachers_with_route(self) -> np.ndarray:
        return np.unique(self.teacher)

    def teacher_row(self, t: int) -> dict:
        """The teacher as a document names them: id always, name, position and subject where given."""
        region = self.region
        school = int(region.teachers.school[t])
        municipality = int(region.schools.municipality[school])
        return {
            "teacher_id": region.teachers.ids[t],
            "full_name": region.teachers.detail("full_name", t),
            "position": region.teachers.detail("position", t),
            "subject": region.teachers.detail("subject", t),
            "role": ROLE_RU[bool(region.teachers.is_manager[t])],
            "school_id": region.schools.ids[school], "school": region.schools.names[school],
            "municipality_id": region.municipalities.ids[municipality],
            "municipality": region.municipalities.names[municipality],
            "low_results": bool(region.schools.low_results[school]),
            "voucher_rub": int(region.teachers.voucher_rub[t]), "max_hours": float(region.teachers.max_hours[t]),
        }

    def deficits(self, t: int) -> list[dict]:
        """The deficits the diagnostics found (score below the threshold), largest need first."""
        region = self.region
        scores = region.teachers.scores[t]
        threshold = self.params.deficit_threshold
        rows = []
        for c in np.flatnonzero(np.nan_to_num(scores, nan=np.inf) < threshold).tolist():
            rows.append({"competency_id": region.competencies.ids[c], "competency": region.competencies.names[c],
                         "score": _number(scores[c]), "threshold": _number(threshold),
                         "need": float(self.need[t, c]), "cover": float(self.cover[t, c]),
                         "need_covered": float(self.need[t, c] * self.cover[t, c])})
        return sorted(rows, key=lambda r: (-r["need"], r["competency_id"]))


def plan_view(region: RegionData, params: Params, assignments: pd.DataFrame,
              activities: Activities | None = None, source: str = "assignments.csv") -> PlanView:
    """`assignments`: rows with teacher_id, kind, resource_id (assignments.csv of a plan of this region).

    A row naming a teacher or resource the region lacks is an InputError (the plan is not this
    bundle's), listing every such row."""
    acts = activities or build_activities(region)
    _check_rows(region, acts, assignments, source)
    t, a = plan_indices(region, acts, assignments)
    ids = np.asarray(acts.ids, dtype=object)[a].astype(str)
    teacher_ids = np.asarray(region.teachers.ids, dtype=object)[t].astype(str)
    order = np.lexsort((ids, acts.kind[a], acts.start[a], teacher_ids))
    t, a = t[order], a[order]
    need = need_matrix(region, params)
    cover = np.zeros_like(need)
    np.add.at(cover, t, acts.weights[a])
    cover = np.minimum(1.0, cover)
    # Who pays and how much, as the plan's rows say where they say it (a nation's federal programs are
    # programs of the region's catalogue but paid federally, not from the voucher).
    stated = None
    if {"funded_by", "cost_rub"} <= set(assignments.columns):
        stated = (np.asarray(assignments["funded_by"], dtype=object).astype(str)[order],
                  np.asarray(assignments["cost_rub"]).astype(np.int64)[order])
    steps = _steps_frame(region, acts, t, a, need, cover, stated)
    return PlanView(region, params, acts, t, a, steps, need, cover)


def _check_rows(region: RegionData, acts: Activities, assignments: pd.DataFrame, source: str) -> None:
    problems = []
    for row, (t_id, kind, r_id) in enumerate(zip(assignments["teacher_id"], assignments["kind"],
                                                 assignments["resource_id"]), start=2):
        if str(t_id) not in region.teachers.index:
            problems.append(Problem(source, "учителя нет в наборе данных региона (teacher not in the bundle)",
                                    "unknown_id", row, "teacher_id", str(t_id)))
        if str(kind) not in KINDS:
            problems.append(Problem(source, "неизвестный вид назначения (unknown kind)", "bad_value", row, "kind",
                                    str(kind)))
        elif acts.lookup(str(kind), str(r_id)) is None:
            problems.append(Problem(source, f"ресурса вида {kind} нет в наборе данных региона "
                                            "(resource not in the bundle)", "unknown_id", row, "resource_id",
                                    str(r_id)))
    if problems:
        raise InputError(problems[:1000], len(problems),
                         title="План не соответствует набору данных региона (plan and bundle differ)")


def _steps_frame(region: RegionData, acts: Activities, t: np.ndarray, a: np.ndarray, need: np.ndarray,
                 cover: np.ndarray, stated: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    obj = lambda values: np.asarray(values, dtype=object)  # noqa: E731
    schools, municipalities = region.schools, region.municipalities
    school = region.teachers.school[t]
    municipality = schools.municipality[school]
    kind = acts.kind[a]
    names, hosts, registry, places, formats = activity_texts(region, acts)
    detail = {column: obj(region.teachers.details[column])[t] if column in region.teachers.details
              else np.full(len(t), "", dtype=object) for column in ("full_name", "position", "subject")}
    mun_names = obj(municipalities.names)
    funded = np.where(kind == 2, "voucher", np.char.add("municipality:", obj(municipalities.ids)[municipality]
                                                        .astype(str)))
    fund = np.where(kind == 2, VOUCHER_RU, np.char.add("Бюджет: ", mun_names[municipality].astype(str)))
    cost = acts.cost_rub[a].astype(np.int64)
    if stated is not None:
        funded, cost = stated[0], stated[1]
        fund = np.where(funded == "federal", FEDERAL_RU, fund)
    comp_names = region.competencies.names
    addresses = ["; ".join(comp_names[c] for c in np.flatnonzero((acts.weights[ai] > 0) & (need[ti] > 0)))
                 for ti, ai in zip(t.tolist(), a.tolist())]
    frame = pd.DataFrame({
        "teacher_id": obj(region.teachers.ids)[t], **detail,
        "role": np.where(region.teachers.is_manager[t], ROLE_RU[True], ROLE_RU[False]),
        "school_id": obj(schools.ids)[school], "school": obj(schools.names)[school],
        "municipality_id": obj(municipalities.ids)[municipality], "municipality": mun_names[municipality],
        "step": 0, "kind": obj(KINDS)[kind], "kind_ru": obj([KIND_RU[k] for k in KINDS])[kind],
        "resource_id": obj(acts.ids)[a], "name": obj(names)[a], "host": obj(hosts)[a],
        "registry_id": obj(registry)[a], "place": obj(places)[a], "format": obj(formats)[a],
        "start": [date_of(d) for d in acts.start[a]], "end": [date_of(d) for d in acts.end[a]],
        "hours": [_number(h) for h in acts.hours[a]], "cost_rub": cost,
        "funded_by": funded, "fund": fund, "addresses": addresses,
        "need_total": need.sum(axis=1)[t], "need_covered": (need * cover).sum(axis=1)[t],
    }, columns=STEP_COLUMNS)
    frame["step"] = frame.groupby("teacher_id", sort=False).cumcount() + 1
    return frame


def activity_texts(region: RegionData, acts: Activities) -> tuple[list[str], ...]:
    """Per activity: name; provider or host school; registry id; place; format."""
    schools, mun = region.schools, region.municipalities
    names, hosts, registry, places, formats = [], [], [], [], []
    for i in range(len(acts)):
        local = int(acts.local[i])
        if acts.kind[i] == MENTOR:
            school = int(region.mentors.school[local])
            mentor_teacher = int(region.mentors.teacher[local])
            who = region.teachers.detail("full_name", mentor_teacher) if mentor_teacher >= 0 else ""
            names.append(f"Наставник {who} ({acts.ids[i]})" if who else f"Наставник {acts.ids[i]}")
            hosts.append(schools.names[school])
            registry.append("")
            remote = bool(region.mentors.remote[local])
            places.append("дистанционно" if remote else mun.names[schools.municipality[school]])
            formats.append(FORMAT_RU["remote" if remote else "offline"])
        elif acts.kind[i] == INTERNSHIP:
            site = int(region.site_sessions.site[local])
            school = int(region.sites.school[site])
            names.append(region.sites.names[site])
            hosts.append(schools.names[school])
            registry.append("")
            places.append(mun.names[schools.municipality[school]])
            formats.append(FORMAT_RU["offline"])
        else:
            program = int(region.program_sessions.program[local])
            online = bool(region.programs.online[program])
            names.append(region.programs.names[program])
            hosts.append(region.programs.providers[program])
            registry.append(region.programs.registry_ids[program])
            where = int(region.program_sessions.municipality[local])
            places.append("онлайн" if online or where < 0 else mun.names[where])
            formats.append(FORMAT_RU["online" if online else "offline"])
    return names, hosts, registry, places, formats


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 4)
