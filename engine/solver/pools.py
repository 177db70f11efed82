"""Pools: activities that are interchangeable for every teacher, seen by the solvers as one.

Options are (teacher, activity) pairs, and online sessions and remote mentors reach every teacher, so
their options grow as the square of the region. Two kinds of activities are interchangeable:

* the online sessions of one program: same weights, price and hours (the program's), one session per
  program per teacher, no trip and no date clash (online sessions take no part in the schedule rule);
* mentors of one school with the same weights, stipend, hours per mentee and format (remote or not):
  every rule but "never oneself" treats them alike (the school decides rule 3's other-school clause
  and the trip of rule 5).

A pool is one solver activity with the sum of its members' seats. The pooled problem has the same
optimum as the unpooled one:

* any plan over the members is a plan over the pools (the seats add up);
* any plan over the pools splits back into the members (`split`), because Hall's condition holds: a
  teacher may use every member of her pool but, if she is herself a member's mentor, that one. A set
  of two or more such teachers together may use every member (each excludes a different one), so
  Hall's condition reduces to the pool's seats (kept by the capacity row) and, for one teacher alone,
  to some other member with a seat: pools are made only of members with at least one seat, two or
  more of them, and never two members of the same mentor-teacher.

The split is a bipartite assignment solved by max-flow (networkx) where a teacher is excluded from a
member, in member order otherwise; a split that does not place everyone raises (a bug, never a silent
drop). Activities named in pinned, forbidden or kept assignments stay alone (those refer to one
member).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..options import MENTOR, PROGRAM, Activities
from ..rules import PlanArrays


@dataclass(frozen=True)
class Pools:
    """How the solver's activities map to the region's (`real`)."""

    real: Activities
    members: tuple[np.ndarray, ...]  # per solver activity, its real activities (one for most)

    @property
    def n_pooled(self) -> int:
        """Real activities that share a solver activity with another."""
        return int(sum(len(m) for m in self.members if len(m) > 1))

    def solver_ids(self, solver: Activities) -> dict[str, str]:
        """Each pooled real activity's id -> its pool's id among the solver's `activities` (the ids of
        activities alone are the same in both and are left out)."""
        return {str(self.real.ids[a]): str(solver.ids[j])
                for j, members in enumerate(self.members) if len(members) > 1 for a in members.tolist()}

    def split(self, teacher: np.ndarray, activity: np.ndarray) -> PlanArrays:
        """A plan over the solver's activities as a plan over the real ones (see the module's docstring)."""
        teacher = np.asarray(teacher, dtype=np.int64)
        activity = np.asarray(activity, dtype=np.int64)
        real = np.empty(len(activity), dtype=np.int64)
        sizes = np.fromiter((len(m) for m in self.members), dtype=np.int64, count=len(self.members))
        alone = sizes[activity] == 1 if len(activity) else np.zeros(0, dtype=bool)
        real[alone] = np.array([self.members[a][0] for a in activity[alone].tolist()], dtype=np.int64)
        pooled = np.flatnonzero(~alone)
        if len(pooled):
            order = pooled[np.lexsort((teacher[pooled], activity[pooled]))]
            cuts = np.flatnonzero(np.diff(activity[order])) + 1
            for rows in np.split(order, cuts):
                real[rows] = _assign(self.real, self.members[int(activity[rows[0]])], teacher[rows])
        return PlanArrays(teacher, real)


def _assign(real: Activities, members: np.ndarray, users: np.ndarray) -> np.ndarray:
    """A member with a free seat for each user, no mentor-teacher on her own member."""
    seats = real.capacity[members].astype(np.int64)
    own = real.mentor_teacher[members]
    if len(users) > seats.sum():
        raise RuntimeError(f"pool of {real.ids[members[0]]}: {len(users)} teachers for {seats.sum()} seats")
    excluded = np.isin(users, own[own >= 0])
    if not excluded.any():  # everyone may use every member: fill them in order
        return members[np.searchsorted(np.cumsum(seats), np.arange(len(users)), side="right")]
    import networkx as nx

    graph = nx.DiGraph()
    for i, u in enumerate(users.tolist()):
        graph.add_edge("source", ("t", i), capacity=1)
        for j, m in enumerate(members.tolist()):
            if own[j] != u:
                graph.add_edge(("t", i), ("m", j), capacity=1)
    for j in range(len(members)):
        graph.add_edge(("m", j), "sink", capacity=int(seats[j]))
    placed, flow = nx.maximum_flow(graph, "source", "sink")
    if placed < len(users):
        raise RuntimeError(f"pool of {real.ids[members[0]]}: only {placed} of {len(users)} teachers placed")
    out = np.empty(len(users), dtype=np.int64)
    for i in range(len(users)):
        out[i] = members[next(j for (_, j), f in flow[("t", i)].items() if f > 0)]
    return out


def pool_activities(real: Activities, keep_alone: set[int]) -> tuple[Activities, Pools]:
    """The solver's activities: pools of interchangeable ones (module docstring), the rest alone, in the
    real order (a pool where its first member is), so kinds stay in blocks."""
    n = len(real)
    key_of: dict[tuple, list[int]] = {}
    candidates = np.flatnonzero(real.capacity >= 1)
    for a in candidates.tolist():
        if a in keep_alone:
            continue
        if real.kind[a] == PROGRAM and real.municipality[a] < 0 and not real.dated[a]:
            key = ("program", int(real.group[a]))
        elif real.kind[a] == MENTOR:
            key = ("mentor", int(real.school[a]), int(real.municipality[a]), real.weights[a].tobytes(),
                   int(real.budget_rub[a]), int(real.cost_rub[a]), float(real.hours[a]), int(real.voucher_rub[a]))
        else:
            continue
        key_of.setdefault(key, []).append(a)
    group_of = np.arange(n)  # the first member of each real activity's pool
    for members in key_of.values():
        owners = real.mentor_teacher[members]
        owners = owners[owners >= 0]
        if len(members) < 2 or len(np.unique(owners)) < len(owners):
            continue  # alone, or two members of one mentor-teacher: Hall's condition could fail
        group_of[members] = members[0]
    heads, solver_of = np.unique(group_of, return_inverse=True)
    if len(heads) == n:
        return real, Pools(real, tuple(np.array([a]) for a in range(n)))
    order = np.argsort(solver_of, kind="stable")
    members = tuple(np.split(order, np.flatnonzero(np.diff(solver_of[order])) + 1))
    capacity = np.bincount(solver_of, weights=real.capacity, minlength=len(heads)).astype(np.int64)
    ids = tuple(real.ids[h] if len(m) == 1 else f"{real.ids[h]}+{len(m) - 1}" for h, m in zip(heads, members))
    start = np.array([real.start[m].min() for m in members])
    end = np.array([real.end[m].max() for m in members])
    mentor_teacher = np.where([len(m) == 1 for m in members], real.mentor_teacher[heads], -1)
    kind = real.kind[heads]
    offsets = tuple(int(x) for x in np.searchsorted(kind, [0, 1, 2], side="left")) + (len(heads),)
    pooled = Activities(
        kind=kind, local=real.local[heads], ids=ids, weights=real.weights[heads], capacity=capacity,
        group=real.group[heads], dated=real.dated[heads], start=start, end=end, hours=real.hours[heads],
        voucher_rub=real.voucher_rub[heads], budget_rub=real.budget_rub[heads], cost_rub=real.cost_rub[heads],
        school=real.school[heads], municipality=real.municipality[heads], mentor_teacher=mentor_teacher,
        offsets=offsets)
    return pooled, Pools(real, members)
