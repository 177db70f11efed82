"""Self-tests of the independent oracle (tests/oracle.py)."""
from __future__ import annotations

import itertools
import json
import math
import zipfile

import pandas as pd
import pytest

from oracle import (ASSIGNMENT_COLUMNS, DEFAULT_PARAMS, BundleIndex, Infeasible,
                    bundle_problems, check_plan, exact_optimum, full_params, objective,
                    plan_frame, random_bundle, read_bundle)

# --------------------------------------------------------------------------------------
# A hand-built bundle where every number is known
# --------------------------------------------------------------------------------------
# Travel (shortest paths): MA-MB 60, MA-MC 160 (via MB; the direct road is 300),
# MA-ME 260, MB-MC 100, MB-ME 200, MC-ME 100; MD has no road (unreachable).
# Budgets: region 40000, municipality MA 25000, no row for MB, MC, MD, ME.

HAND = {
    "region.json": {"name": "Ручная область", "period_start": "2025-09-01",
                    "period_end": "2025-12-31"},
    "competencies": [("competency_id", "name", "group"),
                     ("C1", "Функциональная грамотность", "A"), ("C2", "ФГОС", "A"),
                     ("C3", "Воспитание", "B")],
    "municipalities": [("municipality_id", "name", "lat", "lon"),
                       ("MA", "Алфеево", "55.1", "37.2"), ("MB", "Борки", "55.3", "37.9"),
                       ("MC", "Сосны", "56.0", "38.4"), ("MD", "Дальний", "60.0", "45.0"),
                       ("ME", "Ельня", "56.5", "39.0")],
    "roads": [("from_municipality", "to_municipality", "minutes"),
              ("MA", "MB", "60"), ("MC", "MB", "100"), ("MA", "MC", "300"), ("MC", "ME", "100")],
    "schools": [("school_id", "name", "municipality_id", "low_results"),
                ("S1", "Школа 1", "MA", "1"), ("S2", "Лицей 2", "MB", "0"),
                ("S3", "Гимназия 3", "MC", "0"), ("S4", "Школа 4", "ME", "0"),
                ("S5", "Школа 5", "MD", "1")],
    "teachers": [("teacher_id", "school_id", "role", "voucher_rub", "max_hours"),
                 ("T1", "S1", "teacher", "30000", "72"), ("T2", "S1", "manager", "0", "40"),
                 ("T3", "S2", "teacher", "50000", "100"), ("T4", "S5", "teacher", "20000", "60")],
    "diagnostics": [("teacher_id", "competency_id", "score"),
                    ("T1", "C1", "40"), ("T1", "C2", "63"), ("T2", "C1", "55"),
                    ("T3", "C2", "20"), ("T3", "C3", "90"), ("T4", "C1", "10")],
    "mentors": [("mentor_id", "teacher_id", "school_id", "capacity", "remote", "stipend_rub",
                 "hours_per_mentee"),
                ("M1", "T3", "S2", "1", "0", "10000", "20"),
                ("M2", "", "S4", "2", "0", "8000", "10"),
                ("M3", "", "S1", "2", "1", "5000", "10"),
                ("M4", "", "S2", "3", "1", "4000", "8")],
    "mentor_competencies": [("mentor_id", "competency_id", "weight"),
                            ("M1", "C1", "0.6"), ("M1", "C2", "0.37"), ("M2", "C1", "0.5"),
                            ("M3", "C2", "0.8"), ("M4", "C3", "0.9")],
    "sites": [("site_id", "school_id", "name"), ("SiteA", "S2", "A"), ("SiteB", "S1", "B"),
              ("SiteC", "S3", "C"), ("SiteE", "S4", "E")],
    "site_competencies": [("site_id", "competency_id", "weight"),
                          ("SiteA", "C1", "0.45"), ("SiteB", "C2", "0.5"), ("SiteC", "C2", "0.7"),
                          ("SiteC", "C1", "0.2"), ("SiteE", "C1", "0.9")],
    "site_sessions": [("session_id", "site_id", "start", "end", "seats", "hours", "cost_rub"),
                      ("IA1", "SiteA", "2025-10-06", "2025-10-10", "1", "24", "12000"),
                      ("IA2", "SiteA", "2025-11-10", "2025-11-14", "2", "24", "12000"),
                      ("IB1", "SiteB", "2025-10-01", "2025-10-03", "2", "16", "6000"),
                      ("IC1", "SiteC", "2025-10-10", "2025-10-12", "2", "20", "9000"),
                      ("ID1", "SiteC", "2025-12-01", "2025-12-03", "2", "12", "3000"),
                      ("IE1", "SiteE", "2025-09-20", "2025-09-22", "2", "8", "2000")],
    "programs": [("program_id", "registry_id", "provider", "name", "format", "hours", "price_rub"),
                 ("P1", "R-1", "ИРО", "Онлайн-курс", "online", "36", "15000"),
                 ("P2", "R-2", "ИРО", "Очный курс", "offline", "24", "9000"),
                 ("P3", "R-3", "Вуз", "Семинар", "offline", "16", "4000")],
    "program_competencies": [("program_id", "competency_id", "weight"),
                             ("P1", "C1", "0.3"), ("P1", "C2", "0.25"), ("P2", "C2", "0.55"),
                             ("P3", "C1", "0.15")],
    "program_sessions": [("session_id", "program_id", "start", "end", "seats", "municipality_id"),
                         ("PS1", "P1", "2025-10-01", "2025-12-15", "3", ""),
                         ("PS1b", "P1", "2025-09-15", "2025-11-30", "1", ""),
                         ("PS2", "P2", "2025-10-10", "2025-10-11", "1", "MA"),
                         ("PS3", "P3", "2025-11-20", "2025-11-21", "2", "MC"),
                         ("PS3e", "P3", "2025-12-01", "2025-12-02", "2", "ME")],
    "budgets": [("scope", "scope_id", "amount_rub"), ("region", "", "40000"),
                ("municipality", "MA", "25000")],
}


def write_bundle(d, spec=HAND):
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in spec.items():
        if name == "region.json":
            (d / name).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        else:
            pd.DataFrame(rows[1:], columns=rows[0]).to_csv(d / f"{name}.csv", index=False)
    return d


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    return BundleIndex(write_bundle(tmp_path_factory.mktemp("hand") / "bundle"))


def plan(ix, *triples):
    return plan_frame(ix, [t.split() if isinstance(t, str) else t for t in triples])


def tags(violations):
    return sorted({v.split(":", 1)[0] for v in violations})


EMPTY = pd.DataFrame(columns=ASSIGNMENT_COLUMNS)

# --------------------------------------------------------------------------------------
# Reading, parameters, travel
# --------------------------------------------------------------------------------------


def test_hand_bundle_is_valid_and_read_as_strings(hand):
    b = hand.bundle
    assert bundle_problems(b) == []
    assert b["mentors"].loc[1, "teacher_id"] == ""
    assert b["program_sessions"].loc[0, "municipality_id"] == ""
    assert b["diagnostics"]["score"].dtype.kind == "f"
    assert b["region"]["period_end"] == "2025-12-31"


def test_full_params_defaults():
    p = full_params(None)
    assert p == {**DEFAULT_PARAMS, "pinned": [], "forbidden": []}
    assert p["deficit_threshold"] == 70 and p["low_results_priority"] == 1.5
    assert p["rub_per_point"] == 100000 and p["max_travel_minutes"] == 180
    assert p["max_internships"] == 1 and p["max_programs"] == 2
    assert p["mentor_from_other_school"] is True and p["time_limit_s"] == 60
    q = full_params({"max_programs": 3, "pinned": [("T1", "program", "PS1")], "extra": 1})
    assert q["max_programs"] == 3 and q["extra"] == 1 and q["max_internships"] == 1
    assert q["pinned"] == [{"teacher_id": "T1", "kind": "program", "resource_id": "PS1"}]


def test_shortest_paths(hand):
    assert hand.travel("MA", "MA") == 0
    assert hand.travel("MA", "MB") == 60
    assert hand.travel("MA", "MC") == 160  # via MB, not the 300 road
    assert hand.travel("ME", "MA") == 260
    assert math.isinf(hand.travel("MD", "MA"))
    assert hand.travel("MD", "MD") == 0


def test_zip_and_xlsx_read_like_the_folder(hand, tmp_path):
    folder = write_bundle(tmp_path / "b")
    z = tmp_path / "b.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"b/{f.name}")
    x = tmp_path / "b.xlsx"
    a = read_bundle(folder)
    with pd.ExcelWriter(x) as w:
        for name, rows in HAND.items():
            if name == "region.json":
                pd.DataFrame(list(rows.items()), columns=["key", "value"]).to_excel(
                    w, sheet_name="region", index=False)
            else:
                pd.DataFrame(rows[1:], columns=rows[0]).to_excel(w, sheet_name=name, index=False)
    for other in (read_bundle(z), read_bundle(x)):
        assert other["region"] == a["region"]
        for name in a:
            if name != "region":
                pd.testing.assert_frame_equal(a[name], other[name], check_dtype=False)


# --------------------------------------------------------------------------------------
# Plans: valid ones, and one violation per rule
# --------------------------------------------------------------------------------------


def test_empty_plan(hand, tmp_path):
    for empty in (EMPTY, pd.DataFrame()):
        assert check_plan(hand, None, empty) == []
        assert objective(hand, None, empty) == 0
    f = tmp_path / "assignments.csv"
    EMPTY.to_csv(f, index=False)
    assert check_plan(hand, None, f) == []
    v = check_plan(hand, {"pinned": [{"teacher_id": "T1", "kind": "mentor",
                                      "resource_id": "M4"}]}, EMPTY)
    assert tags(v) == ["pinned"] and "T1" in v[0] and "M4" in v[0]


def test_plan_frame_rows(hand):
    f = plan(hand, "T1 mentor M4", "T1 internship IA1", "T1 program PS1", "T3 program PS2")
    assert list(f.columns) == ASSIGNMENT_COLUMNS
    rows = {(r.teacher_id, r.resource_id): r for r in f.itertuples()}
    m = rows[("T1", "M4")]
    assert (m.start, m.end, m.hours, m.cost_rub, m.funded_by) == \
        ("2025-09-01", "2025-12-31", 8, 4000, "municipality:MA")
    i = rows[("T1", "IA1")]
    assert (i.start, i.end, i.hours, i.cost_rub, i.funded_by) == \
        ("2025-10-06", "2025-10-10", 24, 12000, "municipality:MA")
    p = rows[("T3", "PS2")]
    assert (p.start, p.end, p.hours, p.cost_rub, p.funded_by) == \
        ("2025-10-10", "2025-10-11", 24, 9000, "voucher")


VALID = [
    # (plan, params)
    (["T1 internship IA1", "T1 program PS1", "T3 internship IC1", "T4 program PS1"], None),
    (["T1 internship IC1"], None),                                 # 160 min by shortest path
    (["T1 mentor M1", "T2 mentor M2"], {"max_travel_minutes": 260}),
    (["T1 internship IA2", "T1 internship ID1"], {"max_internships": 2}),
    (["T3 program PS1", "T3 program PS2", "T3 program PS3"], {"max_programs": 3}),
    (["T1 mentor M3"], {"mentor_from_other_school": False}),
    (["T1 internship IE1"], {"max_travel_minutes": 300}),
    (["T4 program PS1", "T4 mentor M4"], None),                    # unreachable, but no travel
    (["T2 mentor M1", "T2 internship IC1"], None),                 # hours exactly 40 = max
    (["T1 mentor M1", "T2 mentor M3"], {"mentor_from_other_school": False}),
    (["T1 internship IA2", "T2 internship IA1"], None),            # MA pays 24000 <= 25000
    (["T1 program PS1"], {"pinned": [("T1", "program", "PS1")],
                          "forbidden": [("T1", "program", "PS1b")]}),
]


@pytest.mark.parametrize("triples,params", VALID)
def test_valid_plans(hand, triples, params):
    assert check_plan(hand, params, plan(hand, *triples)) == []


VIOLATIONS = [
    # (plan, params, expected single tag, words that must appear in one message)
    (["T1 mentor M1", "T2 mentor M1"], None, "capacity", ["M1", "T1", "T2"]),
    (["T1 program PS2", "T3 program PS2"], None, "capacity", ["PS2", "T1", "T3"]),
    (["T1 mentor M1", "T1 mentor M4"], None, "count", ["T1", "M1", "M4"]),
    (["T1 internship IA2", "T1 internship ID1"], None, "count", ["T1", "IA2", "ID1"]),
    (["T1 internship IC1", "T1 internship ID1"], {"max_internships": 2}, "count",
     ["T1", "site SiteC", "IC1", "ID1"]),
    (["T3 program PS1", "T3 program PS2", "T3 program PS3"], None, "count", ["T3", "PS3"]),
    (["T3 program PS1", "T3 program PS1b"], None, "count", ["T3", "program P1", "PS1b"]),
    (["T3 mentor M1"], {"mentor_from_other_school": False}, "mentor", ["T3", "M1", "themselves"]),
    (["T1 mentor M3"], None, "mentor", ["T1", "M3", "S1"]),
    (["T1 internship IB1"], None, "internship", ["T1", "IB1", "own school"]),
    (["T1 internship IE1"], None, "travel", ["T1", "IE1", "260"]),
    (["T1 program PS3e"], None, "travel", ["T1", "PS3e", "260"]),
    (["T1 mentor M2"], None, "travel", ["T1", "M2", "260"]),
    (["T4 program PS2"], None, "travel", ["T4", "PS2", "unreachable"]),
    (["T1 internship IC1"], {"max_travel_minutes": 159}, "travel", ["T1", "IC1", "160"]),
    (["T1 internship IA1", "T1 program PS2"], None, "schedule", ["T1", "IA1", "PS2"]),
    (["T2 mentor M1", "T2 internship IA2"], None, "hours", ["T2", "44", "40"]),
    (["T2 program PS3"], None, "voucher", ["T2", "PS3", "4000"]),
    (["T1 internship IA2", "T2 internship IA1", "T1 mentor M4"], None, "budget",
     ["municipality MA", "28000", "25000"]),
    (["T1 internship IA2", "T2 internship IA1", "T3 internship IC1", "T3 mentor M3",
      "T4 mentor M4"], None, "budget", ["region", "42000", "40000"]),
    ([], {"pinned": [{"teacher_id": "T3", "kind": "internship", "resource_id": "IC1"}]},
     "pinned", ["T3", "IC1"]),
    (["T1 program PS1"], {"forbidden": [{"teacher_id": "T1", "kind": "program",
                                         "resource_id": "PS1"}]}, "forbidden", ["T1", "PS1"]),
]


@pytest.mark.parametrize("triples,params,tag,words", VIOLATIONS)
def test_each_rule_is_reported(hand, triples, params, tag, words):
    v = check_plan(hand, params, plan(hand, *triples))
    assert tags(v) == [tag], v
    assert any(all(w in m for w in words) for m in v), v


def test_mentor_oneself_is_also_own_school(hand):
    v = check_plan(hand, None, plan(hand, "T3 mentor M1"))
    assert len(v) == 2 and tags(v) == ["mentor"]


def test_online_overlaps_nothing_and_mentor_spans(hand):
    # PS1 (online) spans IA1, PS1b (online) and the mentoring period: all fine.
    ok = plan(hand, "T1 internship IA1", "T1 program PS1", "T1 mentor M4")
    assert check_plan(hand, None, ok) == []
    # inclusive ranges: IA1 ends 2025-10-10 when IC1 starts
    v = check_plan(hand, {"max_internships": 2}, plan(hand, "T1 internship IA1",
                                                       "T1 internship IC1"))
    assert tags(v) == ["schedule"]


def _raw(ix, *triples):
    return plan(ix, *triples).astype(str)


def test_unknown_kind_duplicate(hand):
    f = pd.concat([
        _raw(hand, "T1 program PS1", "T1 program PS1"),
        pd.DataFrame([
            {"teacher_id": "TX", "kind": "program", "resource_id": "PS1"},
            {"teacher_id": "T1", "kind": "internship", "resource_id": "NOPE"},
            {"teacher_id": "T1", "kind": "internship", "resource_id": "PS3"},
            {"teacher_id": "T1", "kind": "course", "resource_id": "PS3"},
            {"teacher_id": "T1", "kind": "mentor", "resource_id": "IA1"},
        ])], ignore_index=True)
    v = check_plan(hand, None, f)
    assert tags(v) == ["duplicate", "kind", "unknown"], v
    assert sum(m.startswith("duplicate") and "T1" in m and "PS1" in m for m in v) == 1
    assert any(m.startswith("unknown") and "TX" in m for m in v)
    assert any(m.startswith("unknown") and "NOPE" in m for m in v)
    assert any(m.startswith("kind") and "PS3" in m and "program" in m for m in v)
    assert any(m.startswith("kind") and "course" in m for m in v)
    assert any(m.startswith("kind") and "IA1" in m and "internship" in m for m in v)


def test_columns_and_fields(hand):
    good = _raw(hand, "T1 mentor M4", "T1 internship IA1", "T3 program PS2")
    assert check_plan(hand, None, good) == []
    v = check_plan(hand, None, good.drop(columns=["funded_by"]))
    assert tags(v) == ["column"] and "funded_by" in v[0]
    cases = [
        (0, "start", "2025-10-06"),          # a mentor is dated by the period
        (0, "end", "2025-12-30"),
        (0, "hours", "10"),
        (0, "cost_rub", "5000"),
        (0, "funded_by", "municipality:MB"),  # T1's school is in MA
        (1, "funded_by", "voucher"),
        (1, "start", "06.10.2025"),           # not ISO
        (2, "funded_by", "municipality:MB"),  # programs are paid by the voucher
        (2, "hours", "16"),
        (2, "cost_rub", "0"),
    ]
    for row, col, val in cases:
        bad = good.copy()
        bad.loc[row, col] = val
        v = check_plan(hand, None, bad)
        assert tags(v) == ["field"] and col in v[0] and good.loc[row, "resource_id"] in v[0], \
            (row, col, v)


def test_csv_round_trip(hand, tmp_path):
    f = plan(hand, "T1 internship IA1", "T1 program PS1", "T3 internship IC1")
    f.to_csv(tmp_path / "assignments.csv", index=False)
    assert check_plan(hand, None, tmp_path / "assignments.csv") == []
    assert objective(hand, None, tmp_path / "assignments.csv") == pytest.approx(
        objective(hand, None, f), abs=1e-12)


# --------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------


def test_objective_by_hand(hand):
    f = plan(hand, "T1 internship IA1", "T1 program PS1", "T3 internship IC1", "T4 program PS1")
    want = (1.5 * 30 / 70 * (0.45 + 0.3)      # T1 C1 (low_results school)
            + 1.5 * 7 / 70 * 0.25             # T1 C2
            + 1.0 * 50 / 70 * 0.7             # T3 C2; T3 C1 is covered but has no diagnostics
            + 1.5 * 60 / 70 * 0.3             # T4 C1
            - (12000 + 15000 + 9000 + 15000) / 100000)
    assert objective(hand, None, f) == pytest.approx(want, abs=1e-12)
    p = {"deficit_threshold": 50, "low_results_priority": 2.0, "rub_per_point": 30000}
    want2 = (2 * 10 / 50 * 0.75 + 0 + 30 / 50 * 0.7 + 2 * 40 / 50 * 0.3
             - 51000 / 30000)
    assert objective(hand, p, f) == pytest.approx(want2, abs=1e-12)


def test_objective_cover_is_capped(hand):
    f = plan(hand, "T1 mentor M1", "T1 internship IA1", "T1 program PS1")
    want = 1.5 * 30 / 70 * 1.0 + 1.5 * 7 / 70 * (0.37 + 0.25) - 37000 / 100000
    assert objective(hand, None, f) == pytest.approx(want, abs=1e-12)
    # no need at all (score 90 >= 70): only the cost counts
    assert objective(hand, None, plan(hand, "T3 mentor M4")) == pytest.approx(-0.04, abs=1e-12)


# --------------------------------------------------------------------------------------
# Exact optimum
# --------------------------------------------------------------------------------------


def test_exact_optimum_hand(hand):
    val, f = exact_optimum(hand)
    assert check_plan(hand, None, f) == []
    assert objective(hand, None, f) == pytest.approx(val, abs=1e-9)
    hand_plan = plan(hand, "T1 internship IA1", "T1 program PS1", "T3 internship IC1",
                     "T4 program PS1")
    assert check_plan(hand, None, hand_plan) == []
    assert val >= objective(hand, None, hand_plan) - 1e-9
    assert val >= 0


def test_exact_optimum_pinned_forbidden(hand):
    base, f0 = exact_optimum(hand)
    pin = {"teacher_id": "T2", "kind": "mentor", "resource_id": "M2"}  # costly, far-ish, allowed
    p = {"pinned": [pin], "max_travel_minutes": 260}
    val, f = exact_optimum(hand, p)
    assert check_plan(hand, p, f) == []
    assert ((f.teacher_id == "T2") & (f.resource_id == "M2")).any()
    forb = [{"teacher_id": r.teacher_id, "kind": r.kind, "resource_id": r.resource_id}
            for r in f0.itertuples()]
    val2, f2 = exact_optimum(hand, {"forbidden": forb})
    assert check_plan(hand, {"forbidden": forb}, f2) == []
    assert val2 <= base + 1e-9
    with pytest.raises(Infeasible):
        exact_optimum(hand, {"pinned": [("T4", "program", "PS2")]})  # unreachable


def _brute_force(ix, params):
    """Best objective by enumeration, pruning partial plans that already break a rule
    (every rule but pinned only gets worse when assignments are added; params without pinned)."""
    res = [(k, rid) for (k, rid) in ix.acts]
    teachers = sorted(ix.teachers)
    p = full_params(params)
    most = min(len(res), 1 + p["max_internships"] + p["max_programs"])
    local = {}
    for t in teachers:
        alone = [a for a in res if not check_plan(ix, params, plan_frame(ix, [(t, *a)]))]
        opts = []
        for n in range(0, most + 1):
            for combo in itertools.combinations(alone, n):
                triples = [(t, k, r) for k, r in combo]
                if not check_plan(ix, params, plan_frame(ix, triples)):
                    opts.append(triples)
        local[t] = opts
    best = [0.0, 0]

    def go(i, chosen):
        if i == len(teachers):
            best[1] += 1
            best[0] = max(best[0], objective(ix, params, plan_frame(ix, chosen)))
            return
        for o in local[teachers[i]]:
            nxt = chosen + o
            if not o or not check_plan(ix, params, plan_frame(ix, nxt)):
                go(i + 1, nxt)

    go(0, [])
    return best[0], best[1]


@pytest.mark.parametrize("seed,teachers,tight,params", [
    (11, 4, 0.3, None), (16, 3, 0.2, None), (14, 3, 0.2, {"max_internships": 2}),
    (18, 3, 0.5, {"max_programs": 1, "mentor_from_other_school": False}),
])
def test_exact_optimum_equals_brute_force(tmp_path, seed, teachers, tight, params):
    d = random_bundle(seed, tmp_path / "b", teachers=teachers, schools=3, municipalities=3,
                      mentors=2, sites=2, sessions_per_site=1, programs=2,
                      sessions_per_program=2, diag_density=0.8, tight=tight)
    ix = BundleIndex(d)
    val, f = exact_optimum(ix, params)
    bf, n = _brute_force(ix, params)
    assert n >= 15  # the enumeration saw a real choice
    assert val == pytest.approx(bf, abs=1e-9)


def _greedy(ix, params):
    """A simple feasible plan: add any assignment that keeps the plan valid and helps."""
    chosen, cur = [], 0.0
    for t in sorted(ix.teachers):
        for (k, r) in sorted(ix.acts):
            cand = chosen + [(t, k, r)]
            f = plan_frame(ix, cand)
            if not check_plan(ix, params, f):
                val = objective(ix, params, f)
                if val > cur + 1e-12:
                    chosen, cur = cand, val
    return cur, plan_frame(ix, chosen)


@pytest.mark.parametrize("seed,kw", [
    (1, {}),
    (2, {"tight": 0.9, "teachers": 14}),
    (3, {"tight": 0.1, "unreachable": True}),
    (4, {"teachers": 30, "mentors": 6, "sites": 5, "programs": 6, "diag_density": 0.4}),
])
def test_exact_optimum_random(tmp_path, seed, kw):
    d = random_bundle(seed, tmp_path / "b", **kw)
    ix = BundleIndex(d)
    for params in (None, {"max_internships": 2, "max_programs": 1, "max_travel_minutes": 120,
                          "mentor_from_other_school": False, "low_results_priority": 2.5}):
        val, f = exact_optimum(ix, params)
        assert check_plan(ix, params, f) == []
        assert objective(ix, params, f) == pytest.approx(val, abs=1e-9)
        if seed != 4 and params is None:  # the greedy is slow; once per bundle is enough
            g, gf = _greedy(ix, params)
            assert check_plan(ix, params, gf) == []
            assert val >= g - 1e-9


# --------------------------------------------------------------------------------------
# Random bundles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_bundle_valid(tmp_path, seed):
    kw = [{}, {"teachers": 25, "tight": 1.0}, {"tight": 0.0, "municipalities": 6},
          {"unreachable": True}, {"unreachable": False, "diag_density": 0.2},
          {"teachers": 3, "schools": 2, "municipalities": 2, "mentors": 1}][seed]
    d = random_bundle(seed, tmp_path / "b", **kw)
    assert bundle_problems(d) == []
    b = read_bundle(d)
    assert len(b["teachers"]) == kw.get("teachers", 10)
    assert all(isinstance(t, str) and t.startswith("0") for t in b["teachers"]["teacher_id"])
    assert (b["budgets"]["scope"] == "region").sum() == 1
    if kw.get("unreachable"):
        ix = BundleIndex(d)
        assert any(math.isinf(ix.travel(a, c)) for a in ix.muni_pos for c in ix.muni_pos)
    # the same seed writes the same bundle
    d2 = random_bundle(seed, tmp_path / "c", **kw)
    for f in d.iterdir():
        assert f.read_bytes() == (d2 / f.name).read_bytes()


def test_random_bundles_have_the_promised_variety(tmp_path):
    found = {}
    for seed in range(8):
        b = read_bundle(random_bundle(seed, tmp_path / str(seed)))
        m = b["mentors"]
        ix = BundleIndex(b)
        now = {"external mentor": (m.teacher_id == "").any(),
               "internal mentor": (m.teacher_id != "").any(),
               "remote mentor": (m.remote == 1).any(), "in-person mentor": (m.remote == 0).any(),
               "online": (b["programs"].format == "online").any(),
               "offline": (b["programs"].format == "offline").any(),
               "low_results": (b["schools"].low_results == 1).any(),
               "zero voucher": (b["teachers"].voucher_rub == 0).any(),
               "manager": (b["teachers"].role == "manager").any(),
               "municipality budget": (b["budgets"].scope == "municipality").any(),
               "municipality without budget": len(b["budgets"]) - 1 < len(b["municipalities"]),
               "missing diagnostics": len(b["diagnostics"]) <
               len(b["teachers"]) * len(b["competencies"]),
               "odd weight": ((b["mentor_competencies"].weight * 10) % 1 > 1e-9).any(),
               "odd score": ((b["diagnostics"].score % 10) != 0).any(),
               "unreachable": any(math.isinf(ix.travel(a, c))
                                  for a in ix.muni_pos for c in ix.muni_pos),
               "overlapping sessions": any(
                   a.dated and c.dated and a.start <= c.end and c.start <= a.end
                   for a, c in itertools.combinations(ix.acts.values(), 2))}
        for k, v in now.items():
            found[k] = found.get(k, False) or bool(v)
    assert all(found.values()), found


def test_bundle_problems_catches_breakage(tmp_path):
    spec = dict(HAND)
    spec["teachers"] = HAND["teachers"] + [("T9", "S99", "teacher", "-5", "x")]
    spec["program_sessions"] = HAND["program_sessions"] + [
        ("PS9", "P1", "2025-12-20", "2026-01-10", "1", "MA"),
        ("IA1", "P2", "2025-10-02", "2025-10-01", "1", "")]
    spec["budgets"] = HAND["budgets"][:1] + HAND["budgets"][2:]
    v = bundle_problems(write_bundle(tmp_path / "bad", spec))
    text = "\n".join(v)
    for w in ("S99", "voucher_rub is negative", "max_hours is not a number", "outside the period",
              "online session with a municipality", "offline session without",
              "start > end", "IA1", "region row"):
        assert w in text, (w, v)
