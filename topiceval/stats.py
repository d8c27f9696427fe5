"""Statistics for comparing topic models: paired tests, rank tests and bootstrap intervals.

* :func:`paired_comparisons`: for every pair of models, the Wilcoxon signed-rank test
  (:func:`scipy.stats.wilcoxon`, two-sided, scipy's default handling of zero differences) over
  the blocks (e.g. (dataset, seed) pairs) both completed, with Holm-adjusted p-values
  (:func:`statsmodels.stats.multitest.multipletests`) over the pairs of one metric.
* :func:`friedman_test` and :func:`nemenyi_critical_difference`: the Friedman test over the
  ranks of ``k`` models on ``N`` blocks (datasets) and the Nemenyi critical difference of the
  mean ranks, as in Demšar (2006), *Statistical comparisons of classifiers over multiple data
  sets*, JMLR 7:1-30 (section 3.2.2). The critical values ``q_alpha`` are not copied from
  Demšar's Table 5: they are computed as ``studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)``
  (:data:`scipy.stats.studentized_range`), which reproduces that table to its three decimals
  (within rounding).
* :func:`bootstrap_ci`: percentile bootstrap intervals over cells (:func:`scipy.stats.bootstrap`,
  seeded), used by :func:`topiceval.evaluate` for IP, ARI and NMI.

Every function takes plain tables or arrays and returns numbers; none reads files or prints.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from topiceval.errors import InputError

__all__ = [
    "COMPARISON_COLUMNS",
    "FriedmanResult",
    "bootstrap_ci",
    "friedman_test",
    "holm",
    "nemenyi_critical_difference",
    "nemenyi_q",
    "paired_comparisons",
    "partition_ari",
    "partition_nmi",
    "partition_purity",
]

#: Columns of :func:`paired_comparisons` (and of a leaderboard's ``comparisons.csv``).
COMPARISON_COLUMNS = ["metric", "model_a", "model_b", "n", "mean_diff", "statistic", "pvalue", "pvalue_holm"]


# --------------------------------------------------------------------------- paired tests
def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count as tests."""
    from statsmodels.stats.multitest import multipletests

    values = np.asarray(pvalues, dtype=float)
    out = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        out[finite] = multipletests(values[finite], method="holm")[1]
    return out


def _wilcoxon(diff: np.ndarray) -> tuple[float, float]:
    from scipy.stats import wilcoxon

    if diff.size == 0:
        return math.nan, math.nan
    with warnings.catch_warnings():
        # all-zero differences: scipy's default returns p = 1 with a divide warning
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            result = wilcoxon(diff, alternative="two-sided")
        except ValueError:  # older scipy: "zero_method 'wilcox' ... all zero"
            return math.nan, math.nan
    return float(result.statistic), float(result.pvalue)


def paired_comparisons(values: pd.DataFrame, *, metric: str = "", models: Sequence[str] | None = None) -> pd.DataFrame:
    """Wilcoxon signed-rank tests of every pair of models over shared blocks, Holm-adjusted.

    Parameters
    ----------
    values
        One row per block (e.g. a (dataset, seed) pair), one column per model; NaN where a model
        did not complete the block. Each pair is tested over the blocks where both have a value.
    metric
        Written into the ``metric`` column.
    models
        Models to compare, in this order (default: the columns). Pairs are ``(a, b)`` with ``a``
        before ``b``.

    Returns
    -------
    pandas.DataFrame
        :data:`COMPARISON_COLUMNS`: ``n`` shared blocks, ``mean_diff`` = mean of ``a - b``
        (positive: ``a`` scores higher), the Wilcoxon ``statistic`` (scipy's: the smaller of the
        signed-rank sums for a two-sided test) and ``pvalue`` (NaN for no shared block), and
        ``pvalue_holm`` adjusted over the pairs of this metric with a p-value.
    """
    models = list(values.columns if models is None else models)
    missing = [m for m in models if m not in values.columns]
    if missing:
        raise InputError(f"no column for model(s) {', '.join(map(str, missing))}")
    rows = []
    for a, b in itertools.combinations(models, 2):
        both = values[[a, b]].astype(float).dropna()
        diff = (both[a] - both[b]).to_numpy()
        statistic, pvalue = _wilcoxon(diff)
        rows.append({"metric": metric, "model_a": a, "model_b": b, "n": int(diff.size),
                     "mean_diff": float(diff.mean()) if diff.size else math.nan,
                     "statistic": statistic, "pvalue": pvalue})
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS[:-1])
    table["pvalue_holm"] = holm(table["pvalue"].to_numpy()) if len(table) else []
    return table[COMPARISON_COLUMNS]


# --------------------------------------------------------------------------- rank tests
@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over ``n_blocks`` blocks and ``k`` models.

    Attributes
    ----------
    statistic, pvalue
        Friedman's chi-square (with scipy's tie correction) and its p-value
        (:func:`scipy.stats.friedmanchisquare`); NaN for fewer than 3 models or 2 blocks.
    mean_ranks
        Mean rank of each model over the blocks (1 = best), best first.
    n_blocks
        Blocks used (those where every model has a value).
    critical_difference
        Nemenyi critical difference of the mean ranks at ``alpha``: two models whose mean
        ranks differ by more are significantly different.
    alpha
        Level of the critical difference.
    """

    statistic: float
    pvalue: float
    mean_ranks: pd.Series
    n_blocks: int
    critical_difference: float
    alpha: float


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Demšar's (2006) ``q_alpha`` for ``k`` models: the studentized range quantile over sqrt(2).

    Computed as ``scipy.stats.studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)``; Demšar's
    Table 5(a) (alpha 0.05) lists 1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164
    for k = 2 .. 10.
    """
    from scipy.stats import studentized_range

    if k < 2:
        raise InputError(f"the critical difference needs at least 2 models, got {k}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """``CD = q_alpha * sqrt(k (k + 1) / (6 N))`` (Demšar 2006, Eq. for the Nemenyi test)."""
    if n_blocks < 1:
        raise InputError(f"the critical difference needs at least one block, got {n_blocks}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def friedman_test(values: pd.DataFrame, *, higher_is_better: bool = True, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test and Nemenyi critical difference over the ranks of models within blocks.

    Parameters
    ----------
    values
        One row per block (dataset), one column per model. Blocks where some model has no value
        are left out (the test needs complete blocks).
    higher_is_better
        Rank the largest value 1 (``True``) or the smallest (``False``, e.g. for ranks).
    alpha
        Level of the critical difference.
    """
    complete = values.astype(float).dropna(axis=0, how="any")
    k = complete.shape[1]
    if k < 2:
        raise InputError(f"the Friedman test needs at least 2 models, got {k}")
    ranks = (complete.rank(axis=1, ascending=not higher_is_better, method="average")
             if len(complete) else complete)
    mean_ranks = ranks.mean(axis=0).sort_values(kind="stable")
    n = len(complete)
    statistic = pvalue = math.nan
    if k >= 3 and n >= 2:
        from scipy.stats import friedmanchisquare

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    cd = nemenyi_critical_difference(k, n, alpha) if n else math.nan
    return FriedmanResult(statistic, pvalue, mean_ranks, n, cd, alpha)


# --------------------------------------------------------------------------- bootstrap
# Agreement of two integer partitions from one bincount contingency table. sklearn's scores are the
# reference (tests compare them); these skip its input checks and sparse table, which dominate a
# bootstrap of 1000 resamples (sklearn's ARI: about 30 s for 20,000 cells on one core).
def _codes(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind in "iu" and x.size and 0 <= x.min() and x.max() <= 4 * x.size:
        return x.astype(np.int64, copy=False)  # empty rows / columns change none of the scores
    return np.unique(x, return_inverse=True)[1].ravel()


def _contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _codes(a), _codes(b)
    n_b = int(b.max()) + 1
    return np.bincount(a * n_b + b, minlength=(int(a.max()) + 1) * n_b).reshape(-1, n_b).astype(float)


def partition_purity(topics: np.ndarray, labels: np.ndarray) -> float:
    """Purity (IP, paper Eq. 5) of integer assignments ``topics`` against integer ``labels``."""
    table = _contingency(topics, labels)
    return float(table.max(axis=1).sum() / table.sum())


def partition_ari(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Adjusted Rand index (as :func:`sklearn.metrics.adjusted_rand_score`)."""
    table = _contingency(labels, clusters)
    n = table.sum()
    pairs = (table * (table - 1) / 2).sum()
    rows = (table.sum(axis=1) * (table.sum(axis=1) - 1) / 2).sum()
    cols = (table.sum(axis=0) * (table.sum(axis=0) - 1) / 2).sum()
    expected = rows * cols / (n * (n - 1) / 2)
    denominator = (rows + cols) / 2 - expected
    if denominator == 0:  # one cluster on both sides, or singletons: sklearn's special cases
        from sklearn.metrics import adjusted_rand_score

        return float(adjusted_rand_score(labels, clusters))
    return float((pairs - expected) / denominator)


def partition_nmi(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Normalised mutual information, arithmetic normalisation (as
    :func:`sklearn.metrics.normalized_mutual_info_score`)."""
    table = _contingency(labels, clusters)
    n = table.sum()
    p = table / n
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 or hb == 0:  # a single cluster: sklearn's conventions
        from sklearn.metrics import normalized_mutual_info_score

        return float(normalized_mutual_info_score(labels, clusters))
    return float(max(mi, 0.0) / ((ha + hb) / 2))


def bootstrap_ci(
    statistic: Callable[..., float],
    data: Sequence[np.ndarray],
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*data)`` resampling cells with replacement.

    Parameters
    ----------
    statistic
        ``statistic(*arrays) -> float`` on arrays of equal length (one entry per cell), e.g.
        argmax topics and labels for IP, clusters and labels for ARI / NMI.
    data
        The per-cell arrays; the same cells are drawn for all of them (paired resampling).
    n_boot
        Resamples (at least 10).
    level
        Confidence level in (0, 1).
    seed
        Seed of the resampling (:func:`numpy.random.default_rng`): the same seed, the same interval.

    Returns
    -------
    (low, high)

    Notes
    -----
    :func:`scipy.stats.bootstrap` with ``method="percentile"`` and ``paired=True``. The
    clustering or topic assignment is held fixed: the interval reflects which cells were
    sampled, not the randomness of training or of community detection.
    """
    from scipy.stats import bootstrap

    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 10:
        raise InputError(f"n_boot must be an integer of at least 10, got {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise InputError(f"level must be a number in (0, 1), got {level!r}")
    arrays = [np.asarray(a) for a in data]
    if not arrays or len({a.shape[0] for a in arrays}) != 1 or arrays[0].shape[0] < 2:
        raise InputError("bootstrap_ci needs per-cell arrays of one length (at least 2 cells)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate (constant) statistics
        result = bootstrap(tuple(arrays), statistic, n_resamples=int(n_boot), confidence_level=level,
                           method="percentile", paired=True, vectorized=False,
                           random_state=np.random.default_rng(seed))
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)
