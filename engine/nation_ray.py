"""Pricing the regions on a Ray cluster (`pip install "marshrut[distributed]"`).

Regions live in actors, a shard of regions per actor, one actor per CPU of the cluster, spread
over its nodes. An actor keeps its regions' views between rounds; each round the driver puts the
federal prices into the object store once and every shard prices its regions at them. The regions
themselves are put into the object store once by the driver, so an actor that is lost is
restarted by Ray (max_restarts) and reloads its regions from there; its round is retried
(max_task_retries) and the driver, which holds the master, the bound and the best plan, loses
nothing. Ray is imported only here: planning one region never needs it.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager

import numpy as np

from .nation import NationData, NationParams
from .nation_solve import FederalPrices, Pricing, PricingBackend, RegionPricer, price_in_turn

ACTOR_RESTARTS = 3
_AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# One token per process: Ray caches the token it loaded, so a second local cluster reuses it.
_LOCAL_TOKEN = secrets.token_hex(32)


@contextmanager
def local_auth():
    """Token authentication for a cluster started here, by environment only: a plain `ray.init()`
    would write ~/.ray/auth_token, which then changes every other cluster on the machine. Where Ray's
    own environment already says how to authenticate, it is left as it is."""
    if any(os.environ.get(v) for v in _AUTH_VARIABLES):
        yield
        return
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=_LOCAL_TOKEN)
    _reload_auth()
    try:
        yield
    finally:
        for variable in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
            os.environ.pop(variable, None)
        _reload_auth()


def _reload_auth() -> None:
    """Ray reads its authentication settings once per process; make it read them again (as Ray's
    own `_enable_token_auth` does)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _shard_class():
    import ray

    @ray.remote(num_cpus=1, max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)
    class RegionShard:
        """Pricers of a few regions; rebuilt from the object store after a restart."""

        def __init__(self, federal_ref, region_refs: list, indices: list[int], region_ids: list[str],
                     params: list) -> None:
            import ray as _ray

            from .solver.routes import warm_up

            warm_up()
            federal = _ray.get(federal_ref[0])
            regions = _ray.get(region_refs)
            self.pricers = [RegionPricer(federal, region, r, rid, p)
                            for region, r, rid, p in zip(regions, indices, region_ids, params)]

        def price(self, prices_ref: list, time_limit: float, gap: float) -> list[Pricing]:
            import ray as _ray

            return price_in_turn(self.pricers, _ray.get(prices_ref[0]), time_limit, gap=gap)

        def allot(self, allotments: dict, time_limit: float) -> list[Pricing]:
            """This shard's regions re-solved within their allotments (RegionPricer.allot)."""
            return price_in_turn(self.pricers, None, time_limit, allotments)

        def write(self, columns: dict, outcome, nation_name: str, out_dir: str) -> dict:
            """Writes the folders of this shard's regions; returns their summaries by region index."""
            from pathlib import Path

            from .nation_plan import view_plan_files
            from .plan import write_plan

            summaries = {}
            for p in self.pricers:
                files = view_plan_files(p.view, p.price_rub, p.params, columns[p.index], outcome, p.region_id,
                                        nation_name)
                write_plan(files, Path(out_dir) / "regions" / p.region_id)
                summaries[p.index] = files.summary
            return summaries

        def pid(self) -> int:
            return os.getpid()

        def node(self) -> str:
            import ray as _ray

            return _ray.get_runtime_context().get_node_id()

    return RegionShard


class RayBackend(PricingBackend):
    """Shards of regions on the connected Ray cluster (ray.init must have been called)."""

    def __init__(self, nation: NationData, params: NationParams, shards: int | None = None) -> None:
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        n_regions = len(nation.regions)
        n_shards = max(1, min(n_regions, shards or cpus))
        # Larger regions first, each to the shard with the fewest teachers so far: balanced rounds.
        order = np.argsort([-len(r.teachers) for r in nation.regions], kind="stable")
        members: list[list[int]] = [[] for _ in range(n_shards)]
        load = np.zeros(n_shards)
        for r in order:
            k = int(np.argmin(load))
            members[k].append(int(r))
            load[k] += len(nation.regions[r].teachers)
        federal_ref = ray.put(nation.federal)
        region_refs = [ray.put(region) for region in nation.regions]
        shard = _shard_class()
        self.members = [m for m in members if m]
        self.actors = [
            shard.options(scheduling_strategy="SPREAD").remote(
                [federal_ref], [region_refs[r] for r in m], m, [nation.region_ids[r] for r in m],
                [params.for_region(nation.region_ids[r]) for r in m])
            for m in self.members]
        self._refs = (federal_ref, region_refs)  # owned by the driver: restarted actors reload from them

    def price_all(self, prices: FederalPrices, time_limit: float, gap: float) -> list[Pricing]:
        import ray

        prices_ref = ray.put(prices)
        per_shard = [actor.price.remote([prices_ref], time_limit, gap) for actor in self.actors]
        return [p for shard in ray.get(per_shard) for p in shard]

    def allot_all(self, allotments: list, time_limit: float) -> list[Pricing]:
        import ray

        return [p for shard in ray.get([actor.allot.remote({r: allotments[r] for r in m}, time_limit)
                                        for actor, m in zip(self.actors, self.members)]) for p in shard]

    def write_all(self, result, nation_name: str, out_dir) -> list[dict]:
        """Every region's plan folder, written by the shard holding it; the summaries in region order."""
        import ray

        from .nation_plan import NationOutcome

        outcome = NationOutcome.of(result)
        parts = ray.get([actor.write.remote({r: result.columns[r] for r in m}, outcome, nation_name, str(out_dir))
                         for actor, m in zip(self.actors, self.members)])
        merged = {r: s for part in parts for r, s in part.items()}
        return [merged[r] for r in range(len(result.columns))]

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None):
    """Connects to the cluster at `address` (Ray's own environment, e.g. RAY_AUTH_TOKEN, is honoured),
    or starts a local one on this machine and stops it afterwards."""
    import ray

    from .solver.routes import warm_up

    warm_up()  # compile once before the workers start: numba's cache is not safe with many compilers
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
        return
    with local_auth():
        # "local": a cluster of our own even where another runs on this machine (a bare ray.init() joins it).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING",
                 log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
