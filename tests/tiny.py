"""Tiny hand-made regions for rule tests: two municipalities 100 minutes apart, three schools,
two competencies, and whatever resources a test adds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

PERIOD = ("2026-09-01", "2027-05-31")

HEADERS = {
    "competencies": ["competency_id", "name", "group"],
    "municipalities": ["municipality_id", "name", "lat", "lon"],
    "roads": ["from_municipality", "to_municipality", "minutes"],
    "schools": ["school_id", "name", "municipality_id", "low_results"],
    "teachers": ["teacher_id", "school_id", "role", "voucher_rub", "max_hours"],
    "diagnostics": ["teacher_id", "competency_id", "score"],
    "mentors": ["mentor_id", "teacher_id", "school_id", "capacity", "remote", "stipend_rub", "hours_per_mentee"],
    "mentor_competencies": ["mentor_id", "competency_id", "weight"],
    "sites": ["site_id", "school_id", "name"],
    "site_competencies": ["site_id", "competency_id", "weight"],
    "site_sessions": ["session_id", "site_id", "start", "end", "seats", "hours", "cost_rub"],
    "programs": ["program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"],
    "program_competencies": ["program_id", "competency_id", "weight"],
    "program_sessions": ["session_id", "program_id", "start", "end", "seats", "municipality_id"],
    "budgets": ["scope", "scope_id", "amount_rub"],
}


def tiny_bundle(folder: Path, **tables: list[tuple]) -> Path:
    """Writes a bundle; `tables` add rows (tuples in header order) or replace the base ones."""
    base: dict[str, list[tuple]] = {
        "competencies": [("K1", "Читательская грамотность", "fl"), ("K2", "Оценивание", "pro")],
        "municipalities": [("A", "Город А", 53.3, 83.7), ("B", "Город Б", 52.5, 85.2)],
        "roads": [("A", "B", 100)],
        "schools": [("S1", "Школа 1", "A", 0), ("S2", "Школа 2", "A", 0), ("S3", "Школа 3", "B", 0)],
        "teachers": [("T1", "S1", "teacher", 50000, 144)],
        "diagnostics": [("T1", "K1", 35)],
        "budgets": [("region", "", 1_000_000)],
    }
    base.update(tables)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "region.json").write_text(json.dumps({"name": "Тест", "period_start": PERIOD[0],
                                                    "period_end": PERIOD[1]}, ensure_ascii=False), encoding="utf-8")
    for name, header in HEADERS.items():
        pd.DataFrame(base.get(name, []), columns=header).to_csv(folder / f"{name}.csv", index=False)
    return folder
