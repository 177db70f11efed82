"""Tiny hand-made regions for rule tests: two municipalities 100 minutes apart, three schools,
two competencies, and whatever resources a test adds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from oracle import FILES, OPTIONAL

PERIOD = ("2026-09-01", "2027-05-31")

# The SPEC §2 columns as the independent oracle reads them.
HEADERS = FILES


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
        rows = base.get(name, [])
        if rows and max(len(r) for r in rows) > len(header):  # rows carry the optional columns (SPEC §2 v2)
            header = header + OPTIONAL[name]
            rows = [tuple(r) + ("",) * (len(header) - len(r)) for r in rows]
        pd.DataFrame(rows, columns=header).to_csv(folder / f"{name}.csv", index=False)
    return folder


def program(pid, weight=0.9, competency="K1", hours=36, price=10000, fmt="online") -> dict:
    """Tables of one program addressing one competency (its sessions are added by the test)."""
    return dict(programs=[(pid, f"R-{pid}", "АИРО", f"Программа {pid}", fmt, hours, price)],
                program_competencies=[(pid, competency, weight)])


def merge(*parts: dict) -> dict:
    """Table rows of several parts, concatenated per table."""
    out: dict[str, list] = {}
    for part in parts:
        for key, rows in part.items():
            out.setdefault(key, []).extend(rows)
    return out
