"""The national preset `russia` (SPEC §7): 85 federal subjects on their real towns, tied by a federal layer.

    generate_nation("out/russia", scale=0.02)   # a 2% nation: ~21,000 teachers in 85 regions

Each region is a bundle of the region generator (datasets.generator) on its own real towns from
data/russian-towns.csv (hflabs/city, CC BY-SA 4.0: see README.md) plus synthetic rural districts
around its capital; teachers in proportion to the region's town population (Russia: ~1.06 million
teachers), ~7% of schools of the «500+» programme. The federal layer echoes the Academy of the
Ministry of Education: online courses with national seats, a few offline ones in the centres of the
federal districts, a federal budget that does not cover every seat, and regional quotas for about
half of the regions, split by population. Everything but the towns is synthetic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .generator import apportion, generate_frames, write_frames
from .presets import ACADEMY, COMP_IDS, COMPETENCIES, PERIOD_END, PERIOD_START, PRESETS

TOWNS_FILE = Path(__file__).resolve().parent / "data" / "russian-towns.csv"
RUSSIA_TEACHERS = 1_060_000
MIN_REGION_TEACHERS = 20
# Federal layer at scale 1 (seats and money scale with the nation).
ONLINE_PROGRAMS = 12
OFFLINE_PROGRAMS = 6
ONLINE_SEATS_SHARE = 0.03  # national online seats per teacher
OFFLINE_SEATS_SHARE = 0.004
BUDGET_COVER = 0.6  # the federal budget pays for this share of all federal seats at their price
QUOTA_REGIONS_SHARE = 0.5
FEDERAL_CENTRES = ("Москва", "Санкт-Петербург", "Новосибирск", "Екатеринбург", "Казань", "Ростов-на-Дону",
                   "Хабаровск", "Пятигорск")
_KIND_NAMES = {"обл": "{} область", "край": "{} край", "Респ": "Республика {}", "АО": "{} автономный округ",
               "Аобл": "{} автономная область", "г": "г. {}", "Чувашия": "Чувашская Республика"}


def regions_table() -> pd.DataFrame:
    """One row per federal subject: full name, federal district, population of its towns, its towns."""
    towns = pd.read_csv(TOWNS_FILE)
    rows = []
    for region, group in towns.groupby("region", sort=True):
        group = group.sort_values(["capital_marker", "population"], ascending=False, kind="stable")
        kind = group["region_type"].iloc[0]
        rows.append({"region": region, "name": _KIND_NAMES.get(kind, "{}").format(region),
                     "federal_district": group["federal_district"].iloc[0], "population": int(group["population"].sum()),
                     "towns": list(zip(group["city"], group["lat"], group["lon"], group["population"].astype(int)))})
    return pd.DataFrame(rows)


def generate_nation(out_dir: str | Path, scale: float = 0.02, seed: int = 0) -> Path:
    """Writes nation.json, regions.csv, the federal files and regions/<region_id>/ bundles."""
    if not 0 < scale <= 1:
        raise ValueError("scale must be in (0, 1]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    table = regions_table()
    teachers = apportion(int(round(RUSSIA_TEACHERS * scale)), table["population"], minimum=MIN_REGION_TEACHERS)
    region_rows, capitals = [], {}
    for i, row in table.iterrows():
        region_id = f"R{i + 1:02d}"
        preset = region_preset(table, i)
        frames, meta = generate_frames(preset, seed=seed * 1000 + i, teachers=int(teachers[i]))
        meta["preset"] = "russia"
        write_frames(frames, meta, out / "regions" / region_id)
        region_rows.append((region_id, row["name"], f"regions/{region_id}"))
        municipalities = frames["municipalities"]
        for town in row["towns"]:  # the federal centres among the towns the region kept
            kept = municipalities.loc[municipalities["name"] == f"г. {town[0]}", "municipality_id"]
            if town[0] in FEDERAL_CENTRES and len(kept):
                capitals[town[0]] = (region_id, kept.iloc[0])
    n_teachers = int(teachers.sum())
    programs, links, sessions = [], [], []
    term_starts = pd.date_range(PERIOD_START, PERIOD_END, freq="W-MON")
    for p in range(ONLINE_PROGRAMS + OFFLINE_PROGRAMS):
        online = p < ONLINE_PROGRAMS
        program_id = f"FED{p + 1:03d}"
        main = COMP_IDS[p % len(COMP_IDS)]
        hours = int(rng.choice([36, 72] if online else [36, 72, 108]))
        price = int(rng.integers(8, 25) * 1000) if online else int(rng.integers(25, 45) * 1000)
        programs.append((program_id, f"ФЕД-{2026}-{p + 1:04d}", ACADEMY,
                         f"{'Онлайн-курс' if online else 'Очный курс'} Академии: {_competency_name(main)}",
                         "online" if online else "offline", hours, price))
        links.append((program_id, main, round(float(rng.uniform(0.6, 1.0)), 2)))
        other = COMP_IDS[(p * 7 + 3) % len(COMP_IDS)]
        if other != main:
            links.append((program_id, other, round(float(rng.uniform(0.2, 0.5)), 2)))
        if online:
            per_program = ONLINE_SEATS_SHARE * n_teachers / ONLINE_PROGRAMS
            for k in range(2):
                start = term_starts[int(rng.integers(0, len(term_starts) - 10))]
                seats = max(2, int(round(per_program / 2)))
                sessions.append((f"{program_id}-S{k + 1}", program_id, start.date().isoformat(),
                                 (start + pd.Timedelta(days=int(rng.integers(20, 60)))).date().isoformat(), seats,
                                 "", ""))
        else:
            centres = [c for c in FEDERAL_CENTRES if c in capitals]
            centre = centres[p % len(centres)]
            region_id, municipality = capitals[centre]
            start = term_starts[int(rng.integers(0, len(term_starts) - 2))]
            seats = max(2, int(round(OFFLINE_SEATS_SHARE * n_teachers / OFFLINE_PROGRAMS)))
            sessions.append((f"{program_id}-S1", program_id, start.date().isoformat(),
                             (start + pd.Timedelta(days=4)).date().isoformat(), seats, region_id, municipality))
    price_of = {p[0]: p[6] for p in programs}
    all_seats_rub = sum(s[4] * price_of[s[1]] for s in sessions)
    budget_rub = int(BUDGET_COVER * all_seats_rub) // 1000 * 1000
    budget = [("federal", "", budget_rub)]
    shares = table["population"].to_numpy(float) / table["population"].sum()
    for i in np.flatnonzero(rng.random(len(table)) < QUOTA_REGIONS_SHARE):
        budget.append(("region", region_rows[i][0], int(1.5 * budget_rub * shares[i]) // 1000 * 1000))
    _write(out, "regions.csv", ["region_id", "name", "folder"], region_rows)
    _write(out, "federal_programs.csv", ["program_id", "registry_id", "provider", "name", "format", "hours",
                                         "price_rub"], programs)
    _write(out, "federal_program_competencies.csv", ["program_id", "competency_id", "weight"], links)
    _write(out, "federal_program_sessions.csv", ["session_id", "program_id", "start", "end", "seats", "region_id",
                                                 "municipality_id"], sessions)
    _write(out, "federal_budget.csv", ["scope", "scope_id", "amount_rub"], budget)
    (out / "nation.json").write_text(json.dumps({
        "name": "Российская Федерация (синтетический набор)", "period_start": PERIOD_START, "period_end": PERIOD_END,
        "preset": "russia", "scale": scale, "seed": seed, "teachers": n_teachers,
        "synthetic": "Синтетические данные; реальны только города (hflabs/city, CC BY-SA 4.0), см. datasets/README.md",
    }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out


def region_preset(table: pd.DataFrame, i: int):
    """The region generator's preset of region i at full size (its share of Russia's teachers)."""
    row = table.iloc[i]
    region_id = f"R{i + 1:02d}"
    full_teachers = max(MIN_REGION_TEACHERS, int(round(RUSSIA_TEACHERS * row["population"]
                                                       / table["population"].sum())))
    return dataclasses.replace(
        PRESETS["altai-krai"], name=f"russia-{region_id}", region_name=row["name"],
        description=f"Регион национального набора russia: {row['name']} ({row['federal_district']} ФО)",
        teachers=full_teachers, schools=max(1, full_teachers // 19), geo_seed=1000 + i,
        providers=((f"ИРО: {row['name']}", 0.6, f"{region_id}-ИРО"),
                   (f"Педагогический университет: {row['name']}", 0.25, f"{region_id}-ПУ"),
                   (ACADEMY, 0.15, f"{region_id}-ФР")),
        n_sites=max(4, full_teachers // 175), n_site_sessions=max(8, full_teachers // 80),
        n_programs=max(20, min(200, full_teachers // 100)),
        n_online_sessions=max(10, full_teachers // 150), n_offline_sessions=max(20, full_teachers // 64),
        extra={"towns": row["towns"], "rural": int(np.clip(len(row["towns"]) * 2, 4, 40)), "radius_km": 250.0})


def _competency_name(competency_id: str) -> str:
    return next(c[1] for c in COMPETENCIES if c[0] == competency_id)


def _write(out: Path, name: str, columns: list[str], rows: list[tuple]) -> None:
    pd.DataFrame(rows, columns=columns).to_csv(out / name, index=False, lineterminator="\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marshrut.datasets.nation", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--scale", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(generate_nation(a.out, a.scale, a.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
