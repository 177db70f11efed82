"""Plan parameters (SPEC §3): one JSON object for the CLI (--params FILE) and the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .problems import InputError, Problem

Kind = Literal["mentor", "internship", "program"]
KINDS: tuple[str, ...] = ("mentor", "internship", "program")


class AssignmentRef(BaseModel):
    """A (teacher, kind, resource) triple: resource is a mentor id or a session id."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    teacher_id: str = Field(min_length=1, max_length=200)
    kind: Kind
    resource_id: str = Field(min_length=1, max_length=200)


class ReachedFloor(BaseModel):
    """`min_reached_share`: per group, the least share (0..1) of its teachers with need to be reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    low_results: float | None = Field(None, ge=0, le=1, description="teachers of low_results schools")
    due: float | None = Field(None, ge=0, le=1, description="teachers due for training (SPEC §3)")

    def active(self) -> dict[str, float]:
        """The groups with a floor above 0."""
        return {group: share for group, share in (("low_results", self.low_results), ("due", self.due))
                if share}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "deficit_threshold": 70, "low_results_priority": 1.5, "rub_per_point": 100000,
        "max_travel_minutes": 180, "time_limit_s": 30,
        "pinned": [{"teacher_id": "T00001", "kind": "mentor", "resource_id": "MEN001"}],
    }]})

    deficit_threshold: float = Field(70, gt=0, le=100, description="a score below it is a deficit")
    low_results_priority: float = Field(1.5, ge=0, le=1000,
                                        description="need multiplier for teachers of low_results schools")
    training_due_years: int = Field(
        3, ge=0, le=100, description="a teacher is due when last_training_date is set and at least this many "
                                     "calendar years before period_end (273-FZ art. 47: every 3 years)")
    training_due_priority: float = Field(1.5, ge=0, le=1000, description="need multiplier for due teachers")
    rub_per_point: float = Field(100000, gt=0, le=1e12,
                                 description="roubles that one point of objective is worth (cost penalty)")
    max_travel_minutes: float = Field(180, ge=0, le=1e6, description="longest trip to an in-person activity")
    max_internships: int = Field(1, ge=0, le=100, description="internship sessions per teacher")
    max_programs: int = Field(2, ge=0, le=100, description="program sessions per teacher")
    mentor_from_other_school: bool = Field(True, description="a mentor never mentors at their own school")
    time_limit_s: float = Field(60, gt=0, le=86400,
                                description="wall-clock limit of the whole request, seconds: from the command's start "
                                            "or the API's acceptance of the plan to the last plan file written")
    gap_limit: float = Field(1e-4, ge=0, lt=1, description="the solve stops once its proved gap is at most this")
    pinned: list[AssignmentRef] = Field(default_factory=list, max_length=1_000_000,
                                        description="assignments the plan must contain")
    forbidden: list[AssignmentRef] = Field(default_factory=list, max_length=1_000_000,
                                           description="assignments the plan must not contain")
    min_reached_share: ReachedFloor = Field(
        default_factory=ReachedFloor,
        description="hard floor per group on the share of its teachers with need who get at least one "
                    "assignment; met as far as the rules allow, the shortfall and its price reported (extension)")
    workers: int = Field(2, ge=1, le=64, description="solver threads (extension)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random seed of the solver (extension)")
    subsolver: Literal["highs", "cp-sat"] = Field(
        "highs", description="exact solver of the whole model and of neighbourhoods: HiGHS' MIP (measured "
                             "better on these models) or OR-Tools CP-SAT, warm-started (extension)")


def params_from_dict(data: dict | None, source: str = "params") -> Params:
    try:
        return Params.model_validate(data or {})
    except ValidationError as error:
        raise InputError([
            Problem(file=source, column=".".join(str(p) for p in e["loc"]), message=e["msg"], code=e["type"],
                    value=None if isinstance(e.get("input"), (dict, list)) else str(e.get("input")))
            for e in error.errors()
        ], title="Ошибки в параметрах плана") from None


def load_params(path: str | Path | None) -> Params:
    if path is None:
        return Params()
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([Problem(file=path.name, message="файл параметров не найден", code="not_found")],
                         title="Ошибки в параметрах плана") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([Problem(file=path.name, message=f"некорректный JSON: {exc}", code="bad_json")],
                         title="Ошибки в параметрах плана") from None
    if not isinstance(data, dict):
        raise InputError([Problem(file=path.name, message="ожидается объект JSON", code="bad_json")],
                         title="Ошибки в параметрах плана")
    return params_from_dict(data, path.name)
