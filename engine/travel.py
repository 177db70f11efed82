"""Travel minutes between municipalities: shortest paths over the road graph (SPEC §4 rule 5).

Computed once per region (not per teacher) with networkx; 0 inside a municipality, inf where no
road leads.
"""

from __future__ import annotations

import networkx as nx
import numpy as np


def travel_matrix(municipalities: int, road_from: np.ndarray, road_to: np.ndarray,
                  minutes: np.ndarray) -> np.ndarray:
    graph = nx.Graph()
    graph.add_nodes_from(range(municipalities))
    for a, b, m in zip(road_from.tolist(), road_to.tolist(), minutes.tolist()):
        if a == b:
            continue
        # Two roads between the same pair: the faster one is the one people take.
        if graph.has_edge(a, b) and graph[a][b]["minutes"] <= m:
            continue
        graph.add_edge(a, b, minutes=m)
    travel = np.full((municipalities, municipalities), np.inf)
    for source, lengths in nx.all_pairs_dijkstra_path_length(graph, weight="minutes"):
        targets = np.fromiter(lengths.keys(), dtype=np.int64, count=len(lengths))
        travel[source, targets] = np.fromiter(lengths.values(), dtype=float, count=len(lengths))
    np.fill_diagonal(travel, 0.0)
    return travel
