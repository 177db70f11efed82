"""Due teachers (SPEC §2, §3, §5 v2): the status from last_training_date, boundaries included, and the
need multiplier; the profiles still cluster unweighted deficits."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marshrut.engine import Params, load_bundle
from marshrut.engine.needs import due_cutoff, need_matrix, training_due
from marshrut.engine.plan import deficit_profiles
from oracle import BundleIndex, full_params
from tiny import tiny_bundle

D = dt.date.fromisoformat


@pytest.mark.parametrize("period_end, years, last, due", [
    ("2027-05-31", 3, "2024-05-31", True),  # exactly three years: due
    ("2027-05-31", 3, "2024-06-01", False),  # a day short of three years
    ("2027-05-31", 3, "2020-01-01", True),
    ("2027-05-31", 3, "2027-05-31", False),  # trained on the last day of the period
    ("2027-02-28", 3, "2024-02-29", True),  # a leap day's anniversary in a common year is 28 February
    ("2027-02-28", 3, "2024-03-01", False),
    ("2028-02-29", 3, "2025-02-28", True),
    ("2028-02-29", 3, "2025-03-01", False),
    ("2028-02-28", 4, "2024-02-28", True),
    ("2028-02-28", 4, "2024-02-29", False),  # its 4th anniversary is 29 February 2028, after the end
    ("2027-05-31", 1, "2026-05-31", True),
    ("2027-05-31", 1, "2026-06-01", False),
    ("2027-05-31", 0, "2027-05-31", True),  # 0 years: everyone with a date is due
])
def test_due_boundaries(period_end, years, last, due):
    assert (D(last) <= due_cutoff(D(period_end), years)) is due


def _region(tmp_path, last_dates, period_end="2027-05-31"):
    teachers = [(f"T{i}", "S1", "teacher", 50000, 144, d) for i, d in enumerate(last_dates)]
    folder = tiny_bundle(tmp_path, teachers=teachers, diagnostics=[(f"T{i}", "K1", 35) for i in range(len(teachers))])
    return folder, load_bundle(folder)


def test_due_status_and_need_agree_with_the_oracle(tmp_path):
    """The tiny period ends 2027-05-31: due when trained on or before 2024-05-31."""
    dates = ["2024-05-31", "2024-06-01", "", "2019-09-01", "2027-05-31", "2024-05-30"]
    folder, region = _region(tmp_path, dates)
    assert training_due(region, Params()).tolist() == [True, False, False, True, False, True]
    ix = BundleIndex(folder)
    for params in ({}, {"training_due_years": 1, "training_due_priority": 3.0}, {"training_due_years": 0}):
        need = need_matrix(region, Params(**params))
        p = full_params(params)
        for i in range(len(dates)):
            assert need[i, 0] == pytest.approx(ix.need(f"T{i}", "K1", p)), (params, i)
    base = 35 / 70
    need = need_matrix(region, Params(training_due_priority=2.0))
    assert need[:, 0].tolist() == pytest.approx([2 * base, base, base, 2 * base, base, 2 * base])


def test_due_and_low_results_multiply(tmp_path):
    folder = tiny_bundle(tmp_path, schools=[("S1", "Школа 1", "A", 1), ("S2", "Школа 2", "A", 0),
                                            ("S3", "Школа 3", "B", 0)],
                         teachers=[("T1", "S1", "teacher", 0, 144, "2020-01-01"),
                                   ("T2", "S1", "teacher", 0, 144, "2026-01-01")],
                         diagnostics=[("T1", "K1", 0), ("T2", "K1", 0)])
    need = need_matrix(load_bundle(folder), Params(low_results_priority=1.5, training_due_priority=2.0))
    assert need[:, 0].tolist() == pytest.approx([3.0, 1.5])


def test_a_bundle_without_the_column_has_nobody_due(tmp_path):
    folder = tiny_bundle(tmp_path)
    region = load_bundle(folder)
    assert region.teachers.last_training is None
    assert not training_due(region, Params()).any()


def test_profiles_cluster_unweighted_deficits(tmp_path):
    """Clustering sees the deficits, not the priorities: doubling the due multiplier changes nothing."""
    dates = ["2019-01-01", "2026-01-01"] * 10
    teachers = [(f"T{i}", "S1", "teacher", 0, 144, d) for i, d in enumerate(dates)]
    rng = np.random.default_rng(3)
    diagnostics = [(f"T{i}", k, int(rng.integers(0, 100))) for i in range(len(dates)) for k in ("K1", "K2")]
    region = load_bundle(tiny_bundle(tmp_path, teachers=teachers, diagnostics=diagnostics))
    one = deficit_profiles(region, Params(training_due_priority=1.0))
    five = deficit_profiles(region, Params(training_due_priority=5.0))
    assert one.labels.tolist() == five.labels.tolist()
    assert one.table == five.table


@pytest.mark.parametrize("seed", range(6))
def test_engine_optimum_with_due_teachers_equals_the_exact_milp(tmp_path, seed):
    from marshrut.engine import plan_region
    from oracle import check_plan, exact_optimum, objective, random_bundle

    rng = np.random.default_rng(500 + seed)
    folder = random_bundle(500 + seed, tmp_path / "b", teachers=int(rng.integers(6, 16)),
                           tight=float(rng.uniform(0.3, 0.9)), due_share=float(rng.uniform(0.2, 0.5)))
    params = {"training_due_priority": float(rng.choice([1.5, 2.5, 4.0])),
              "training_due_years": int(rng.choice([2, 3])), "low_results_priority": float(rng.choice([1.0, 1.5]))}
    region = load_bundle(folder)
    assert training_due(region, Params(**params)).any()
    files = plan_region(region, Params(time_limit_s=10, **params))
    assert check_plan(folder, params, files.assignments) == []
    assert files.summary["objective"] == pytest.approx(objective(folder, params, files.assignments), abs=1e-9)
    exact, _ = exact_optimum(folder, params)
    assert files.summary["objective"] == pytest.approx(exact, abs=1e-6)
    assert files.summary["bound"] >= exact - 1e-9
