"""The benchmark command cannot rot: a smoke run in seconds, and the peers' plans are honest.

Timings are never asserted (shared, noisy machines); rows, checks and optima are.
"""

import json

import pandas as pd
import pytest

import oracle
from marshrut.benchmarks import run
from marshrut.benchmarks.peers import PEERS, assignments_frame
from marshrut.engine import Params, load_bundle

SOLVERS = ["marshrut", "greedy", "cpsat", "mip"]  # Timefold (optional) has a test of its own below


def test_smoke_run_writes_a_checked_row_per_solver(tmp_path, monkeypatch):
    monkeypatch.setenv("MARSHRUT_BENCH_CACHE", str(tmp_path / "cache"))
    readme_before = run.README.read_text(encoding="utf-8") if run.README.exists() else None
    written = run.main(presets=[], sizes=[], time_limit=1.0, out_dir=tmp_path / "out", solvers=SOLVERS,
                       quick=True, log=lambda *_: None)
    rows = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(rows.solver) == SOLVERS
    assert (rows.check == "ok").all(), rows[["solver", "status", "check", "note"]].to_string()
    assert rows.status.isin(["OPTIMAL", "FEASIBLE"]).all(), rows[["solver", "status", "note"]].to_string()
    assert rows.pct_best.max() == pytest.approx(100.0)
    assert (rows.peak_mib > 0).all()
    # the objective in each row is the oracle's, recomputed from the written plan
    for solver in SOLVERS:
        plan = tmp_path / "out" / "runs" / rows.bundle[0] / solver / "assignments.csv"
        assert plan.exists()
    assert (tmp_path / "out" / "results.md").read_text(encoding="utf-8").count("\n|") >= len(SOLVERS) + 1
    assert (tmp_path / "out" / "curves.png").exists()
    assert set(written) >= {"results", "curves"}
    # a run outside benchmarks/results leaves the README alone
    after = run.README.read_text(encoding="utf-8") if run.README.exists() else None
    assert after == readme_before


def test_scaling_run_writes_table_plot_and_slope(tmp_path, monkeypatch):
    monkeypatch.setenv("MARSHRUT_BENCH_CACHE", str(tmp_path / "cache"))
    frame = run.scaling([20, 40], ["marshrut", "greedy"], 1.0, tmp_path, preset="tomsk-school-44",
                        log=lambda *_: None)
    assert len(frame) == 4 and (frame.check == "ok").all()
    run.plot_scaling(frame, tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert "n^" in run.scaling_sentence(frame, run.slopes(frame))
    # tiny regions are proved within 2% at once: the time to it is read from the run's progress
    ours = frame[frame.solver == "marshrut"]
    assert ours.to_2pct_s.notna().all() and (ours.to_2pct_s <= ours.seconds + 1e-9).all()
    assert frame[frame.solver == "greedy"].to_2pct_s.isna().all()  # greedy proves nothing


def test_time_to_a_proved_gap_is_the_first_progress_point_within_it():
    history = [(0.5, 10.0, None, "greedy"), (1.0, 10.0, 20.0, "bound"), (2.0, 19.0, 20.0, "round"),
               (3.0, 19.7, 20.0, "round"), (4.0, 19.9, 20.0, "round")]
    assert run.time_to_gap(history, 0.02) == 3.0  # (20 - 19.7) / 20 = 1.5%
    assert run.time_to_gap(history, 0.06) == 2.0
    assert run.time_to_gap(history[:3], 0.02) is None
    assert run.time_to_gap([], 0.02) is None and run.time_to_gap(None) is None
    frame = pd.DataFrame({"teachers": [100, 1000, 10000], "solver": ["marshrut"] * 3,
                          "first_plan_s": [1.0, 10.0, 100.0], "to_2pct_s": [2.0, 200.0, None],
                          "peak_mib": [100.0, 100.0, 100.0], "options": [10, 1000, 100000]})
    slope = run.slopes(frame)
    assert slope["to_2pct_s"] == pytest.approx(2.0)  # fitted on the two sizes proved
    assert "not within the time limit at 10,000" in run.proved_range(frame)


def test_broken_plan_is_marked_not_hidden(tmp_path):
    bundle = oracle.random_bundle(3, tmp_path / "b", teachers=6)
    index = oracle.BundleIndex(str(bundle))
    teacher = next(iter(index.teachers))
    mentor = next(rid for (k, rid) in index.acts if k == "mentor")
    frame = oracle.plan_frame(index, [(teacher, "mentor", mentor)])
    frame = pd.concat([frame, frame])  # the same assignment twice breaks rule 2
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    frame.to_csv(run_dir / "assignments.csv", index=False)
    row = run.checked_row(oracle, index, "b", "fake", {"status": "FEASIBLE", "objective": 0.0}, run_dir)
    assert row["check"].startswith("BROKEN")
    assert (run_dir / "violations.txt").exists()


@pytest.mark.parametrize("seed", range(4))
def test_peers_plans_pass_the_checker_and_the_mip_is_exact(tmp_path, seed):
    bundle = oracle.random_bundle(seed, tmp_path / "b", teachers=8, tight=0.7)
    region = load_bundle(bundle)
    optimum, _ = oracle.exact_optimum(bundle, {})
    for name, peer in PEERS.items():
        result = peer(region, Params(time_limit_s=10), 10.0)
        assert result.chosen is not None, name
        frame = assignments_frame(result.instance, result.chosen)
        assert oracle.check_plan(bundle, {}, frame) == [], name
        value = oracle.objective(bundle, {}, frame)
        assert value == pytest.approx(result.objective, abs=1e-6), name
        assert value <= optimum + 1e-6, name
        if result.bound is not None:
            assert result.bound >= optimum - 1e-6, name
    mip = PEERS["mip"](region, Params(time_limit_s=10), 10.0)
    assert mip.status == "OPTIMAL"
    assert mip.objective == pytest.approx(optimum, abs=1e-5)


def test_highs_log_gives_the_mip_curve(tmp_path):
    bundle = oracle.random_bundle(1, tmp_path / "b", teachers=10)
    region = load_bundle(bundle)
    result = PEERS["mip"](region, Params(time_limit_s=10), 10.0, log_path=str(tmp_path / "highs.log"))
    assert result.history and result.history[-1][1] == pytest.approx(result.objective, abs=1e-6)


def test_timefold_peer_runs_in_a_worker(tmp_path):
    bundle = oracle.random_bundle(2, tmp_path / "b", teachers=8)
    info = run.run_worker(bundle, "timefold", 3.0, tmp_path / "tf")
    assert info["status"] in ("FEASIBLE", "NO_PLAN"), info
    assert json.loads((tmp_path / "tf" / "result.json").read_text())["statistics"]["jvm_start_seconds"] > 0
    if info["status"] == "FEASIBLE":
        assert oracle.check_plan(bundle, {}, pd.read_csv(tmp_path / "tf" / "assignments.csv", dtype=str,
                                                         keep_default_na=False)) == []


def test_readme_table_rows_are_measured_from_a_real_plan(tmp_path, capsys):
    """README's table tool plans the shipped sample through the CLI, timed, and prints its row from the
    plan's summary.json, in README's format."""
    from marshrut.benchmarks import readme_table

    assert readme_table.main(["--only", "tomsk-school-44", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads((tmp_path / "plan-0" / "summary.json").read_text(encoding="utf-8"))
    assert summary["teachers"] == 84 and summary["statistics"]["options"] > 0
    row = printed[-1].split(" | ")
    assert row[0] == "| tomsk-school-44" and row[1] == "84" and row[3] == "20 s"
    assert row[2] == f"{summary['statistics']['options']:,}"
    assert row[4].startswith(f"{summary['objective']:,.2f}, ")
    wall = float(row[4].split("wall ")[1].split(" s")[0])
    peak = float(row[4].split("peak ")[1].split(" GiB")[0])
    assert 0 < wall < 120 and 0.05 < peak < 8  # a real process's clock and memory, not zeros
    with pytest.raises(SystemExit):
        readme_table.main(["--only", "no such region", "--out", str(tmp_path)])
