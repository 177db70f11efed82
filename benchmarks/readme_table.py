"""README's table of results, measured as a planner runs the engine.

    python -m marshrut.benchmarks.readme_table [--only NAME ...] [--out DIR]

Each row: `marshrut plan BUNDLE --out DIR --time-limit S --quiet`, timed as `/usr/bin/time -v` times
it (wall_clock.timed: the whole command's wall clock, interpreter start and exit included, and its
peak memory); the objective, proved bound and gap come from the plan's summary.json. Bundles: the sample
shipped with the package, and generated presets (seed 0, cached as the other benchmarks cache them).
Prints the rows in README's format for its "Measured on this machine" table (and, on stderr, the
1-minute load average before and after each); the plans stay in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .wall_clock import MARSHRUT, timed

# (README's name of the row, preset or "sample:<folder>", teachers (None: the preset's), time limit s)
ROWS = [
    ("tomsk-school-44", "sample:tomsk-school-44", None, 20),
    ("altai-krai, 300 teachers", "altai-krai", 300, 20),
    ("krymsky-district", "krymsky-district", None, 20),
    ("altai-krai, 1,000 teachers", "altai-krai", 1000, 30),
    ("altai-krai, 3,000 teachers", "altai-krai", 3000, 60),
    ("altai-krai", "altai-krai", None, 60),
    ("krasnoyarsk-krai", "krasnoyarsk-krai", None, 60),
    ("krasnodar-krai", "krasnodar-krai", None, 120),
]


def bundle(source: str, teachers: int | None) -> Path:
    if source.startswith("sample:"):
        import marshrut.datasets

        return Path(marshrut.datasets.__file__).resolve().parent / "samples" / source.split(":", 1)[1]
    from .run import bundle_for

    return bundle_for(source, teachers)[1]


def _count(value: float) -> str:
    """Options as README writes them: 1,298 or 4.45 million."""
    return f"{value / 1e6:.3g} million" if value >= 1e6 else f"{value:,.0f}"


def row_text(name: str, limit: float, summary: dict, run: dict) -> str:
    """One row of README's table from a plan's summary.json and its timed run."""
    teachers, options = summary["teachers"], summary["statistics"]["options"]
    if summary["status"] == "OPTIMAL":
        result = f"{summary['objective']:,.2f}, OPTIMAL, proved in {summary['solve_seconds']:.1f} s"
    else:
        result = f"{summary['objective']:,.2f}, bound {summary['bound']:,.2f}, proved gap " + \
            ("< 0.01%" if summary["gap"] < 1e-4 else f"{100 * summary['gap']:.2f}%")
    result += f"; wall {run['wall_s']:.1f} s, peak {run['peak_gib']:.1f} GiB"
    return f"| {name} | {teachers:,} | {_count(options)} | {limit:g} s | {result} |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these rows (README's names)")
    ap.add_argument("--out", default="benchmarks/results/readme-table",
                    help="work folder for the plans and logs (not kept in the repository)")
    args = ap.parse_args(argv)
    rows = [row for row in ROWS if not args.only or row[0] in args.only]
    if not rows:
        ap.error("no such row; the rows are: " + "; ".join(row[0] for row in ROWS))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, source, teachers, limit) in enumerate(rows):
        plan_dir = out / f"plan-{i}"
        load_before = os.getloadavg()[0]
        run = timed([*MARSHRUT, "plan", str(bundle(source, teachers)), "--out", str(plan_dir),
                     "--time-limit", str(limit), "--quiet"], out / f"plan-{i}.log")
        if run["status"] != 0:
            print(f"| {name} | the plan failed (exit {run['status']}): see {out / f'plan-{i}.log'} |", flush=True)
            continue
        summary = json.loads((plan_dir / "summary.json").read_text(encoding="utf-8"))
        print(row_text(name, limit, summary, run), flush=True)
        print(f"  (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
