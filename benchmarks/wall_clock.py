"""The time limit as the planner sees it, and sweeps against one plan (issue 13, items 5 and 6).

    python -m marshrut.benchmarks.wall_clock --presets krymsky-district altai-krai --time-limit 60

For each preset (generated, seed 0): `marshrut plan BUNDLE --time-limit T`, timed as `/usr/bin/time -v`
times it (wall clock of the whole command, interpreter start and exit included, and peak memory), the
seconds from the command's start to the last plan file written (what SPEC §3 counts), and then
`marshrut sweep BUNDLE --budget 0.5x..2x --points 7 --time-limit T` the same way: its wall clock
against the plan's measured in the same run, and whether the curve is monotone. Prints a markdown
table (and writes it to benchmarks/results/wall_clock.md; the bundles and plans stay in --out).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

# The `marshrut` command of the interpreter running the benchmark (its environment's marshrut, whatever PATH says).
MARSHRUT = [sys.executable, "-c", "from marshrut.cli import main; main()"]
PLAN_FILES = ("assignments.csv", "routes.csv", "clusters.csv", "summary.json", "plan.xlsx", "explain.csv",
              "explain_totals.csv")


def timed(command: list[str], log: Path) -> dict:
    """Runs `command` (its output to `log`): wall seconds, peak resident GiB, exit status.

    The peak is the child's own, from the kernel's accounting when it is reaped (wait4: what
    `/usr/bin/time -v` reports, without needing that tool)."""
    started, clock = time.time(), time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - clock
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {"started": started, "wall_s": seconds, "peak_gib": usage.ru_maxrss / 2**20, "status": process.returncode}


# The kept result, beside the other benchmarks' tables; the bundles and plans stay in the work folder.
TABLE = Path(__file__).resolve().parent / "results" / "wall_clock.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", default=["krymsky-district", "altai-krai"])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", default="benchmarks/results/wall-clock",
                    help="work folder for the bundles and plans (not kept in the repository)")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--readme", action="store_true",
                    help="write the table into benchmarks/README.md (section wall-clock)")
    ap.add_argument("--replot", action="store_true", help="only write results/wall_clock.md into the README")
    args = ap.parse_args(argv)
    from marshrut.datasets.generator import generate_bundle

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        _to_readme(out, args)
        return 0
    rows = []
    for preset in args.presets:
        bundle = out / "bundles" / preset
        if not (bundle / "teachers.csv").exists():
            generate_bundle(preset, bundle, seed=0)
        load = os.getloadavg()
        plan_dir = out / f"plan-{preset}"
        plan = timed([*MARSHRUT, "plan", str(bundle), "--out", str(plan_dir), "--time-limit", str(args.time_limit),
                      "--quiet"], out / f"plan-{preset}.log")
        to_files = max((plan_dir / n).stat().st_mtime for n in PLAN_FILES) - plan["started"]
        summary = pd.read_json(plan_dir / "summary.json", typ="series")
        row = {"preset": preset, "limit_s": args.time_limit, "plan_wall_s": round(plan["wall_s"], 1),
               "to_last_file_s": round(to_files, 1), "overrun": f"{100 * (to_files / args.time_limit - 1):+.1f}%",
               "peak_gib": round(plan["peak_gib"], 2), "gap": f"{100 * summary['gap']:.2f}%",
               "solve_given_s": summary["wall_clock"]["solve_limit_s"], "solve_took_s": summary["wall_clock"]["solve_s"],
               "load_before": f"{load[0]:.1f}"}
        if not args.no_sweep:
            sweep_dir = out / f"sweep-{preset}"
            sweep = timed([*MARSHRUT, "sweep", str(bundle), "--budget", "0.5x..2x", "--points", "7", "--out",
                           str(sweep_dir), "--time-limit", str(args.time_limit)], out / f"sweep-{preset}.log")
            curve = pd.read_csv(sweep_dir / "sweep-budget.csv")
            row.update(sweep_wall_s=round(sweep["wall_s"], 1), sweep_over_plan=round(sweep["wall_s"] / plan["wall_s"], 2),
                       monotone=bool((curve["objective"].diff().dropna() >= -1e-9).all()),
                       sweep_gaps="/".join(f"{100 * g:.2f}" for g in curve["gap"]),
                       sweep_peak_gib=round(sweep["peak_gib"], 2))
        row["load_after"] = f"{os.getloadavg()[0]:.1f}"
        rows.append(row)
        print(row, flush=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = "\n".join(["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
                      + ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = f"{table}\n\nTaken {stamp} on {os.cpu_count()} cores (load averages above: the machine is shared).\n"
    command = "python -m marshrut.benchmarks.wall_clock --presets " + " ".join(args.presets) + \
        f" --time-limit {args.time_limit:g}" + (" --no-sweep" if args.no_sweep else "")
    text += f"Command: `{command}`.\n"
    TABLE.write_text(text, encoding="utf-8")
    print(text)
    if args.readme:
        _to_readme(out, args)
    return 0


def _to_readme(out: Path, args) -> None:
    from marshrut.benchmarks.run import update_readme

    update_readme({"wall-clock": TABLE.read_text(encoding="utf-8")})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
