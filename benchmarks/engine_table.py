"""Issue 3's "How good and how fast" table, reproduced: `python -m marshrut.benchmarks.engine_table --help`.

| teachers | time limit | plan quality |
| up to 300 | 20 s | >= 99.5% of the optimum |
| 1,000 | 30 s | >= 99% of the optimum |
| 3,000 | 60 s | better than the plain MIP after 300 s |
| altai-krai, about 20,000 | 120 s wall, loading included | valid, proved gap <= 5%, peak memory <= 4 GiB |

The optimum is the plain MIP's (HiGHS through SciPy, benchmarks.peers.plain_mip) where it proves it
within the reference time (300 s); at 3,000 teachers the reference is whatever the MIP has after
300 s. Each run is a fresh process (benchmarks.run.run_worker), every plan is checked by the oracle.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .run import (DEFAULT_OUT, README, _fmt, _now, _oracle, bundle_for, checked_row, machine, run_worker,
                  update_readme)

REFERENCE_SECONDS = 300.0
# (row label, preset, teachers or None for the preset's own size, limit, target kind, target value, wall)
ROWS = (
    ("up to 300", "tomsk-school-44", None, 20.0, "optimum", 0.995, False),
    ("up to 300", "altai-krai", 300, 20.0, "optimum", 0.995, False),
    ("1,000", "altai-krai", 1000, 30.0, "optimum", 0.99, False),
    ("3,000", "altai-krai", 3000, 60.0, "mip", None, False),
    ("about 20,000", "altai-krai", None, 120.0, "region", 0.05, True),
)
MEMORY_TARGET_MIB = 4 * 1024


def main(out_dir=DEFAULT_OUT, reference_seconds: float = REFERENCE_SECONDS, rows=ROWS,
         readme: Path | None = None, log=print, replot: bool = False) -> pd.DataFrame:
    """Runs the rows (or, with `replot`, re-reads and re-checks their last runs) and writes the table."""
    out = Path(out_dir)

    def worker(path, solver, limit, run_dir, wall=False):
        if replot:
            return json.loads((run_dir / "result.json").read_text())
        return run_worker(path, solver, limit, run_dir, wall=wall)

    out.mkdir(parents=True, exist_ok=True)
    oracle = _oracle()
    table = []
    for label, preset, teachers, limit, target, value, wall in rows:
        name, path = bundle_for(preset, teachers)
        index = oracle.BundleIndex(str(path))
        run_dir = out / "runs" / "engine-table" / name
        log(f"[{_now()}] {name}: marshrut ({limit:g} s{' wall' if wall else ''})")
        info = worker(path, "marshrut", limit, run_dir / "marshrut", wall=wall)
        ours = checked_row(oracle, index, name, "marshrut", info, run_dir / "marshrut")
        log(f"    {ours['status']} objective={_fmt(ours['objective'])} gap={_fmt(ours['gap'], 4)} "
            f"peak={_fmt(ours['peak_mib'])} MiB check={ours['check'][:80]}")
        ref = None
        if target in ("optimum", "mip"):
            log(f"[{_now()}] {name}: plain MIP reference ({reference_seconds:g} s)")
            ref_info = worker(path, "mip", reference_seconds, run_dir / "mip")
            ref = checked_row(oracle, index, name, "mip", ref_info, run_dir / "mip")
            log(f"    {ref['status']} objective={_fmt(ref['objective'])} bound={_fmt(ref['bound'])} "
                f"{_fmt(ref['seconds'])} s check={ref['check'][:80]}")
        table.append(verdict(label, name, len(index.teachers), limit, target, value, wall, ours, info, ref))
    frame = pd.DataFrame(table)
    meta_file = out / "engine_table.meta.json"
    if replot and meta_file.exists():
        meta = json.loads(meta_file.read_text())
    else:
        meta = {"machine": machine(), "reference_seconds": reference_seconds}
        meta_file.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    previous = out / "engine_table.csv"
    if rows != ROWS and previous.exists():  # a chunk: keep the other rows of the last full table
        kept = pd.read_csv(previous)
        frame = pd.concat([kept[~kept.bundle.isin(frame.bundle)], frame], ignore_index=True)
        order = {bundle_for(p, n)[0]: i for i, (_, p, n, *_rest) in enumerate(ROWS)}
        frame = frame.sort_values("bundle", key=lambda b: b.map(order), kind="stable").reset_index(drop=True)
    frame.to_csv(previous, index=False)
    text = markdown(frame, reference_seconds, meta["machine"])
    (out / "engine_table.md").write_text(text, encoding="utf-8")
    if readme is None and out.resolve() == DEFAULT_OUT.resolve():
        readme = README
    if readme:
        update_readme({"engine": text}, readme)
    return frame


def verdict(label, name, teachers, limit, target, value, wall, ours: dict, info: dict, ref: dict | None) -> dict:
    valid = ours["check"] == "ok" and ours["objective"] is not None
    ref_ok = ref is not None and ref["check"] == "ok" and ref["objective"] is not None
    row = {"teachers": label, "bundle": name, "n": teachers, "time_limit": f"{limit:g} s" + (" wall" if wall else ""),
           "marshrut_status": ours["status"], "marshrut_objective": ours["objective"], "marshrut_gap": ours["gap"],
           "marshrut_seconds": ours["seconds"], "load_seconds": info.get("load_seconds"),
           "peak_mib": ours["peak_mib"], "check": ours["check"],
           "reference": None, "reference_status": None, "reference_seconds": None, "pct_of_reference": None,
           "target": "", "met": False}
    if ref is not None:
        row.update(reference=ref["objective"], reference_status=ref["status"], reference_seconds=ref["seconds"],
                   reference_bound=ref["bound"])
        if valid and ref_ok and ref["objective"] > 0:
            row["pct_of_reference"] = 100.0 * ours["objective"] / ref["objective"]
    bounds = [b for b in (ours["bound"], ref["bound"] if ref_ok else None) if b is not None and not pd.isna(b)]
    row["best_bound"] = min(bounds) if bounds else None
    row["marshrut_bound"] = ours["bound"]
    if target == "optimum":
        proved = ref_ok and ref["status"] == "OPTIMAL"
        if proved:
            row["target"] = f">= {100 * value:g}% of the optimum"
            row["met"] = bool(valid and ours["objective"] >= value * ref["objective"] - 1e-9)
        else:  # the optimum lies between the best plan and the best proved bound
            row["target"] = f">= {100 * value:g}% of the optimum (not proved by the MIP: against the best bound)"
            row["met"] = bool(valid and row["best_bound"] is not None
                              and ours["objective"] >= value * row["best_bound"] - 1e-9)
    elif target == "mip":
        row["target"] = (f"better than the plain MIP after {ref['seconds']:.0f} s" if ref
                         else "better than the plain MIP")
        row["met"] = bool(valid and (not ref_ok or ours["objective"] > ref["objective"] + 1e-9))
    else:
        wall_seconds = (info.get("load_seconds") or 0) + (ours["seconds"] or 0)
        row["wall_seconds"] = wall_seconds
        row["target"] = f"valid, gap <= {100 * value:g}%, peak <= 4 GiB, within {limit:g} s wall"
        row["met"] = bool(valid and ours["gap"] is not None and ours["gap"] <= value
                          and (ours["peak_mib"] or 0) <= MEMORY_TARGET_MIB and wall_seconds <= limit + 1.0)
    return row


def markdown(frame: pd.DataFrame, reference_seconds: float, machine_line: str) -> str:
    lines = [f"Issue 3's table, on generated bundles (seed 0), 2 workers; {machine_line}. "
             "Command: `python -m marshrut.benchmarks.engine_table`.",
             f"Reference: the plain MIP (HiGHS via SciPy) with {reference_seconds:g} s; its objective is the optimum "
             "where its status is OPTIMAL. \"marshrut / best bound\" is a proved floor on marshrut's share of the "
             "optimum (the smaller of marshrut's and the MIP's proved bounds).", "",
             "| teachers | bundle | time limit | marshrut | proved gap | seconds | peak MiB | reference (MIP) "
             "| marshrut / reference | marshrut / best bound | target | met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in frame.iterrows():
        ours = f"{_fmt(r.marshrut_objective)} ({r.marshrut_status})"
        if r.check != "ok":
            ours += f" **{r.check[:60]}**"
        ref = "–" if r.reference_status is None or pd.isna(r.reference_status) else \
            f"{_fmt(r.reference)} ({r.reference_status}, {_fmt(r.reference_seconds, 0)} s)"
        seconds = _fmt(r.marshrut_seconds, 1)
        if "wall_seconds" in r and not pd.isna(r.get("wall_seconds")):
            seconds += f" + load {_fmt(r.load_seconds, 1)}"
        gap = "–" if r.marshrut_gap is None or pd.isna(r.marshrut_gap) else f"{100 * r.marshrut_gap:.2f}%"
        pct = "–" if r.pct_of_reference is None or pd.isna(r.pct_of_reference) else f"{r.pct_of_reference:.2f}%"
        best = r.get("best_bound")
        of_bound = "–" if best is None or pd.isna(best) or not valid_number(r.marshrut_objective) or best <= 0 \
            else f">= {100 * r.marshrut_objective / best:.2f}%"
        lines.append(f"| {r.teachers} | {r.bundle} ({r.n:,}) | {r.time_limit} | {ours} | {gap} | {seconds} | "
                     f"{_fmt(r.peak_mib, 0)} | {ref} | {pct} | {of_bound} | {r.target} | "
                     f"{'yes' if r.met else '**no**'} |")
    return "\n".join(lines) + "\n"


def valid_number(value) -> bool:
    return value is not None and not pd.isna(value)


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m marshrut.benchmarks.engine_table",
                                 description=__doc__.splitlines()[0].split(": `")[0] + ".",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--reference-seconds", type=float, default=REFERENCE_SECONDS,
                    help="time limit of the plain MIP that gives the optimum (default 300)")
    ap.add_argument("--rows", nargs="*", type=int, default=None,
                    help=f"indices of the rows to run (0-{len(ROWS) - 1}; default all)")
    ap.add_argument("--readme", default=None)
    ap.add_argument("--replot", action="store_true", help="re-read and re-check the last runs, running nothing")
    a = ap.parse_args(argv)
    rows = ROWS if a.rows is None else tuple(ROWS[i] for i in a.rows)
    main(a.out, a.reference_seconds, rows, Path(a.readme) if a.readme else None, replot=a.replot)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
