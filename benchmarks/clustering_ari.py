"""How well the deficit clustering recovers the generator's planted profiles.

    python -m marshrut.benchmarks.clustering_ari [--presets P ...] [--seeds 0 1 2] [--synthetic] [--threads 1]

One row per (bundle, seed): teachers, planted k (distinct `_planted_profiles`), chosen k, the
adjusted Rand index of DeficitProfiles, of the same selection without compression (power=1),
of scikit-learn's KMeans() with its default k (8), and the wall and CPU seconds (all threads) of
the DeficitProfiles fit (on a loaded machine wall exceeds CPU while the process waits for a core).
Deficits use the default threshold (70). `--synthetic` adds bundles of scores with 5-7 random
planted profiles plus a group without deficits (the data of tests/test_clustering.py); they are
used alone when datasets.generator is not importable.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from marshrut.engine.clustering import DeficitProfiles, deficit_matrix

THRESHOLD = 70.0
COLUMNS = ["bundle", "seed", "teachers", "planted_k", "chosen_k", "ari", "ari_power1", "ari_kmeans8", "fit_s", "fit_cpu_s"]


def generator_bundle(preset: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores teachers x competencies with NaN where not measured, planted profile per teacher)."""
    from marshrut.datasets.generator import generate_frames

    frames, _region = generate_frames(preset, seed=seed)
    teacher_ids = frames["teachers"]["teacher_id"].tolist()
    competency_ids = frames["competencies"]["competency_id"].tolist()
    scores = (
        frames["diagnostics"]
        .pivot(index="teacher_id", columns="competency_id", values="score")
        .reindex(index=teacher_ids, columns=competency_ids)
        .to_numpy(dtype=float)
    )
    planted = frames["_planted_profiles"].set_index("teacher_id").loc[teacher_ids, "profile"].to_numpy()
    return scores, planted


def synthetic_bundle(n_teachers: int, n_profiles: int, seed: int, n_competencies: int = 15,
                     no_deficit_share: float = 0.2):
    """Scores with `n_profiles` planted profiles (each lowering 2-4 competencies by 35-50 points)
    and a group without deficits; unequal sizes, noise, 5% of pairs not measured (NaN).

    Returns (scores, planted group per teacher: 0 = no deficits, p = profile p)."""
    rng = np.random.default_rng(seed)
    low = [rng.choice(n_competencies, size=rng.integers(2, 5), replace=False) for _ in range(n_profiles)]
    shares = rng.dirichlet(np.full(n_profiles, 2.0)) * (1 - no_deficit_share)
    group = rng.choice(n_profiles + 1, size=n_teachers, p=np.r_[no_deficit_share, shares])
    scores = rng.normal(85, 4, size=(n_teachers, 1)) + rng.normal(0, 7, size=(n_teachers, n_competencies))
    for p, comps in enumerate(low, start=1):
        scores[np.ix_(np.flatnonzero(group == p), comps)] -= rng.uniform(35, 50, size=len(comps))
    scores = np.clip(scores, 0, 100)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    return scores, group


def measure(name: str, seed: int, scores: np.ndarray, planted: np.ndarray, threads: int = 1) -> dict:
    X = deficit_matrix(scores, THRESHOLD)
    start, start_cpu = time.perf_counter(), time.process_time()
    model = DeficitProfiles(random_state=seed, n_threads=threads).fit(X)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    plain = DeficitProfiles(power=1.0, random_state=seed, n_threads=threads).fit(X)
    kmeans8 = KMeans(random_state=seed).fit(X)
    return {
        "bundle": name,
        "seed": seed,
        "teachers": len(X),
        "planted_k": len(np.unique(planted)),
        "chosen_k": model.n_clusters_,
        "ari": adjusted_rand_score(planted, model.labels_),
        "ari_power1": adjusted_rand_score(planted, plain.labels_),
        "ari_kmeans8": adjusted_rand_score(planted, kmeans8.labels_),
        "fit_s": seconds,
        "fit_cpu_s": cpu_seconds,
    }


def print_table(rows: list[dict]) -> None:
    cells = [[f"{r[c]:.3f}" if c.startswith("ari") else f"{r[c]:.2f}" if c.startswith("fit") else str(r[c])
              for c in COLUMNS] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, width)))
    for row in cells:
        print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, width))))
    if rows:
        means = {c: np.mean([r[c] for r in rows]) for c in ("ari", "ari_power1", "ari_kmeans8")}
        print("mean ARI: " + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))


def main(argv: list[str] | None = None) -> int:
    try:
        from marshrut.datasets.presets import PRESETS

        presets = list(PRESETS)
    except ImportError:
        presets = []
    ap = argparse.ArgumentParser(prog="python -m marshrut.benchmarks.clustering_ari", description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=presets, help="generator presets (default: all)")
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--synthetic", action="store_true", help="add synthetic planted bundles")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads (DeficitProfiles' default: 1)")
    a = ap.parse_args(argv)

    synthetic = a.synthetic or not presets
    if not presets:
        print("datasets.generator is not importable: synthetic bundles only", file=sys.stderr)
    rows = []
    with threadpool_limits(limits=a.threads):
        for seed in a.seeds:
            for preset in a.presets if presets else []:
                rows.append(measure(preset, seed, *generator_bundle(preset, seed), threads=a.threads))
            if synthetic:
                for n_teachers, n_profiles in ((1500, 5), (1500, 6), (1500, 7), (21000, 6)):
                    scores, planted = synthetic_bundle(n_teachers, n_profiles, seed)
                    rows.append(measure(f"synthetic-{n_teachers}-{n_profiles}", seed, scores, planted, a.threads))
    print_table(rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
