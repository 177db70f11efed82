"""RegionData: a validated region, typed and indexed for the engine.

Inside the engine everything is an integer index into these arrays; string ids are kept only to
write plans. Dates are day numbers (`datetime.date.toordinal()`). -1 means "none" in index
arrays (an external mentor's teacher, an online session's municipality, a municipality without a
budget row).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Table:
    """A set of entities with string ids and a lookup from id to index."""

    ids: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {key: i for i, key in enumerate(self.ids)})

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Competencies(Table):
    names: tuple[str, ...]
    groups: tuple[str, ...]
    short_names: tuple[str, ...] | None  # optional `short_name` column, for profile names


@dataclass(frozen=True)
class Municipalities(Table):
    names: tuple[str, ...]
    lat: np.ndarray
    lon: np.ndarray


@dataclass(frozen=True)
class Schools(Table):
    names: tuple[str, ...]
    municipality: np.ndarray  # int
    low_results: np.ndarray  # bool


@dataclass(frozen=True)
class Teachers(Table):
    school: np.ndarray  # int
    is_manager: np.ndarray  # bool
    voucher_rub: np.ndarray  # int64
    max_hours: np.ndarray  # float64
    scores: np.ndarray  # float64 (teachers x competencies), NaN where not measured
    # Day number of the last further training (optional `last_training_date`, SPEC §2 v2), -1 where
    # not given; None when the bundle has no such column.
    last_training: np.ndarray | None = None
    # Optional teachers.csv columns carried into the plan where the bundle has them (SPEC §6 v2):
    # TEACHER_DETAILS -> one string per teacher ("" where a row leaves it empty).
    details: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def detail(self, column: str, t: int) -> str:
        values = self.details.get(column)
        return values[t] if values is not None else ""


TEACHER_DETAILS = ("full_name", "position", "subject")


@dataclass(frozen=True)
class Mentors(Table):
    teacher: np.ndarray  # int, -1 for an external mentor
    school: np.ndarray
    capacity: np.ndarray
    remote: np.ndarray  # bool
    stipend_rub: np.ndarray  # int64
    hours_per_mentee: np.ndarray  # float64
    weights: np.ndarray  # (mentors x competencies)


@dataclass(frozen=True)
class Sites(Table):
    names: tuple[str, ...]
    school: np.ndarray
    weights: np.ndarray  # (sites x competencies)


@dataclass(frozen=True)
class SiteSessions(Table):
    site: np.ndarray
    start: np.ndarray  # day number
    end: np.ndarray
    seats: np.ndarray
    hours: np.ndarray
    cost_rub: np.ndarray


@dataclass(frozen=True)
class Programs(Table):
    registry_ids: tuple[str, ...]
    providers: tuple[str, ...]
    names: tuple[str, ...]
    online: np.ndarray  # bool
    hours: np.ndarray
    price_rub: np.ndarray
    weights: np.ndarray  # (programs x competencies)


@dataclass(frozen=True)
class ProgramSessions(Table):
    program: np.ndarray
    start: np.ndarray
    end: np.ndarray
    seats: np.ndarray
    municipality: np.ndarray  # -1 for online


@dataclass(frozen=True)
class Budgets:
    region_rub: int
    municipality_rub: np.ndarray  # int64 per municipality, -1 where no row exists


@dataclass(frozen=True)
class RegionData:
    name: str
    period_start: dt.date
    period_end: dt.date
    competencies: Competencies
    municipalities: Municipalities
    travel_minutes: np.ndarray  # (municipalities x municipalities), inf where unreachable
    schools: Schools
    teachers: Teachers
    mentors: Mentors
    sites: Sites
    site_sessions: SiteSessions
    programs: Programs
    program_sessions: ProgramSessions
    budgets: Budgets

    @cached_property
    def teacher_municipality(self) -> np.ndarray:
        return self.schools.municipality[self.teachers.school]

    def counts(self) -> dict[str, int]:
        return {
            "teachers": len(self.teachers),
            "schools": len(self.schools),
            "municipalities": len(self.municipalities),
            "competencies": len(self.competencies),
            "mentors": len(self.mentors),
            "mentor_places": int(self.mentors.capacity.sum()),
            "sites": len(self.sites),
            "site_sessions": len(self.site_sessions),
            "site_seats": int(self.site_sessions.seats.sum()),
            "programs": len(self.programs),
            "program_sessions": len(self.program_sessions),
            "program_seats": int(self.program_sessions.seats.sum()),
            "region_budget_rub": int(self.budgets.region_rub),
            "vouchers_rub": int(self.teachers.voucher_rub.sum()),
        }


def day(value: dt.date) -> int:
    return value.toordinal()


def date_of(day_number: int) -> dt.date:
    return dt.date.fromordinal(int(day_number))
