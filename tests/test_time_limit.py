"""`time_limit_s` is the planner's wall clock (SPEC §3 v2): from the command's start (CLI) or the
API's acceptance of the plan to the last plan file written, loading and writing included.

The region is big enough that the search would use all the time it is given (3,000 teachers of
altai-krai: its proved gap does not close in seconds), so the plan is late unless loading, profiles
and writing come out of the limit. The margin here is generous (the machine is shared); the real
overrun is measured in benchmarks/README.md ("Wall clock").
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest
from api_server import Server, wait_for, zip_folder

from marshrut.datasets.generator import generate_bundle
from marshrut.engine.solver.routes import warm_up

LIMIT = 15.0
# Generous: the machine running the tests may be shared by many (at a load average of 15 on 2
# cores a plan was seen to take 43 s). The accounting below is what makes the limit hold.
ALLOWED = LIMIT * 2.0


def check_accounting(summary: dict) -> None:
    """The search was given what was left of the request's clock after the start, the loading and
    the profiles, less the reserve for writing (or the minimum): never the whole limit."""
    clock = summary["wall_clock"]
    assert clock["limit_s"] == LIMIT
    assert clock["before_solve_s"] > 0 and clock["reserve_s"] > 0
    left = LIMIT - clock["before_solve_s"] - clock["reserve_s"]
    assert clock["solve_limit_s"] == pytest.approx(max(1.0, left), abs=0.05)
    assert summary["params"]["time_limit_s"] == LIMIT  # the planner's limit, as asked
PLAN_FILES = ("assignments.csv", "routes.csv", "clusters.csv", "summary.json", "plan.xlsx", "explain.csv",
              "explain_totals.csv")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    warm_up()  # compiles the route search into numba's cache once, outside the timed runs
    return generate_bundle("altai-krai", tmp_path_factory.mktemp("limit") / "altai-3000", seed=5, teachers=3000)


def test_cli_plan_files_exist_by_the_limit(bundle, tmp_path):
    out = tmp_path / "plan"
    started = time.time()
    run = subprocess.run([sys.executable, "-c", "from marshrut.cli import app; app()", "plan", str(bundle),
                          "--out", str(out), "--time-limit", str(LIMIT), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in PLAN_FILES:
        assert (out / name).stat().st_size > 0, name
    # from the command's start to the last plan file written (the interpreter's exit comes after)
    wall = max((out / name).stat().st_mtime for name in PLAN_FILES) - started
    assert wall <= ALLOWED, f"the plan took {wall:.1f} s with a limit of {LIMIT} s"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] in ("OPTIMAL", "FEASIBLE") and sum(summary["assignments"].values()) > 0
    check_accounting(summary)


def test_api_plan_is_done_by_the_limit_from_its_acceptance(bundle, tmp_path):
    with Server(f"sqlite:///{tmp_path}/marshrut.sqlite", log_dir=tmp_path) as server, server.client() as http:
        region = http.post("/v1/regions", files={"file": ("altai.zip", zip_folder(bundle))})
        assert region.status_code == 201, region.text
        asked = time.monotonic()
        response = http.post("/v1/plans", json={"region_id": region.json()["region_id"],
                                                "params": {"time_limit_s": LIMIT}})
        assert response.status_code == 202, response.text
        plan = wait_for(http, response.json()["plan_id"], timeout=300)
        seen_done = time.monotonic() - asked
        assert plan["status"] == "done", plan
        accepted, finished = (dt.datetime.fromisoformat(plan[k].replace("Z", "+00:00"))
                              for k in ("created_at", "finished_at"))
        wall = (finished - accepted).total_seconds()
        assert 0 < wall <= ALLOWED, (f"the plan took {wall:.1f} s from its acceptance with a limit of {LIMIT} s: "
                                     f"{plan['summary'].get('wall_clock')}, started {plan['started_at']}")
        assert seen_done <= ALLOWED + 5  # the client's own view, polling every 0.1 s, agrees
        check_accounting(plan["summary"])
        assignments = http.get(f"/v1/plans/{plan['plan_id']}/assignments", params={"format": "csv"})
        assert assignments.status_code == 200 and assignments.text.count("\n") > 1


CLOCK_AGE = ("from marshrut.engine.deadline import Deadline; "
             "print(Deadline.since_process_start(60.0).elapsed())")


def test_the_clock_starts_with_the_command_not_with_the_shell_that_execd_it():
    """`bash -c 'A && marshrut ...'` exec's marshrut in the shell's process: A's time is not the command's."""
    alone = float(subprocess.run([sys.executable, "-c", CLOCK_AGE], check=True, capture_output=True,
                                 text=True).stdout)
    after_a_shell = float(subprocess.run(["bash", "-c", f"sleep 8 && exec {sys.executable} -c '{CLOCK_AGE}'"],
                                         check=True, capture_output=True, text=True).stdout)
    assert 0.0 < alone < 8.0  # the interpreter's start-up and the imports count
    assert after_a_shell < 7.0, after_a_shell  # the shell's 8 s do not
