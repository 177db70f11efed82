"""Seeded generator of sample region bundles (SPEC §2).

    generate_bundle("altai-krai", "out/altai", seed=0)          # writes the folder
    frames, region = generate_frames("krymsky-district", seed=1)  # the same, in memory

Output is byte-identical for the same (preset, seed, teachers). Everything random comes from
``numpy.random.default_rng(seed)`` (and, for the map of synthetic municipalities, from a fixed
per-preset generator, so a region keeps its geography across seeds). All per-teacher work is
vectorised with numpy; the only Python loops run over municipalities, sites, mentors and
programs, never over teachers x resources.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .geography import (ALTAI_OUTLINE, KRASNOYARSK_MIDDLE, KRASNOYARSK_NORTH, KRASNOYARSK_SOUTH, TOWNS,
                        build_roads, place_around, place_in_polygon)
from .presets import (AUDIENCES, COMP_IDS, COMP_INDEX, COMPETENCIES, DIRECTIONS, KRYMSKY_SETTLEMENTS,
                      LEVELS, MANAGEMENT, PERIOD_END, PERIOD_START, PRESETS, PROFILES, PROGRAM_MAIN_WEIGHTS,
                      PROGRAM_TEMPLATES, RELATED, SESSION_FORMS_LONG, SESSION_FORMS_SHORT, SUBJECTS, THEMES,
                      Municipality, Preset)

__all__ = ["PRESETS", "FILE_COLUMNS", "generate_bundle", "generate_frames", "build_municipalities"]

GENERATOR_VERSION = "1"
DEFICIT_THRESHOLD = 70

# SPEC §2 columns (in order) followed by the documented extra columns of this generator.
FILE_COLUMNS: dict[str, tuple[list[str], list[str]]] = {
    "competencies": (["competency_id", "name", "group"], ["short_name"]),
    "municipalities": (["municipality_id", "name", "lat", "lon"], ["kind", "real", "population"]),
    "roads": (["from_municipality", "to_municipality", "minutes"], []),
    "schools": (["school_id", "name", "municipality_id", "low_results"], ["leader"]),
    "teachers": (["teacher_id", "school_id", "role", "voucher_rub", "max_hours"], ["association"]),
    "diagnostics": (["teacher_id", "competency_id", "score"], []),
    "mentors": (["mentor_id", "teacher_id", "school_id", "capacity", "remote", "stipend_rub", "hours_per_mentee"],
                ["affiliation"]),
    "mentor_competencies": (["mentor_id", "competency_id", "weight"], []),
    "sites": (["site_id", "school_id", "name"], ["direction"]),
    "site_competencies": (["site_id", "competency_id", "weight"], []),
    "site_sessions": (["session_id", "site_id", "start", "end", "seats", "hours", "cost_rub"], ["title"]),
    "programs": (["program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"], []),
    "program_competencies": (["program_id", "competency_id", "weight"], []),
    "program_sessions": (["session_id", "program_id", "start", "end", "seats", "municipality_id"], []),
    "budgets": (["scope", "scope_id", "amount_rub"], []),
    "_planted_profiles": (["teacher_id", "profile"], []),
}
FLOAT_FORMAT = {"municipalities": "%.6f", "mentor_competencies": "%.2f", "site_competencies": "%.2f",
                "program_competencies": "%.2f"}

# School year calendar: Mondays of the autumn (2026-09-07 .. 2026-12-21) and spring
# (2027-01-11 .. 2027-05-24) terms; winter holidays 2026-12-26 .. 2027-01-10 have no sessions.
AUTUMN_MONDAYS = np.arange(np.datetime64("2026-09-07"), np.datetime64("2026-12-22"), 7)
SPRING_MONDAYS = np.arange(np.datetime64("2027-01-11"), np.datetime64("2027-05-25"), 7)
ALL_MONDAYS = np.concatenate([AUTUMN_MONDAYS, SPRING_MONDAYS])


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _ids(prefix: str, n: int, width: int) -> np.ndarray:
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def apportion(total: int, weights, minimum: int = 0) -> np.ndarray:
    """Split an integer total in proportion to weights (largest remainder), each part >= minimum."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    base = np.full(n, minimum, dtype=np.int64)
    rest = int(total) - minimum * n
    if rest <= 0:
        return base
    if w.sum() <= 0:
        w = np.ones(n)
    quota = rest * w / w.sum()
    part = np.floor(quota).astype(np.int64)
    left = rest - int(part.sum())
    if left > 0:
        order = np.argsort(-(quota - part), kind="stable")
        part[order[:left]] += 1
    return base + part


def _apportion_at_least_one(total: int, weights) -> np.ndarray:
    """Like apportion, but every part >= 1 (total >= number of parts): a part rounded to zero
    takes one from the part that is most above its quota."""
    w = np.asarray(weights, dtype=float)
    parts = apportion(total, w)
    quota = total * w / w.sum()
    for i in np.flatnonzero(parts == 0):
        donor = int(np.argmax(np.where(parts > 1, parts - quota, -np.inf)))
        parts[donor] -= 1
        parts[i] = 1
    return parts


def _scaled(base: int, f: float, minimum: int) -> int:
    return max(minimum, int(round(base * f)))


def _scaled_catalogue(base: int, f: float, minimum: int) -> int:
    """Programs and online sessions: proportional up to the preset's size, sqrt-growth above it
    (a catalogue is shared by the whole region; linear growth would push every teacher's option
    count into the thousands)."""
    return max(minimum, int(round(base * (f if f <= 1 else np.sqrt(f)))))


def _round_to(x, step):
    return (np.rint(np.asarray(x, dtype=float) / step) * step).astype(np.int64)


def _iso(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)


def _weights(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    return np.round(rng.uniform(lo, hi, n), 2)


# ------------------------------------------------------------------------------------------------
# geography
# ------------------------------------------------------------------------------------------------
def build_municipalities(preset: Preset) -> list[Municipality]:
    """The municipalities of a preset at full size (fixed for the preset, independent of the seed)."""
    rng = np.random.default_rng(preset.geo_seed)
    out: list[Municipality] = []

    def town(row, component=0, weight=1.0, kind=None):
        name, gen, lat, lon, pop = row
        k = kind or ("city" if pop >= 100_000 else "town")
        return Municipality(f"г. {name}", round(lat, 6), round(lon, 6), pop, k, True, component, f"г. {gen}", weight)

    if preset.name == "tomsk-school-44":
        tomsk, seversk, asino = TOWNS["tomsk"]
        out = [town(tomsk), town(seversk, weight=0.0), town(asino, weight=0.0)]
    elif preset.name == "krymsky-district":
        krymsk, krasnodar = TOWNS["krasnodar"]
        out.append(town(krymsk))
        pts = place_around(rng, len(KRYMSKY_SETTLEMENTS), (krymsk[2], krymsk[3]), 7.0, 28.0)
        for name, (lat, lon) in zip(KRYMSKY_SETTLEMENTS, pts):
            pop = int(_round_to(rng.uniform(3000, 9000), 100))
            out.append(Municipality(f"{name} сельское поселение", lat, lon, pop, "rural", False, 0,
                                    f"({name} с. п.)", 1.0))
        out.append(town(krasnodar, weight=0.0, kind="venue"))
    elif preset.name == "altai-krai":
        rows = TOWNS["altai"]
        out = [town(r) for r in rows]
        pts = place_in_polygon(rng, 48, ALTAI_OUTLINE, [(r[2], r[3]) for r in rows], 35.0)
        for k, (lat, lon) in enumerate(pts, 1):
            pop = int(_round_to(rng.uniform(8000, 30000), 100))
            out.append(Municipality(f"Сельский район {k:02d}", lat, lon, pop, "rural", False, 0,
                                    f"(Сельский район {k:02d})", 1.4))
    elif preset.name == "krasnoyarsk-krai":
        rows = TOWNS["krasnoyarsk"]
        north_road = {"Норильск", "Дудинка"}  # joined by their own road, not to the rest of the krai
        for r in rows:
            if r[0] in north_road:
                out.append(town(r, component=1))
            elif r[0] == "Игарка":
                out.append(town(r, component=-1))
            else:
                out.append(town(r))
        existing = [(r[2], r[3]) for r in rows]
        south = place_in_polygon(rng, 26, KRASNOYARSK_SOUTH, existing, 40.0)
        middle = place_in_polygon(rng, 8, KRASNOYARSK_MIDDLE, existing + south, 90.0)
        north = place_in_polygon(rng, 5, KRASNOYARSK_NORTH, existing + south + middle, 150.0)
        k = 0
        for pts, lo, hi in ((south, 12000, 35000), (middle, 5000, 18000)):
            for lat, lon in pts:
                k += 1
                pop = int(_round_to(rng.uniform(lo, hi), 100))
                out.append(Municipality(f"Сельский район {k:02d}", lat, lon, pop, "rural", False, 0,
                                        f"(Сельский район {k:02d})", 1.4))
        for j, (lat, lon) in enumerate(north, 1):
            pop = int(_round_to(rng.uniform(2000, 8000), 100))
            out.append(Municipality(f"Северный район {j:02d}", lat, lon, pop, "north", False, -1,
                                    f"(Северный район {j:02d})", 1.4))
    else:  # pragma: no cover - PRESETS and this function are kept in step
        raise ValueError(preset.name)
    return out


# ------------------------------------------------------------------------------------------------
# the generator
# ------------------------------------------------------------------------------------------------
def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


def generate_frames(preset: str, seed: int = 0, teachers: int | None = None
                    ) -> tuple[dict[str, pd.DataFrame], dict]:
    """All files of a bundle as DataFrames (file stem -> frame, SPEC columns first) and region.json."""
    P = _preset(preset)
    n_teachers = P.teachers if teachers is None else int(teachers)
    if n_teachers < 1:
        raise ValueError("teachers must be a positive number")
    f = n_teachers / P.teachers
    rng = np.random.default_rng(seed)
    frames: dict[str, pd.DataFrame] = {}

    # ---- municipalities and schools -------------------------------------------------------------
    muns_all = build_municipalities(P)
    n_teacher_schools = _scaled(P.schools, f, 1)
    teacher_muns = [i for i, m in enumerate(muns_all) if m.teacher_weight > 0]
    if n_teacher_schools < len(teacher_muns):  # a small bundle keeps the most populous municipalities
        order = sorted(teacher_muns, key=lambda i: (-muns_all[i].population, i))
        teacher_muns = sorted(order[:n_teacher_schools])
    host_names = {h[0] for h in P.host_schools}
    keep = [i for i, m in enumerate(muns_all)
            if i in set(teacher_muns) or m.kind == "venue" or m.name in host_names]
    muns = [muns_all[i] for i in keep]
    M = len(muns)
    mun_ids = _ids("MUN", M, 2)
    mun_pop = np.array([m.population for m in muns], dtype=float)
    tw = np.array([m.population * m.teacher_weight for m in muns], dtype=float)
    has_teachers = tw > 0

    t_per_mun = np.zeros(M, dtype=np.int64)
    t_per_mun[has_teachers] = apportion(n_teachers, tw[has_teachers], minimum=1)
    avg = np.array([P.avg_school_size[0] if m.kind in ("city", "town") else P.avg_school_size[1] for m in muns])
    s_per_mun = np.zeros(M, dtype=np.int64)
    s_per_mun[has_teachers] = _apportion_at_least_one(n_teacher_schools, (t_per_mun / avg)[has_teachers])
    s_per_mun = np.minimum(s_per_mun, t_per_mun)

    # schools: teacher schools per municipality, then host schools (no teachers of their own)
    sch_mun, sch_size, sch_host = [], [], []
    for m in range(M):
        n = int(s_per_mun[m])
        if n:
            w = rng.lognormal(0.0, 0.5, n)
            sizes = apportion(int(t_per_mun[m]), w, minimum=min(3, int(t_per_mun[m]) // n))
            sch_mun += [m] * n
            sch_size += sizes.tolist()
            sch_host += [False] * n
        for hname, count, _ in P.host_schools:
            if muns[m].name == hname:
                c = _scaled(count, f, 1)
                sch_mun += [m] * c
                sch_size += [0] * c
                sch_host += [True] * c
    sch_mun = np.array(sch_mun, dtype=np.int64)
    sch_size = np.array(sch_size, dtype=np.int64)
    sch_host = np.array(sch_host, dtype=bool)
    S = len(sch_mun)
    school_ids = _ids("S", S, 4)
    kinds = np.array([muns[m].kind for m in sch_mun], dtype=object)
    urban = np.isin(kinds, ["city", "town"])

    # school type: gymnasium / lyceum in towns (large schools), basic school (ООШ) if rural and small
    u = rng.random(S)
    stype = np.where(urban & (u < 0.06), "gym", np.where(urban & (u < 0.10), "lyc", "sosh")).astype(object)
    stype[~urban & (sch_size < 10) & ~sch_host] = "oosh"
    fixed = list(P.fixed_school_names)
    reserved = {int(x) for name in fixed for x in re.findall(r"№ (\d+)", name)}
    numbers = np.zeros(S, dtype=np.int64)
    district_pool = P.name == "krymsky-district"  # Krymsky district numbers its schools district-wide
    scopes = [np.arange(S)] if district_pool else [np.flatnonzero(sch_mun == m) for m in range(M)]
    for idx in scopes:
        n = len(idx)
        if not n:
            continue
        top = max(n + 5, int(n * 1.7))
        pool = np.array([k for k in range(1, top + 1 + len(reserved)) if k not in reserved])
        numbers[idx] = np.sort(rng.choice(pool, n, replace=False))
    org_town = P.extra.get("org_town", "МАОУ" if P.name == "tomsk-school-44" else "МБОУ")
    org_rural = "МБОУ" if P.name == "krymsky-district" else "МКОУ"
    names = []
    for i in range(S):
        suf = muns[sch_mun[i]].school_suffix
        org = org_town if urban[i] else org_rural
        n = numbers[i]
        names.append({"gym": f"{org} «Гимназия № {n}» {suf}", "lyc": f"{org} «Лицей № {n}» {suf}",
                      "oosh": f"{org} ООШ № {n} {suf}"}.get(stype[i], f"{org} СОШ № {n} {suf}"))
    teacher_school_idx = np.flatnonzero(~sch_host)
    for k, name in enumerate(fixed[:len(teacher_school_idx)]):
        names[teacher_school_idx[k]] = name
        stype[teacher_school_idx[k]] = "fixed"

    # low results (500+ / ШНОР) and leader schools among schools with teachers
    low = np.zeros(S, dtype=bool)
    n_low = int(round(P.low_frac * len(teacher_school_idx)))
    cand = teacher_school_idx[~np.isin(stype[teacher_school_idx], ["gym", "lyc", "fixed"])]
    if n_low and len(cand):
        kw = np.where(kinds[cand] == "city", 1.0, np.where(kinds[cand] == "town", 2.0, 3.0))
        low[rng.choice(cand, min(n_low, len(cand)), replace=False, p=kw / kw.sum())] = True
    leader = sch_host.copy()
    n_lead = int(round(P.leader_frac * len(teacher_school_idx)))
    if not sch_host.any():
        n_lead = max(1, n_lead)  # sites and external mentors need at least one leader school
    cand = teacher_school_idx[~low[teacher_school_idx] & (stype[teacher_school_idx] != "fixed")]
    if n_lead and not len(cand):  # a tiny bundle: every school is low-results or fixed
        cand = teacher_school_idx
    if n_lead and len(cand):
        kw = np.where(np.isin(stype[cand], ["gym", "lyc"]), 5.0,
                      np.where(kinds[cand] == "city", 2.0, np.where(kinds[cand] == "town", 1.5, 0.6)))
        kw = kw * np.sqrt(np.maximum(sch_size[cand], 1))
        leader[rng.choice(cand, min(n_lead, len(cand)), replace=False, p=kw / kw.sum())] = True

    frames["schools"] = pd.DataFrame({
        "school_id": school_ids, "name": np.array(names, dtype=object), "municipality_id": mun_ids[sch_mun],
        "low_results": low.astype(np.int64), "leader": leader.astype(np.int64)})

    # ---- teachers ----------------------------------------------------------------------------
    N = int(sch_size.sum())
    t_school = np.repeat(np.arange(S), sch_size)
    teacher_ids = _ids("T", N, 6)
    first_of_school = np.concatenate([[0], np.cumsum(sch_size)[:-1]])
    pos_in_school = np.arange(N) - first_of_school[t_school]
    n_managers = np.maximum(1, np.floor(0.06 * sch_size + 0.5)).astype(np.int64)
    manager = pos_in_school < n_managers[t_school]
    assoc_names = np.array([a[0] for a in P.associations], dtype=object)
    assoc_p = np.array([a[1] for a in P.associations]); assoc_p /= assoc_p.sum()
    association = assoc_names[rng.choice(len(assoc_names), N, p=assoc_p)]
    max_hours = rng.choice(np.array([36, 48, 72, 108, 144]), N, p=[0.15, 0.2, 0.35, 0.15, 0.15])
    holds = rng.random(N) < P.voucher_share
    lo, hi = P.voucher_range
    voucher = np.where(holds, rng.integers(lo // 1000, hi // 1000 + 1, N) * 1000, 0)
    t_low = low[t_school]
    frames["teachers"] = pd.DataFrame({
        "teacher_id": teacher_ids, "school_id": school_ids[t_school],
        "role": np.where(manager, "manager", "teacher").astype(object),
        "voucher_rub": voucher.astype(np.int64), "max_hours": max_hours.astype(np.int64),
        "association": association})

    # ---- latent profiles and diagnostics -----------------------------------------------------
    C = len(COMP_IDS)
    prof_keys = list(P.profiles)
    K = len(prof_keys)
    prof_mask = np.zeros((K, C), dtype=bool)
    for k, key in enumerate(prof_keys):
        for c in PROFILES[key][1]:
            prof_mask[k, COMP_INDEX[c]] = True
    is_mgmt_prof = np.array([k == "management" for k in prof_keys])
    is_none_prof = np.array([k == "no_deficits" for k in prof_keys])
    base_p = np.where(is_none_prof, 0.16, np.where(is_mgmt_prof, 0.0, 1.0))
    base_p[~is_none_prof & ~is_mgmt_prof] = 0.84 / max(1, (~is_none_prof & ~is_mgmt_prof).sum())
    profile = np.zeros(N, dtype=np.int64)
    for is_mgr in (False, True):
        for is_low in (False, True):
            sel = np.flatnonzero((manager == is_mgr) & (t_low == is_low))
            if not len(sel):
                continue
            p = base_p.copy()
            if is_low:
                p[is_none_prof] *= 0.4
                p[np.array([k == "inclusive_at_risk" for k in prof_keys])] *= 2.0
            if is_mgr and is_mgmt_prof.any():
                p = p / p.sum() * 0.55
                p[is_mgmt_prof] = 0.45
            profile[sel] = rng.choice(K, len(sel), p=p / p.sum())

    high_mean = rng.uniform(75, 90, C)
    low_mean = rng.uniform(40, 55, (K, C))
    offset = rng.normal(0, 4, N)
    noise = rng.normal(0, 8, (N, C))
    in_prof = prof_mask[profile]
    score = np.where(in_prof, low_mean[profile], high_mean[None, :]) + offset[:, None] + noise
    # a secondary deficit for some teachers makes the clusters overlap a little
    extra = rng.random(N) < 0.2
    extra_c = rng.integers(0, C - 1, N)  # any competency but management (the last one)
    score[extra, extra_c[extra]] -= rng.uniform(15, 30, int(extra.sum()))
    score -= 8.0 * t_low[:, None]
    score += 3.0 * leader[t_school][:, None]
    score = np.clip(np.rint(score), 0, 100).astype(np.int64)
    measured = rng.random((N, C)) >= 0.03
    measured[:, MANAGEMENT] = manager
    rows, cols = np.nonzero(measured)
    comp_arr = np.array(COMP_IDS, dtype=object)
    frames["diagnostics"] = pd.DataFrame({
        "teacher_id": teacher_ids[rows], "competency_id": comp_arr[cols], "score": score[rows, cols]})
    frames["_planted_profiles"] = pd.DataFrame({
        "teacher_id": teacher_ids, "profile": np.array(prof_keys, dtype=object)[profile]})

    # ---- mentors -----------------------------------------------------------------------------
    n_men = _scaled(round(P.mentor_frac * P.teachers), f, 2)
    n_ext = int(round(P.mentor_external_frac * n_men))
    cand = np.flatnonzero(leader[t_school])
    n_int = min(n_men - n_ext, len(cand))
    n_ext = n_men - n_int
    mean_score = np.where(measured, score, 0).sum(1) / measured.sum(1)
    if n_int:
        w = np.exp((mean_score[cand] - 70) / 6.0)
        int_t = np.sort(rng.choice(cand, n_int, replace=False, p=w / w.sum()))
    else:
        int_t = np.zeros(0, dtype=np.int64)
    lead_idx = np.flatnonzero(leader)
    lw = mun_pop[sch_mun[lead_idx]] ** 0.5
    ext_school = rng.choice(lead_idx, n_ext, p=lw / lw.sum())
    men_school = np.concatenate([t_school[int_t], ext_school])
    men_teacher = np.concatenate([int_t, np.full(n_ext, -1)])
    affil = np.concatenate([np.full(n_int, "", dtype=object),
                            np.array(P.mentor_affiliations, dtype=object)[rng.integers(0, len(P.mentor_affiliations),
                                                                                       n_ext)]])
    order = np.lexsort((men_teacher < 0, men_school))
    men_school, men_teacher, affil = men_school[order], men_teacher[order], affil[order]
    mentor_ids = _ids("MEN", n_men, 3)
    capacity = rng.choice(np.arange(1, 6), n_men, p=[0.15, 0.3, 0.3, 0.15, 0.1])
    remote = rng.random(n_men) < 0.25
    stipend = np.where(rng.random(n_men) < 0.25, 0, rng.integers(6, 41, n_men) * 500)
    hpm = rng.choice(np.array([6, 12, 18, 24, 36]), n_men, p=[0.1, 0.3, 0.25, 0.2, 0.15])
    frames["mentors"] = pd.DataFrame({
        "mentor_id": mentor_ids,
        "teacher_id": np.where(men_teacher >= 0, teacher_ids[np.maximum(men_teacher, 0)], "").astype(object),
        "school_id": school_ids[men_school], "capacity": capacity.astype(np.int64),
        "remote": remote.astype(np.int64), "stipend_rub": stipend.astype(np.int64),
        "hours_per_mentee": hpm.astype(np.int64), "affiliation": affil})
    # competencies: an internal mentor's strongest competencies; an external one's specialities
    popularity = np.array([PROGRAM_MAIN_WEIGHTS[c] for c in COMP_IDS])
    key = np.where(men_teacher[:, None] >= 0,
                   np.where(measured[np.maximum(men_teacher, 0)], score[np.maximum(men_teacher, 0)], -1000.0),
                   rng.random((n_men, C)) * popularity * 60)
    key = key + rng.gumbel(0, 4, (n_men, C))
    k_men = rng.choice(np.arange(1, 5), n_men, p=[0.15, 0.35, 0.3, 0.2])
    rank = np.argsort(np.argsort(-key, axis=1, kind="stable"), axis=1, kind="stable")
    mrow, mcol = np.nonzero(rank < k_men[:, None])
    mw = np.where(rank[mrow, mcol] == 0, _weights(rng, len(mrow), 0.6, 1.0), _weights(rng, len(mrow), 0.3, 0.8))
    frames["mentor_competencies"] = pd.DataFrame({
        "mentor_id": mentor_ids[mrow], "competency_id": comp_arr[mcol], "weight": mw})

    # ---- internship sites and sessions --------------------------------------------------------
    n_sites = _scaled(P.n_sites, f, 1)
    lw = np.where(sch_host[lead_idx], 1.0, np.sqrt(np.maximum(sch_size[lead_idx], 1)))
    if n_sites <= len(lead_idx):
        site_school = rng.choice(lead_idx, n_sites, replace=False, p=lw / lw.sum())
    else:
        site_school = np.concatenate([lead_idx, rng.choice(lead_idx, n_sites - len(lead_idx), p=lw / lw.sum())])
    site_school = np.sort(site_school, kind="stable")
    if P.site_mode == "directions":
        site_dir = rng.permutation(np.arange(n_sites) % len(DIRECTIONS))
        site_title = [DIRECTIONS[d][0] for d in site_dir]
        site_comps = [DIRECTIONS[d][1] for d in site_dir]
    else:
        tw_ = np.array([t[3] for t in THEMES])
        th = rng.choice(len(THEMES), n_sites, p=tw_ / tw_.sum())
        site_dir = np.array([THEMES[t][0] for t in th])
        site_title = [THEMES[t][1] for t in th]
        site_comps = [THEMES[t][2] for t in th]
    site_ids = _ids("SITE", n_sites, 2)
    frames["sites"] = pd.DataFrame({
        "site_id": site_ids, "school_id": school_ids[site_school],
        "name": np.array([f"{P.site_prefix} «{t}»" for t in site_title], dtype=object),
        "direction": np.array([DIRECTIONS[d][0] for d in site_dir], dtype=object)})
    sc_site, sc_comp, sc_w = [], [], []
    for s in range(n_sites):
        comps = site_comps[s]
        k = int(rng.integers(2, min(4, len(comps)) + 1))
        chosen = [comps[0]] + [comps[1:][j] for j in sorted(rng.choice(len(comps) - 1, k - 1, replace=False))]
        ws = [round(float(rng.uniform(0.6, 1.0)), 2)] + [round(float(rng.uniform(0.3, 0.8)), 2) for _ in chosen[1:]]
        sc_site += [s] * k
        sc_comp += chosen
        sc_w += ws
    frames["site_competencies"] = pd.DataFrame({
        "site_id": site_ids[np.array(sc_site, dtype=np.int64)], "competency_id": np.array(sc_comp, dtype=object),
        "weight": np.array(sc_w)})

    n_ss = max(n_sites, _scaled(P.n_site_sessions, f, 1))
    per_site = 1 + rng.multinomial(n_ss - n_sites, np.full(n_sites, 1.0 / n_sites))
    ss_site = np.repeat(np.arange(n_sites), per_site)
    days = rng.choice(np.arange(1, 6), n_ss, p=np.array(P.site_days) / sum(P.site_days))
    monday = ALL_MONDAYS[rng.integers(0, len(ALL_MONDAYS), n_ss)]
    start = monday + (rng.random(n_ss) * (6 - days)).astype(np.int64)
    end = start + days - 1
    seats = rng.integers(10, 26, n_ss)
    clo, chi = P.site_cost_per_day
    cost = np.where(rng.random(n_ss) < P.site_cost_zero, 0,
                    np.minimum(15000, days * rng.integers(clo // 100, chi // 100 + 1, n_ss) * 100))
    # title: a form (seminar .. internship) and a theme of the site's direction
    themes_by_dir = {d: [t[1] for t in THEMES if t[0] == d] for d in range(len(DIRECTIONS))}
    titles = []
    for j in range(n_ss):
        s = ss_site[j]
        forms = SESSION_FORMS_LONG if days[j] >= 3 else SESSION_FORMS_SHORT
        theme = (site_title[s] if P.site_mode == "themes"
                 else themes_by_dir[site_dir[s]][int(rng.integers(0, len(themes_by_dir[site_dir[s]])))])
        titles.append(f"{forms[int(rng.integers(0, len(forms)))]} «{theme}»")
    order = np.lexsort((np.arange(n_ss), start, ss_site))
    frames["site_sessions"] = pd.DataFrame({
        "session_id": _ids("SS", n_ss, 4), "site_id": site_ids[ss_site[order]],
        "start": _iso(start[order]), "end": _iso(end[order]), "seats": seats[order].astype(np.int64),
        "hours": (8 * days[order]).astype(np.int64), "cost_rub": cost[order].astype(np.int64),
        "title": np.array(titles, dtype=object)[order]})

    # ---- programs and their sessions ----------------------------------------------------------
    n_prog = _scaled_catalogue(P.n_programs, f, 8)
    n_on = max(1, int(round(P.online_share * n_prog)))
    online = np.zeros(n_prog, dtype=bool)
    online[rng.choice(n_prog, n_on, replace=False)] = True
    main_p = popularity / popularity.sum()
    main = rng.choice(C, n_prog, p=main_p)
    hours = np.where(online, rng.choice(np.array([16, 36, 72]), n_prog, p=[0.35, 0.45, 0.2]),
                     rng.choice(np.array([16, 36, 72]), n_prog, p=[0.25, 0.5, 0.25]))
    rate = rng.uniform(180, 420, n_prog) * np.where(online, 0.8, 1.0)
    price = np.clip(_round_to(hours * rate, 100), 3000, 30000)
    prov_names = [p[0] for p in P.providers]
    prov_w = np.array([p[1] for p in P.providers])
    prov = rng.choice(len(prov_names), n_prog, p=prov_w / prov_w.sum())
    reg_num = rng.choice(np.arange(10000, 100000), n_prog, replace=False)
    registry = [f"{P.providers[prov[i]][2]}-{reg_num[i]:05d}" for i in range(n_prog)]
    prog_names, seen = [], set()
    for i in range(n_prog):
        comp = COMP_IDS[main[i]]
        for attempt in range(12):
            name = _program_name(rng, comp)
            if name not in seen:
                break
        else:
            base, v = name, 2
            while name in seen:
                name, v = f"{base} (модуль {v})", v + 1
        seen.add(name)
        prog_names.append(name)
    program_ids = _ids("P", n_prog, 3)
    frames["programs"] = pd.DataFrame({
        "program_id": program_ids, "registry_id": np.array(registry, dtype=object),
        "provider": np.array(prov_names, dtype=object)[prov], "name": np.array(prog_names, dtype=object),
        "format": np.where(online, "online", "offline").astype(object), "hours": hours.astype(np.int64),
        "price_rub": price.astype(np.int64)})
    pc_prog, pc_comp, pc_w = [], [], []
    n_sec = rng.choice(4, n_prog, p=[0.2, 0.4, 0.3, 0.1])
    for i in range(n_prog):
        comp = COMP_IDS[main[i]]
        rel = RELATED[comp]
        sec = [rel[j] for j in sorted(rng.choice(len(rel), min(int(n_sec[i]), len(rel)), replace=False))]
        w0 = min(1.0, round(float(rng.uniform(0.6, 0.95)) + (0.05 if hours[i] == 72 else 0.0), 2))
        pc_prog += [i] * (1 + len(sec))
        pc_comp += [comp] + sec
        pc_w += [w0] + [round(float(rng.uniform(0.2, 0.6)), 2) for _ in sec]
    frames["program_competencies"] = pd.DataFrame({
        "program_id": program_ids[np.array(pc_prog, dtype=np.int64)],
        "competency_id": np.array(pc_comp, dtype=object), "weight": np.array(pc_w)})

    on_idx, off_idx = np.flatnonzero(online), np.flatnonzero(~online)
    n_on_s = max(len(on_idx), _scaled_catalogue(P.n_online_sessions, f, 1))
    n_off_s = max(len(off_idx), _scaled(P.n_offline_sessions, f, 1))
    ps_prog = np.concatenate([
        np.repeat(on_idx, 1 + rng.multinomial(n_on_s - len(on_idx), np.full(len(on_idx), 1 / len(on_idx)))),
        np.repeat(off_idx, 1 + rng.multinomial(n_off_s - len(off_idx), np.full(len(off_idx), 1 / len(off_idx))))
        if len(off_idx) else np.zeros(0, dtype=np.int64)])
    n_ps = len(ps_prog)
    ps_on = online[ps_prog]
    h = hours[ps_prog]
    u = rng.random(n_ps)
    weeks_off = np.where(h == 16, 1, np.where(h == 36, 1 + (u * 3).astype(int), 2 + (u * 5).astype(int)))
    weeks_on = np.where(h == 16, 2 + (u * 2).astype(int), np.where(h == 36, 3 + (u * 4).astype(int),
                                                                     6 + (u * 5).astype(int)))
    weeks = np.where(ps_on, weeks_on, weeks_off)
    n_a = np.maximum(0, len(AUTUMN_MONDAYS) - weeks + 1)
    n_s = np.maximum(0, len(SPRING_MONDAYS) - weeks + 1)
    pick = (rng.random(n_ps) * (n_a + n_s)).astype(np.int64)
    start = np.where(pick < n_a, AUTUMN_MONDAYS[np.minimum(pick, len(AUTUMN_MONDAYS) - 1)],
                     SPRING_MONDAYS[np.clip(pick - n_a, 0, len(SPRING_MONDAYS) - 1)])
    end = start + 7 * weeks - np.where(ps_on, 1, 3)  # offline: Monday .. Friday; online: .. Sunday
    seats = np.where(ps_on, rng.integers(30, 101, n_ps), rng.integers(15, 41, n_ps))
    venue_w = P.extra.get("venue_weights")
    vw = (np.array([venue_w.get(m.name, 0.05) for m in muns]) if venue_w else mun_pop ** 1.3)
    venue = rng.choice(M, n_ps, p=vw / vw.sum())
    place = np.where(ps_on, "", mun_ids[venue]).astype(object)
    order = np.lexsort((np.arange(n_ps), start, ps_prog))
    frames["program_sessions"] = pd.DataFrame({
        "session_id": _ids("PS", n_ps, 4), "program_id": program_ids[ps_prog[order]],
        "start": _iso(start[order]), "end": _iso(end[order]), "seats": seats[order].astype(np.int64),
        "municipality_id": place[order]})

    # ---- budgets -----------------------------------------------------------------------------
    # "ideal" spending: every internship seat and every mentoring slot used; a municipality's
    # share of it follows the (priority-weighted) deficit of its teachers.
    ideal = float((frames["site_sessions"]["seats"] * frames["site_sessions"]["cost_rub"]).sum()
                  + (capacity * stipend).sum())
    deficit = np.where(measured, np.maximum(0, DEFICIT_THRESHOLD - score), 0).sum(1) / DEFICIT_THRESHOLD
    deficit = deficit * np.where(t_low, 1.5, 1.0)
    need_m = np.bincount(sch_mun[t_school], weights=deficit, minlength=M)
    share = need_m / max(need_m.sum(), 1e-9)
    cover = rng.uniform(*P.budget_cover, M)
    amount_m = _round_to(ideal * share * cover, 1000)
    with_row = has_teachers & (rng.random(M) >= P.no_budget_row_frac)
    with_row[int(np.argmax(np.where(has_teachers, tw, -1)))] = has_teachers.any()  # the largest always has one
    region_amount = int(_round_to(ideal * rng.uniform(*P.region_cover), 1000))
    bm = np.flatnonzero(with_row)
    frames["budgets"] = pd.DataFrame({
        "scope": np.array(["region"] + ["municipality"] * len(bm), dtype=object),
        "scope_id": np.array([""] + list(mun_ids[bm]), dtype=object),
        "amount_rub": np.array([region_amount] + list(amount_m[bm]), dtype=np.int64)})

    # ---- static and geography files ----------------------------------------------------------
    frames["competencies"] = pd.DataFrame(COMPETENCIES, columns=["competency_id", "name", "group", "short_name"])
    frames["municipalities"] = pd.DataFrame({
        "municipality_id": mun_ids, "name": np.array([m.name for m in muns], dtype=object),
        "lat": np.array([m.lat for m in muns]), "lon": np.array([m.lon for m in muns]),
        "kind": np.array([m.kind for m in muns], dtype=object),
        "real": np.array([int(m.real) for m in muns], dtype=np.int64),
        "population": np.array([m.population for m in muns], dtype=np.int64)})
    lat = np.array([m.lat for m in muns])
    lon = np.array([m.lon for m in muns])
    comp = np.array([m.component for m in muns])
    edges = build_roads(lat, lon, comp, np.random.default_rng(P.geo_seed + 1000))
    frames["roads"] = pd.DataFrame({
        "from_municipality": np.array([mun_ids[e.a] for e in edges], dtype=object),
        "to_municipality": np.array([mun_ids[e.b] for e in edges], dtype=object),
        "minutes": np.array([e.minutes for e in edges], dtype=np.int64)})

    ordered = {}
    for stem, (cols, extra_cols) in FILE_COLUMNS.items():
        ordered[stem] = frames[stem][cols + extra_cols].reset_index(drop=True)
    region = {
        "name": P.region_name,
        "period_start": PERIOD_START,
        "period_end": PERIOD_END,
        "preset": P.name,
        "seed": int(seed),
        "teachers": N,
        "description": P.description,
        "generator": f"marshrut datasets generator v{GENERATOR_VERSION}",
        "synthetic": "Синтетические данные; реальны только города (hflabs/city, CC BY-SA 4.0), "
                     "см. datasets/README.md",
    }
    return ordered, region


def _program_name(rng: np.random.Generator, comp: str) -> str:
    templates, subjects = PROGRAM_TEMPLATES[comp]
    t = templates[int(rng.integers(0, len(templates)))]
    s = SUBJECTS[subjects[int(rng.integers(0, len(subjects)))]]
    if "ГИА" in t and s[0] == "физической культуры":  # no state exam in physical education
        s = SUBJECTS[0]
    lessons = s[2] if rng.random() < 0.75 else ["в начальной школе", "во внеурочной деятельности"][
        int(rng.integers(0, 2))]
    aud = AUDIENCES.get(comp, LEVELS)
    name = t.format(lessons=lessons, level=LEVELS[int(rng.integers(0, len(LEVELS)))], gen=s[0], dat=s[1],
                    aud=aud[int(rng.integers(0, len(aud)))])
    return re.sub(r"\s+", " ", name).strip()


def write_frames(frames: dict[str, pd.DataFrame], region: dict, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "region.json").write_text(json.dumps(region, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for stem, frame in frames.items():
        frame.to_csv(out / f"{stem}.csv", index=False, lineterminator="\n", encoding="utf-8",
                     float_format=FLOAT_FORMAT.get(stem))
    return out


def generate_bundle(preset: str, out_dir: str | Path, seed: int = 0, teachers: int | None = None) -> Path:
    """Writes region.json, the 15 CSV files of SPEC §2 and _planted_profiles.csv into out_dir."""
    frames, region = generate_frames(preset, seed=seed, teachers=teachers)
    return write_frames(frames, region, out_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marshrut.datasets.generator", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teachers", type=int, default=None)
    a = ap.parse_args(argv)
    path = generate_bundle(a.preset, a.out, seed=a.seed, teachers=a.teachers)
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
