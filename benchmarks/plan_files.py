"""How long writing a plan's files takes: plan.xlsx alone, and all of them, against the write pace.

    python -m marshrut.benchmarks.plan_files --presets krymsky-district altai-krai --time-limit 20

For each preset (generated, seed 0): one plan (`plan_region` with the given limit; its quality does
not matter here), then `--repeats` times `engine.plan.write_workbook` (plan.xlsx, its plan view
included) and `engine.plan.write_plan` (the CSVs, summary, plan.xlsx, explanation), each timed, and
the write pace (engine.deadline.write_pace) measured beside them: the ratio is what the reserve for
the plan files counts in rows. Prints a markdown table and writes it to
benchmarks/results/plan_files.md (the bundles and plans stay in --out). The machine's load average
is in the table: on a shared machine every time moves with it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "results" / "plan_files.md"


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def measure(preset: str, out: Path, time_limit: float, repeats: int) -> dict:
    from marshrut.datasets.generator import generate_bundle
    from marshrut.engine import Params, load_bundle
    from marshrut.engine.deadline import write_pace
    from marshrut.engine.pipeline import plan_region
    from marshrut.engine.plan import write_plan, write_workbook

    bundle = out / "bundles" / preset
    if not (bundle / "teachers.csv").exists():
        generate_bundle(preset, bundle, seed=0)
    region = load_bundle(bundle)
    files = plan_region(region, Params(time_limit_s=time_limit))
    load_before = os.getloadavg()[0]
    workbook_s, plan_s, paces = [], [], []
    for _ in range(repeats):
        paces.append(write_pace())
        started = time.perf_counter()
        write_workbook(files, out / f"{preset}.xlsx")
        workbook_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        write_plan(files, out / f"plan-{preset}")
        plan_s.append(time.perf_counter() - started)
    pace = _median(paces)
    return {"preset": preset, "teachers": len(region.teachers), "assignments": len(files.assignments),
            "xlsx_mb": round((out / f"{preset}.xlsx").stat().st_size / 1e6, 1),
            "write_workbook_s": round(_median(workbook_s), 2), "write_plan_s": round(_median(plan_s), 2),
            "pace_us": round(pace * 1e6), "write_plan_rows": round(_median(plan_s) / pace),
            "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", default=["krymsky-district", "altai-krai"])
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "marshrut-plan-files"),
                    help="work folder for the bundles and plans (not kept)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [measure(preset, out, args.time_limit, args.repeats) for preset in args.presets]
    header = list(rows[0])
    table = "\n".join(["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
                       *("| " + " | ".join(str(r[k]) for k in header) + " |" for r in rows)])
    text = (f"{table}\n\nTaken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
            f"(medians of {args.repeats}). Command: `python -m marshrut.benchmarks.plan_files --presets "
            f"{' '.join(args.presets)} --time-limit {args.time_limit:g} --repeats {args.repeats}`.\n")
    print(text)
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
