"""The per-teacher pricing search (engine.solver.routes) against brute force, and the decomposition's bound.

Brute force enumerates every subset of a teacher's options up to her count limits, checks the per-teacher
rules itself (counts, one session per program/site, dates, hours, voucher, pins) and takes the best value
at the given prices. The search must find that value (tolerance 0), mark a route that has it, and, with a
node limit that cuts it short, still return an upper bound.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from oracle import exact_optimum, random_bundle

from marshrut.engine.bundle import load_bundle
from marshrut.engine.params import Params
from marshrut.engine.solver import decompose
from marshrut.engine.solver.decompose import Decomposition, Duals, Round, _stalled
from marshrut.engine.solver.instance import Instance
from marshrut.engine.solver.routes import RoutePricer


def _brute_force(inst: Instance, teacher: int, price: np.ndarray) -> float:
    opts, acts = inst.options, inst.activities
    lo, hi = opts.first[teacher], opts.first[teacher + 1]
    mine = np.arange(lo, hi)
    pinned = [a for a in mine if opts.pinned[a]]
    free = [a for a in mine if not opts.pinned[a]]
    need = inst.need[teacher]
    best = -np.inf
    max_extra = int(inst.limits.sum())
    for size in range(0, min(max_extra, len(free)) + 1):
        for extra in itertools.combinations(free, size):
            route = pinned + list(extra)
            act = opts.activity[route]
            kinds = np.bincount(inst.kind[route], minlength=3)
            if (kinds > inst.limits).any():
                continue
            groups = [g for g in acts.group[act] if g >= 0]
            if len(groups) != len(set(groups)):
                continue
            dated = [a for a in act if acts.dated[a]]
            if any(acts.start[x] <= acts.end[y] and acts.start[y] <= acts.end[x]
                   for x, y in itertools.combinations(dated, 2)):
                continue
            if inst.hours[route].sum() > inst.region.teachers.max_hours[teacher] + 1e-9:
                continue
            if inst.voucher_rub[route].sum() > inst.region.teachers.voucher_rub[teacher]:
                continue
            cover = acts.weights[act].sum(axis=0) if len(route) else np.zeros_like(need)
            value = float((need * np.minimum(1.0, cover)).sum() - price[route].sum())
            best = max(best, value)
    return best


def _route_value(inst: Instance, teacher: int, chosen: np.ndarray, price: np.ndarray) -> float:
    lo, hi = inst.options.first[teacher], inst.options.first[teacher + 1]
    route = np.arange(lo, hi)[chosen[lo:hi]]
    cover = inst.activities.weights[inst.options.activity[route]].sum(axis=0)
    return float((inst.need[teacher] * np.minimum(1.0, cover)).sum() - price[route].sum())


@pytest.mark.parametrize("seed", range(10))
def test_best_routes_match_brute_force(tmp_path, seed):
    folder = random_bundle(seed, tmp_path / "b", teachers=6, mentors=7, sites=3, sessions_per_site=2,
                           programs=5, sessions_per_program=2, competencies=4, diag_density=0.7,
                           tight=0.3 + 0.05 * seed)
    region = load_bundle(folder)
    limits = {"max_internships": 1 + seed % 2, "max_programs": 1 + seed % 3}
    inst = Instance.build(region, Params(**limits))
    assert inst.n_options > 0
    rng = np.random.default_rng(seed)
    pricer = RoutePricer(inst)
    for scale in (0.0, 0.3, 1.0):
        # Prices as the Lagrangian makes them: cost plus a random price per seat; one in five negative,
        # as a keep bonus makes them.
        price = inst.solver_cost + scale * rng.random(inst.n_options)
        price[rng.random(inst.n_options) < 0.2] *= -1
        z, exact, chosen = pricer(price, node_limit=10**7)
        assert exact.all()
        for t in range(len(inst.need)):
            expected = _brute_force(inst, t, price)
            assert z[t] == pytest.approx(expected, abs=1e-9), (t, scale)
            assert _route_value(inst, t, chosen, price) == pytest.approx(expected, abs=1e-9)
        # Cut short, the search still bounds every teacher's best route from above.
        z_short, exact_short, chosen_short = pricer(price, node_limit=2)
        assert (z_short >= z - 1e-9).all()
        for t in range(len(inst.need)):
            assert _route_value(inst, t, chosen_short, price) <= z[t] + 1e-9


@pytest.mark.parametrize("seed", range(8))
def test_a_search_cut_anywhere_still_bounds_from_above(tmp_path, seed):
    """The open ends' bound (the Lagrangian of the cover caps at every open depth) is a proof at any node
    limit, with many options per teacher sharing few competencies, and negative prices among them; at the
    root it is never looser than the uncovered need when no price is negative."""
    folder = random_bundle(200 + seed, tmp_path / "b", teachers=12, mentors=10, sites=4, sessions_per_site=3,
                           programs=12, sessions_per_program=3, competencies=3 + seed % 4, diag_density=0.8,
                           tight=0.2)
    inst = Instance.build(load_bundle(folder), Params(max_internships=2, max_programs=3))
    rng = np.random.default_rng(seed)
    pricer = RoutePricer(inst)
    for scale, negative in ((0.0, 0.0), (0.2, 0.0), (1.0, 0.0), (0.3, 0.2)):
        price = inst.solver_cost + scale * rng.random(inst.n_options)
        price[rng.random(inst.n_options) < negative] *= -1
        z, exact, _ = pricer(price, node_limit=10**7)
        assert exact.all()
        for node_limit in (0, 1, 3, 10, 100):
            z_cut, _, chosen = pricer(price, node_limit=node_limit)
            assert (z_cut >= z - 1e-9).all(), (scale, node_limit)
            for t in range(len(inst.need)):
                assert _route_value(inst, t, chosen, price) <= z[t] + 1e-9
                # `found` is the value of the route marked, so z - found is what the search left unproved.
                assert pricer.found[t] == pytest.approx(_route_value(inst, t, chosen, price), abs=1e-9)
        if negative == 0.0:
            root, _, _ = pricer(price, node_limit=0)
            assert (root <= inst.need.sum(axis=1) + 1e-9).all()


def test_cut_searches_go_deeper_only_when_they_hold_back_enough_of_the_gap(tmp_path, monkeypatch):
    """Decomposition.price searches the teachers its shallow pass left open again, deeper, when what they
    left unproved is a large enough share of the gap between the bound and the best value known."""
    folder = random_bundle(211, tmp_path / "b", teachers=12, mentors=10, sites=4, sessions_per_site=3,
                           programs=12, sessions_per_program=3, competencies=4, diag_density=0.8, tight=0.2)
    inst = Instance.build(load_bundle(folder), Params(max_internships=2, max_programs=3))
    monkeypatch.setattr(decompose, "SHALLOW_NODE_LIMIT", 1)
    far = Decomposition(inst)
    far.reference = -1e9  # a plan worth nothing: the gap dwarfs any search's slack
    bound_shallow, _, open_shallow = far.price(Duals.zero(inst), node_limit=10**7)
    assert open_shallow > 0
    near = Decomposition(inst)
    near.reference = bound_shallow - 1e-6  # the bound met: what the searches left open is the whole gap
    bound_deep, _, open_deep = near.price(Duals.zero(inst), node_limit=10**7)
    assert open_deep == 0
    assert bound_deep < bound_shallow - 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_decomposition_bound_is_never_below_the_optimum(tmp_path, seed):
    folder = random_bundle(100 + seed, tmp_path / "b", teachers=14, tight=0.8)
    exact, _ = exact_optimum(folder, {})
    inst = Instance.build(load_bundle(folder), Params())
    decomposition = Decomposition(inst)
    rounds = decomposition.run(inst.options.pinned.copy(), time_limit=20.0)
    assert rounds
    assert decomposition.best_bound >= exact - 1e-6
    # The master's value is what known routes can do fractionally: never above the bound it converged to.
    assert rounds[-1].master <= decomposition.best_bound + 1e-6
    plan = decomposition.priced_plan(decomposition.last_duals, 10.0)
    assert inst.objective(plan) <= exact + 1e-6


@pytest.mark.parametrize("seed", range(4))
def test_a_pricing_cut_short_by_its_deadline_still_bounds_every_teacher(tmp_path, seed):
    """Past the deadline only the first slice of teachers is searched; the others get a bound found
    without search, never below their best route (keep bonuses make some prices negative here)."""
    folder = random_bundle(400 + seed, tmp_path / "b", teachers=24, tight=0.5)
    inst = Instance.build(load_bundle(folder), Params())
    rng = np.random.default_rng(seed)
    price = inst.solver_cost + rng.random(inst.n_options)
    price[rng.random(inst.n_options) < 0.1] *= -1
    pricer = RoutePricer(inst)
    z, exact, _ = pricer(price, node_limit=10**7)
    assert exact.all()
    for _ in range(3):  # each call starts where the last one stopped
        z_cut, exact_cut, chosen_cut = pricer(price, node_limit=10**7, deadline=0.0)
        assert (~exact_cut).any() and exact_cut.any()
        assert (z_cut >= z - 1e-9).all()
        assert np.allclose(z_cut[exact_cut], z[exact_cut])
        for t in np.flatnonzero(~exact_cut):
            assert not chosen_cut[inst.options.first[t]:inst.options.first[t + 1]].any()


@pytest.mark.parametrize("seed", range(4))
def test_a_pricer_of_some_teachers_prices_them_as_the_whole_regions_does(tmp_path, seed):
    """A sample's pricer (its own options alone, prices in its order) finds the same routes and values for
    its teachers as the region's pricer, and nothing for the others."""
    folder = random_bundle(500 + seed, tmp_path / "b", teachers=20, tight=0.5)
    inst = Instance.build(load_bundle(folder), Params())
    rng = np.random.default_rng(seed)
    price = inst.solver_cost + rng.random(inst.n_options)
    z, exact, chosen = RoutePricer(inst)(price, node_limit=10**7)
    some = rng.random(len(inst.need)) < 0.5
    pricer = RoutePricer(inst, some)
    assert len(pricer.options) == int(some[inst.options.teacher].sum())
    z_some, exact_some, chosen_some = pricer(pricer.gather(price), node_limit=10**7)
    assert np.allclose(z_some[some], z[some]) and (z_some[~some] == 0).all() and exact_some.all()
    mine = some[inst.options.teacher]
    assert (chosen_some[mine] == chosen[mine]).all() and not chosen_some[~mine].any()
    # Cut by a deadline, the sample's unsearched teachers are bounded too.
    z_cut, exact_cut, _ = pricer(pricer.gather(price), node_limit=10**7, deadline=0.0)
    assert (z_cut[some] >= z[some] - 1e-9).all() and (~exact_cut[some]).any()


@pytest.mark.parametrize("seed", range(5))
def test_prices_from_a_sample_still_give_a_proved_bound_and_valid_plans(tmp_path, seed, monkeypatch):
    """Big regions take their first prices from a sample of their teachers (Decomposition._sampled_prices);
    forced here on small ones: the bound stays a proof (never below the exact optimum), the master's value
    never above it, and the plans priced from it obey every rule."""
    from marshrut.engine.rules import PlanArrays, violations
    from marshrut.engine.solver import decompose

    monkeypatch.setattr(decompose, "SAMPLE_TEACHERS", 4)
    monkeypatch.setattr(decompose, "SAMPLE_LEVEL", 3)
    folder = random_bundle(600 + seed, tmp_path / "b", teachers=16, tight=0.7)
    exact, _ = exact_optimum(folder, {})
    region = load_bundle(folder)
    inst = Instance.build(region, Params())
    decomposition = Decomposition(inst)
    sampled = []
    original = Decomposition._sampled_prices
    monkeypatch.setattr(Decomposition, "_sampled_prices",
                        lambda self, *a: sampled.append(self.members.sum()) or original(self, *a))
    rounds = decomposition.run(inst.options.pinned.copy(), time_limit=20.0)
    assert sampled == [16]  # the region sampled once (its sample of 5 is too small to sample again)
    assert rounds and decomposition.best_bound >= exact - 1e-6
    assert rounds[-1].master <= decomposition.best_bound + 1e-6
    for duals in (decomposition.best_duals, decomposition.last_duals):
        plan = decomposition.priced_plan(duals, 10.0)
        assert not violations(region, inst.params, inst.activities,
                              PlanArrays(inst.options.teacher[plan], inst.options.activity[plan]))
        assert inst.objective(plan) <= exact + 1e-6


def test_a_sample_stops_once_its_master_and_bound_stall():
    def rounds(*pairs):
        return [Round(float(i), 0, master, bound, 0) for i, (master, bound) in enumerate(pairs)]

    moving = rounds((100, 120), (105, 115), (108, 112), (109, 111))
    assert not _stalled(moving, 1e-4, 3)
    still = rounds((100, 120), (108.0, 112.0), (108.0, 112.5), (108.0, 112.0), (108.005, 112.3))
    assert _stalled(still, 1e-4, 3)
    assert not _stalled(still[:3], 1e-4, 3)  # too few rounds to tell
    # a bound that still falls (the best so far) is progress, even with the master still
    falling = rounds((108, 120), (108, 115), (108, 113), (108, 112))
    assert not _stalled(falling, 1e-4, 3)
