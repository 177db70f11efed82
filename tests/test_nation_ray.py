"""The distributed path for real: a local Ray cluster of two nodes (ray.cluster_utils.Cluster), a small
nation whose regions sit on different nodes, the same result as the in-process solve; an actor's
process killed mid-solve, and the plan still valid and as good. The clusters are stopped by their
own handles, never by `ray stop` (which would stop every Ray process on the machine)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import ray  # the test extras install it
from ray.cluster_utils import Cluster

from marshrut.engine.nation import load_nation, nation_params
from marshrut.engine.nation_plan import write_nation_plan
from marshrut.engine.nation_ray import RayBackend, local_auth
from marshrut.engine.nation_solve import solve_nation
from marshrut.engine.solver.routes import warm_up
from nation_oracle import check_nation_plan, nation_exact_optimum, random_nation

OBJECT_STORE_BYTES = 80 * 1024 * 1024  # per node: the machine is shared


@pytest.fixture(scope="module")
def two_nodes():
    warm_up()  # numba's cache is compiled once here, before any worker starts
    with local_auth():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                                "object_store_memory": OBJECT_STORE_BYTES})
        cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
        try:
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


@pytest.fixture(scope="module")
def nation_dir(tmp_path_factory) -> Path:
    return random_nation(5, tmp_path_factory.mktemp("nation") / "n", regions=4, teachers=6)


def test_two_nodes_give_the_in_process_result(two_nodes, nation_dir, tmp_path):
    nation = load_nation(nation_dir)
    params = nation_params({"time_limit_s": 40}, nation.region_ids)
    local = solve_nation(nation, params)
    backend = RayBackend(nation, params)
    try:
        nodes = ray.get([actor.node.remote() for actor in backend.actors])
        assert len(backend.actors) == 2 and len(set(nodes)) == 2  # one shard of regions on each node
        distributed = solve_nation(nation, params, backend)
    finally:
        backend.close()
    write_nation_plan(nation, params, distributed, tmp_path / "out")
    assert check_nation_plan(nation_dir, {}, tmp_path / "out") == []
    optimum = nation_exact_optimum(nation_dir)
    assert distributed.objective == pytest.approx(local.objective, abs=1e-9)
    assert distributed.objective == pytest.approx(optimum, abs=1e-6)
    assert distributed.bound >= optimum - 1e-7 and local.bound >= optimum - 1e-7


def test_a_killed_actor_is_restarted_and_the_plan_survives(two_nodes, nation_dir, tmp_path):
    nation = load_nation(nation_dir)
    params = nation_params({"time_limit_s": 40}, nation.region_ids)
    backend = RayBackend(nation, params)
    victim = backend.actors[0]
    first_pid = ray.get(victim.pid.remote())
    killed = []

    def kill_after_first_round(event) -> None:
        if event.phase == "round" and not killed:
            os.kill(first_pid, signal.SIGKILL)  # the worker process dies, as on a lost node
            killed.append(event.round)

    try:
        result = solve_nation(nation, params, backend, on_progress=kill_after_first_round)
        restarted_pid = ray.get(victim.pid.remote())
    finally:
        backend.close()
    assert killed == [1]
    assert restarted_pid != first_pid
    assert len(result.rounds) >= 2  # the solve went on after the loss
    write_nation_plan(nation, params, result, tmp_path / "out")
    assert check_nation_plan(nation_dir, {}, tmp_path / "out") == []
    assert result.objective == pytest.approx(nation_exact_optimum(nation_dir), abs=1e-6)


def test_the_cli_plans_a_nation_on_a_local_cluster_it_starts_and_stops(nation_dir, tmp_path):
    """`marshrut plan NATION` without --cluster: a local cluster of its own, stopped afterwards, and no
    token file left behind to change other clusters."""
    import json
    import subprocess
    import sys

    token_file = Path.home() / ".ray" / "auth_token"
    had_token = token_file.exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    done = subprocess.run([sys.executable, "-m", "marshrut", "plan", str(nation_dir), "--out", str(tmp_path / "out"),
                           "--time-limit", "90", "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["solve_seconds"] <= 90
    assert check_nation_plan(nation_dir, {}, tmp_path / "out") == []
    assert summary["objective"] == pytest.approx(nation_exact_optimum(nation_dir), abs=1e-6)
    assert token_file.exists() == had_token
