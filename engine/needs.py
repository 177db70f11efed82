"""need(t, c) exactly as SPEC §5."""

from __future__ import annotations

import numpy as np

from .params import Params
from .region import RegionData


def teacher_priority(region: RegionData, params: Params) -> np.ndarray:
    """prio(t): low_results_priority for teachers of low_results schools, else 1."""
    low = region.schools.low_results[region.teachers.school]
    return np.where(low, params.low_results_priority, 1.0)


def need_matrix(region: RegionData, params: Params) -> np.ndarray:
    """need(t, c) = prio(t) * max(0, threshold - score(t, c)) / threshold; a missing score is no need."""
    threshold = params.deficit_threshold
    gap = np.maximum(0.0, threshold - region.teachers.scores) / threshold
    gap = np.nan_to_num(gap, nan=0.0)
    return gap * teacher_priority(region, params)[:, None]
