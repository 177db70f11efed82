"""Deficit profiles: teachers grouped by what they lack.

    deficit(t, c) = max(0, threshold - score(t, c)) / threshold      (missing score -> 0)

A profile is a k-means centre in deficit space; the number of profiles is chosen from the data
by the silhouette coefficient over k in [k_min, k_max]. Unlike need (SPEC §5) a deficit carries
no priority weight: a profile describes what a teacher lacks, not how urgent it is.
"""

from __future__ import annotations

import numbers
import re
from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances, silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, X, reset=True, **kwargs):
        return estimator._validate_data(X, reset=reset, **kwargs)


__all__ = [
    "NO_DEFICIT_NAME",
    "DeficitProfiles",
    "deficit_matrix",
    "profile_names",
    "profile_table",
    "short_competency_names",
]

NO_DEFICIT_NAME = "без выраженных дефицитов"


def deficit_matrix(scores: np.ndarray, threshold: float) -> np.ndarray:
    """max(0, threshold - score) / threshold per (teacher, competency); NaN (not measured) -> 0."""
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold!r}")
    scores = np.asarray(scores, dtype=float)
    with np.errstate(invalid="ignore"):
        deficit = np.maximum(0.0, threshold - scores) / threshold
    return np.nan_to_num(deficit, nan=0.0)


class DeficitProfiles(ClusterMixin, BaseEstimator):
    """k-means profiles of deficit vectors; the number of profiles is chosen by silhouette.

    Rows are compared after `z = sign(x) * |x| ** power`. With the default 0.5 teachers who lack
    the same competencies to different degrees fall into one profile instead of being split by
    severity (plain k-means, power=1, splits large profiles into "mild" and "severe" halves and
    merges small ones; measured in benchmarks/clustering_ari.py). For each k in
    [k_min, k_max] k-means++ (`n_init` restarts) is fitted to a seeded sample of at most
    `sample_size` rows and scored by the silhouette on that sample; the chosen k (see
    k_tolerance) is then refined on all rows starting from the sample's centres.

    Parameters
    ----------
    k_min, k_max : range of profile counts tried (capped by the number of distinct rows).
    k_tolerance : the largest k whose silhouette is within this of the best is chosen
        (0: the plain maximum). Silhouettes of neighbouring k often tie within ~0.01, and too
        few profiles cost more than too many (mean ARI change on the generator's bundles:
        -0.11 with two too few, -0.03 with two too many); merged profiles can hide a group
        without deficits inside a deficit profile.
    power : exponent applied to the deficits before clustering (0 < power <= 1).
    n_init : k-means++ restarts per k.
    sample_size : rows used to choose k (the silhouette costs O(sample_size^2)).
    max_iter, tol : k-means stopping rule.
    random_state : seed for the sample and for k-means.
    n_threads : OpenMP/BLAS threads during fit and predict (None: the libraries' default).
        1 by default: the fits are small (k-means on the sample, one refinement on all rows), and
        on a busy 2-core machine two spinning OpenMP threads made the fit 3-8x slower
        (benchmarks/clustering_ari.py --threads). The limit is process-wide while it lasts.

    Attributes
    ----------
    labels_ : profile of each row; 0 is the largest profile.
    cluster_centers_ : mean deficit (of X, not of z) per profile and column.
    n_clusters_ : number of profiles.
    scores_ : {k: silhouette} for every k tried; empty when one profile was the only option.
    inertia_ : sum of squared distances of the rows to their `cluster_centers_`.
    n_iter_ : k-means iterations of the final fit.
    """

    def __init__(
        self,
        k_min=2,
        k_max=10,
        k_tolerance=0.01,
        power=0.5,
        n_init=4,
        sample_size=3000,
        max_iter=300,
        tol=1e-4,
        random_state=0,
        n_threads=1,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.k_tolerance = k_tolerance
        self.power = power
        self.n_init = n_init
        self.sample_size = sample_size
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X, y=None):
        """Choose the number of profiles and assign every row to one."""
        self._check_params()
        with threadpool_limits(limits=self.n_threads):
            return self._fit(X)

    def _fit(self, X):
        X = _validate_data(self, X, dtype=[np.float64, np.float32])
        rng = check_random_state(self.random_state)
        Z = self._compress(X)
        n = X.shape[0]
        k_hi = min(self.k_max, _distinct_rows(Z), n - 1)

        self.scores_ = {}
        if k_hi < self.k_min:
            # Too few (distinct) rows to compare partitions: one profile.
            self._set_profiles(X, Z, np.zeros(n, dtype=np.int64))
            self.n_iter_ = 1
            return self

        sample = self._sample(n, rng)
        Zs = Z[sample]
        k_hi_sample = min(k_hi, _distinct_rows(Zs), len(sample) - 1)
        distances = pairwise_distances(Zs) if k_hi_sample >= self.k_min else None
        fits = {}
        for k in range(self.k_min, k_hi_sample + 1):
            fits[k] = self._kmeans(k, "k-means++", self.n_init, rng).fit(Zs)
            score = -1.0
            if len(np.unique(fits[k].labels_)) >= 2:
                score = float(silhouette_score(distances, fits[k].labels_, metric="precomputed"))
            self.scores_[k] = score

        if not fits:  # the sample is degenerate though the data is not
            km = self._kmeans(self.k_min, "k-means++", self.n_init, rng).fit(Z)
        else:
            best = max(self.scores_.values())
            km = fits[max(k for k, v in self.scores_.items() if v >= best - self.k_tolerance)]
            if len(sample) < n:
                km = self._kmeans(km.n_clusters, km.cluster_centers_, 1, rng).fit(Z)
        self._set_profiles(X, Z, km.labels_.astype(np.int64), km.cluster_centers_)
        self.n_iter_ = int(km.n_iter_)
        return self

    def predict(self, X):
        """Profile of each row: the nearest profile centre (in the compressed space)."""
        check_is_fitted(self, "cluster_centers_")
        X = _validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        with threadpool_limits(limits=self.n_threads):
            d = pairwise_distances(self._compress(X), self._z_centers, metric="sqeuclidean")
        return d.argmin(axis=1).astype(np.int64)

    # ------------------------------------------------------------------ internals

    def _check_params(self):
        for name in ("k_min", "k_max", "n_init", "sample_size", "max_iter"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.k_min < 2:
            raise ValueError(f"k_min must be at least 2, got {self.k_min!r}")
        if self.k_max < self.k_min:
            raise ValueError(f"k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        if self.sample_size < 3:
            raise ValueError(f"sample_size must be at least 3, got {self.sample_size!r}")
        if self.n_threads is not None and (
            not isinstance(self.n_threads, numbers.Integral) or isinstance(self.n_threads, bool)
            or self.n_threads < 1
        ):
            raise ValueError(f"n_threads must be None or a positive integer, got {self.n_threads!r}")
        if not isinstance(self.k_tolerance, numbers.Real) or not 0 <= self.k_tolerance < 1:
            raise ValueError(f"k_tolerance must be in [0, 1), got {self.k_tolerance!r}")
        if not isinstance(self.power, numbers.Real) or not 0 < self.power <= 1:
            raise ValueError(f"power must be in (0, 1], got {self.power!r}")

    def _compress(self, X):
        if self.power == 1:
            return X
        return np.sign(X) * np.abs(X) ** self.power

    def _kmeans(self, k, init, n_init, rng):
        return KMeans(
            n_clusters=k,
            init=init,
            n_init=n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )

    def _sample(self, n, rng):
        if n <= self.sample_size:
            return np.arange(n)
        return np.sort(rng.choice(n, size=self.sample_size, replace=False))

    def _set_profiles(self, X, Z, labels, z_centers=None):
        # Numbered by size, largest first; ties by total deficit, then by k-means' number.
        # predict() uses k-means' own centres so that it reproduces labels_ on the fitted X.
        k = labels.max() + 1
        sizes = np.bincount(labels, minlength=k)
        if z_centers is None:
            z_centers = Z.mean(axis=0, keepdims=True)
        centers = np.zeros((k, X.shape[1]))
        for j in np.flatnonzero(sizes):
            centers[j] = X[labels == j].mean(axis=0)
        order = np.lexsort((np.arange(k), -centers.sum(axis=1), -sizes))
        keep = order[sizes[order] > 0]
        renumber = np.full(k, -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        self.labels_ = renumber[labels]
        self.cluster_centers_ = centers[keep].astype(X.dtype)
        self._z_centers = z_centers[keep]
        self.n_clusters_ = len(keep)
        diff = X - self.cluster_centers_[self.labels_]
        self.inertia_ = float(np.einsum("ij,ij->", diff, diff))


def _distinct_rows(X) -> int:
    return len(np.unique(X, axis=0)) if len(X) > 1 else len(X)


def short_competency_names(names: list[str], short: list[str] | None = None) -> list[str]:
    """Short label per competency: `short[i]` when given and non-empty, else from `name`.

    The fallback is the lower-cased first word of the name; where two fallbacks collide, more
    words are taken until they differ (or the whole name is used).
    """
    names = [str(n).strip() for n in names]
    if short is not None and len(short) != len(names):
        raise ValueError("short must have one entry per name")
    given = [_text(s) for s in short] if short is not None else [None] * len(names)
    words = [re.findall(r"[\w-]+", n.lower()) or [n.lower()] for n in names]
    taken = [1] * len(names)

    def label(i):
        return given[i] if given[i] else " ".join(words[i][: taken[i]])

    while True:
        counts = Counter(label(i) for i in range(len(names)))
        grow = [
            i
            for i in range(len(names))
            if not given[i] and counts[label(i)] > 1 and taken[i] < len(words[i])
        ]
        if not grow:
            return [label(i) for i in range(len(names))]
        for i in grow:
            taken[i] += 1


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    value = str(value).strip()
    return value or None


def profile_names(
    centers: np.ndarray, short_names: list[str], top: int = 2, min_deficit: float = 0.1
) -> list[str]:
    """Name each profile by its `top` largest mean deficits above `min_deficit`, joined by " + ".

    A profile with none is NO_DEFICIT_NAME. Names are unique: profiles that would share a name
    get their next deficit appended, and if that does not separate them, " (2)", " (3)", ...
    """
    centers = np.atleast_2d(np.asarray(centers, dtype=float))
    if centers.shape[1] != len(short_names):
        raise ValueError("one short name per competency (column of centers) is needed")
    ranked = []
    for center in centers:
        order = np.argsort(-center, kind="stable")
        ranked.append([int(c) for c in order if center[c] > min_deficit])

    def name(comps, n):
        return " + ".join(short_names[c] for c in comps[:n]) if comps else NO_DEFICIT_NAME

    names = [name(r, top) for r in ranked]
    counts = Counter(names)
    names = [name(r, top + 1) if counts[nm] > 1 else nm for r, nm in zip(ranked, names)]
    seen: Counter = Counter()
    unique = []
    for nm in names:
        seen[nm] += 1
        unique.append(nm if seen[nm] == 1 else f"{nm} ({seen[nm]})")
    # A numbered name could itself collide with a real one; number until free.
    taken = set()
    for i, nm in enumerate(unique):
        candidate, j = nm, 2
        while candidate in taken:
            candidate, j = f"{nm} ({j})", j + 1
        taken.add(candidate)
        unique[i] = candidate
    return unique


def profile_table(
    model: DeficitProfiles,
    competency_ids: list[str],
    short_names: list[str],
    top: int = 3,
    min_deficit: float = 0.1,
) -> list[dict]:
    """Profiles of a fitted model as JSON-ready dicts (summary.json `clusters`).

    Each: cluster, name, size, top_competencies [{competency_id, mean_deficit}] (the `top`
    largest mean deficits above `min_deficit`), mean_deficit {competency_id: value}.
    """
    check_is_fitted(model, "cluster_centers_")
    centers = np.asarray(model.cluster_centers_, dtype=float)
    if centers.shape[1] != len(competency_ids):
        raise ValueError("one competency id per column of the fitted data is needed")
    names = profile_names(centers, short_names, min_deficit=min_deficit)
    sizes = np.bincount(model.labels_, minlength=len(centers))
    table = []
    for k, center in enumerate(centers):
        order = [int(c) for c in np.argsort(-center, kind="stable") if center[c] > min_deficit]
        table.append(
            {
                "cluster": k,
                "name": names[k],
                "size": int(sizes[k]),
                "top_competencies": [
                    {"competency_id": str(competency_ids[c]), "mean_deficit": round(float(center[c]), 4)}
                    for c in order[:top]
                ],
                "mean_deficit": {
                    str(cid): round(float(v), 4) for cid, v in zip(competency_ids, center)
                },
            }
        )
    return table
