"""need(t, c) exactly as SPEC §5, and the due status of SPEC §3 (v2)."""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np

from .params import Params
from .region import RegionData


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` years earlier; 29 February becomes 28 February in a common year."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def due_cutoff(period_end: dt.date, years: int) -> dt.date:
    """The latest last-training date that makes a teacher due: the latest day whose N-th anniversary
    falls on or before period_end ("at least N years before"). A term in years ends on the same month
    and day N years later, on 28 February when that day is a 29 February of a common year (Civil Code
    art. 192): so when period_end is 28 February of a common year, 29 February N years earlier counts."""
    cutoff = years_before(period_end, years)
    if period_end.month == 2 and period_end.day == 28 and years and calendar.isleap(cutoff.year) \
            and not calendar.isleap(period_end.year):
        return cutoff.replace(day=29)
    return cutoff


def training_due(region: RegionData, params: Params) -> np.ndarray:
    """Per teacher: last_training_date is set and on or before the cutoff (due_cutoff)."""
    last = region.teachers.last_training
    if last is None:
        return np.zeros(len(region.teachers), dtype=bool)
    return (last >= 0) & (last <= due_cutoff(region.period_end, params.training_due_years).toordinal())


def teacher_priority(region: RegionData, params: Params) -> np.ndarray:
    """prio(t): low_results_priority for teachers of low_results schools, times training_due_priority for
    due teachers."""
    low = region.schools.low_results[region.teachers.school]
    return (np.where(low, params.low_results_priority, 1.0)
            * np.where(training_due(region, params), params.training_due_priority, 1.0))


def deficit_gaps(scores: np.ndarray, threshold: float) -> np.ndarray:
    """max(0, threshold - score) / threshold; a missing score is no need."""
    return np.nan_to_num(np.maximum(0.0, threshold - scores) / threshold, nan=0.0)


def need_matrix(region: RegionData, params: Params) -> np.ndarray:
    """need(t, c) = prio(t) * max(0, threshold - score(t, c)) / threshold; a missing score is no need."""
    return deficit_gaps(region.teachers.scores, params.deficit_threshold) * teacher_priority(region, params)[:, None]
