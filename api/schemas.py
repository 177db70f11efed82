"""Request and response bodies of the API (separate from the database models)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from marshrut.engine import Params

Status = Literal["queued", "running", "done", "failed", "cancelled"]


def _utc(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


class Timestamps(BaseModel):
    @field_serializer("created_at", "started_at", "finished_at", check_fields=False)
    def _serialise_time(self, value: dt.datetime | None) -> str | None:
        return _utc(value)


# ---- errors ------------------------------------------------------------------------------------

class Problem(BaseModel):
    file: str = Field(description="file of the bundle, `params` or `request`")
    message: str = Field(description="what is wrong, for a planner (in Russian)")
    code: str = Field("invalid", description="stable English key: missing_file, unknown_id, too_large, ...")
    row: int | None = Field(None, description="row as a spreadsheet shows it (the header is row 1)")
    column: str | None = Field(None, description="column, or the parameter's path like `params.time_limit_s`")
    value: str | None = Field(None, description="the offending value (control characters escaped)")


class ErrorResponse(BaseModel):
    """Every error: a short `detail`, and for bad input the full list of problems."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "detail": "Ошибки в наборе данных региона", "total": 1, "shown": 1,
        "problems": [{"file": "teachers.csv", "message": "неизвестный идентификатор (нет в schools.csv)",
                      "code": "unknown_id", "row": 7, "column": "school_id", "value": "SCH999"}]}]})

    detail: str
    total: int = Field(0, description="problems found (all of them)")
    shown: int = Field(0, description="problems listed (the first few thousand)")
    problems: list[Problem] = Field(default_factory=list)


# ---- regions -----------------------------------------------------------------------------------

class RegionCounts(BaseModel):
    model_config = ConfigDict(extra="allow")  # the engine may count more things

    teachers: int = 0
    schools: int = 0
    municipalities: int = 0
    competencies: int = 0
    mentors: int = 0
    mentor_places: int = 0
    sites: int = 0
    site_sessions: int = 0
    site_seats: int = 0
    programs: int = 0
    program_sessions: int = 0
    program_seats: int = 0
    region_budget_rub: int = 0
    vouchers_rub: int = 0


REGION_EXAMPLE = {
    "region_id": "3f2c1e0a9b8d4c7e8f6a5b4c3d2e1f00", "name": "Томская область", "filename": "tomsk.zip",
    "size_bytes": 1843211, "sha256": "9b1f…", "created_at": "2025-09-01T08:00:00Z", "plans": 0,
    "teachers": 1240, "schools": 44, "municipalities": 20, "competencies": 12, "mentors": 90, "mentor_places": 260,
    "sites": 15, "site_sessions": 60, "site_seats": 600, "programs": 40, "program_sessions": 120,
    "program_seats": 2400, "region_budget_rub": 12000000, "vouchers_rub": 37200000,
}


class RegionMeta(Timestamps):
    region_id: str = Field(description="id to plan on: POST /v1/plans {region_id}")
    name: str
    filename: str
    size_bytes: int
    sha256: str
    created_at: dt.datetime
    plans: int = Field(0, description="plans made on this region")


class RegionOut(RegionCounts, RegionMeta):
    """The region's metadata, then its counts (RegionData.counts())."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [REGION_EXAMPLE]})


# ---- plans -------------------------------------------------------------------------------------

class PlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "region_id": "3f2c1e0a9b8d4c7e8f6a5b4c3d2e1f00",
        "params": {"deficit_threshold": 70, "max_travel_minutes": 120, "time_limit_s": 30,
                   "forbidden": [{"teacher_id": "T00017", "kind": "program", "resource_id": "PS-2025-04"}]},
    }]})

    region_id: str = Field(max_length=64, description="from POST /v1/regions")
    params: Params = Field(default_factory=Params, description="plan parameters (docs/parameters.md); defaults if left out")


class PlanCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "status": "queued",
        "region_id": "3f2c1e0a9b8d4c7e8f6a5b4c3d2e1f00"}]})

    plan_id: str
    status: Status
    region_id: str | None = Field(None, description="the region planned (None for a nation's plan)")
    nation_id: str | None = Field(None, description="the nation planned (POST /v1/nations/{nation_id}/plans)")


class RegionProgress(BaseModel):
    region_id: str
    rounds: int = Field(description="rounds in which the region has been priced so far")
    status: str | None = Field(None, description="its last pricing: OPTIMAL (proved) or FEASIBLE")


class ProgressOut(BaseModel):
    elapsed: float | None = Field(None, description="seconds since the solve started")
    objective: float | None = Field(None, description="objective of the best plan so far (docs/rules.md)")
    bound: float | None = Field(None, description="proved upper bound on the objective")
    gap: float | None = Field(None, description="(bound - objective) / max(1, |bound|)")
    phase: str | None = Field(None, description="greedy, bound, cp-sat, lns:…, done")
    round: int | None = Field(None, description="a nation's plan: rounds of federal prices done")
    regions: list[RegionProgress] | None = Field(None, description="a nation's plan: each region's pricing")


class PlanOut(Timestamps):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "region_id": "3f2c1e0a9b8d4c7e8f6a5b4c3d2e1f00",
        "status": "running", "attempt": 1, "created_at": "2025-09-01T08:01:00Z",
        "started_at": "2025-09-01T08:01:00Z", "finished_at": None,
        "progress": {"elapsed": 12.4, "objective": 318.2, "bound": 331.9, "gap": 0.041, "phase": "cp-sat"},
        "params": {"time_limit_s": 30}, "summary": None, "error": None}]})

    plan_id: str
    region_id: str | None = Field(description="the region (None for a nation's plan)")
    nation_id: str | None = Field(None, description="the nation, for a nation's plan (kind `nation`)")
    kind: Literal["plan", "replan", "sweep", "documents", "nation"] = Field(
        "plan", description="a plan, a re-plan of another plan (a plan too), a sweep (what if), the route "
                            "documents of a plan, or a nation's plan (docs/nation.md)")
    tenant: str = Field("default", description="whose it is")
    status: Status
    attempt: int = Field(description="times the solve was started (more than 1 after a server crash)")
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    progress: ProgressOut | None = None
    params: dict = Field(description="the parameters as validated, defaults filled in")
    summary: dict | None = Field(None, description="summary.json once done")
    error: ErrorResponse | None = Field(None, description="why the plan failed")


class AssignmentOut(BaseModel):
    teacher_id: str
    kind: Literal["mentor", "internship", "program"]
    resource_id: str
    start: str
    end: str
    hours: float
    cost_rub: int
    funded_by: str = Field(description="`voucher` or `municipality:<id>`")


class AssignmentsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "total": 1, "assignments": [
            {"teacher_id": "T00001", "kind": "mentor", "resource_id": "MEN001", "start": "2025-09-01",
             "end": "2025-12-31", "hours": 20, "cost_rub": 10000, "funded_by": "municipality:mo-tomsk"}]}]})

    plan_id: str
    total: int
    assignments: list[AssignmentOut]


class RouteStep(BaseModel):
    model_config = ConfigDict(extra="allow")

    step: int
    kind: str
    resource_id: str
    name: str
    start: str
    end: str
    hours: float
    cost_rub: int
    funded_by: str
    addresses: list[str] = Field(description="competencies with a need that this step addresses")


class RouteOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "plan_id": "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f", "teacher_id": "T00001", "cluster": 2,
        "profile": "функциональная грамотность", "need_total": 1.21, "need_covered": 0.83, "need_after": 0.38,
        "steps": [{"step": 1, "kind": "mentor", "resource_id": "MEN001", "name": "Наставник MEN001 (Лицей 1)",
                   "start": "2025-09-01", "end": "2025-12-31", "hours": 20, "cost_rub": 10000,
                   "funded_by": "municipality:mo-tomsk", "addresses": ["K01", "K04"]}]}]})

    plan_id: str
    teacher_id: str
    cluster: int | None = None
    profile: str | None = None
    need_total: float | None = Field(None, description="the teacher's need before the plan (docs/rules.md)")
    need_covered: float | None = None
    need_after: float | None = None
    steps: list[RouteStep]


class ClusterMember(BaseModel):
    teacher_id: str
    cluster: int
    profile: str = ""


class ClustersOut(BaseModel):
    plan_id: str
    profiles: list[dict] = Field(description="cluster profiles from summary.json: name, size, mean deficit")
    teachers: list[ClusterMember]


# ---- nations -----------------------------------------------------------------------------------

class NationRegion(BaseModel):
    region_id: str
    name: str
    teachers: int


class NationOut(Timestamps):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "nation_id": "5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b", "name": "Сибирь", "filename": "siberia.zip",
        "size_bytes": 2811020, "sha256": "4c1d…", "created_at": "2026-08-20T08:00:00Z", "plans": 0,
        "regions": 2, "teachers": 2400, "schools": 90, "federal_programs": 2, "federal_sessions": 2,
        "federal_seats": 175, "federal_budget_rub": 2500000,
        "region_list": [{"region_id": "R22", "name": "Алтайский край", "teachers": 1160},
                        {"region_id": "R70", "name": "Томская область", "teachers": 1240}]}]})

    nation_id: str = Field(description="id to plan on: POST /v1/nations/{nation_id}/plans")
    name: str
    filename: str
    size_bytes: int
    sha256: str
    created_at: dt.datetime
    plans: int = Field(0, description="plans made on this nation")
    regions: int
    teachers: int
    schools: int
    federal_programs: int
    federal_sessions: int
    federal_seats: int
    federal_budget_rub: int
    region_list: list[NationRegion] = Field(description="the regions of regions.csv, in its order")


class NationPlanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "params": {"time_limit_s": 120, "pinned": [
            {"region_id": "R70", "teacher_id": "T00017", "kind": "program", "resource_id": "FED001-S1"}]}}]})

    params: dict = Field(default_factory=dict, description="one parameter object for the nation (docs/parameters.md); "
                                                           "`pinned` and `forbidden` entries carry a `region_id`")
