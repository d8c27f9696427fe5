"""Compiled kernels of the native GSEA engine (numba, ``cache=True``).

Three kernels, each the compiled twin of numpy code in :mod:`topiceval.metrics.gsea` (which stays
the reference the tests compare against):

* :func:`random_places`: for every relabelling of the genes, the sorted random places of every set
  (one counting sort through the gene -> sets index, shared by all topics);
* :func:`null_es`: the null ES of every (topic, set, permutation), threads over permutations and
  the topics of a block as SIMD lanes (a running sum, then its maximum and minimum);
* :func:`statistics`: NES, nominal p and FDR, threads over topics; the FDR counts how many
  normalised null ES fall at or beyond each observed NES by bucketing against the sorted observed
  values (no sort of the pooled null).

Every output element is written by exactly one thread and every floating-point sum runs in a fixed
order, so the results do not depend on the number of threads. No ``fastmath``: the float32
operations are those of the numpy reference, in the same order.
"""

from __future__ import annotations

import numba
import numpy as np

_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


@numba.njit(parallel=True, **_OPTIONS)
def random_places(inverse, gene_ptr, gene_sets, set_ptr, out):  # pragma: no cover - compiled
    """Fill ``out[j]`` (``(n_relabel, nnz)``) with the places relabelling ``j`` gives every set.

    ``inverse[j, p]``: the gene relabelling ``j`` puts at place ``p``; ``gene_ptr`` / ``gene_sets``:
    the sets of each gene (CSR, genes x sets); ``set_ptr``: where each set's places start in a row
    of ``out``. Walking the places in increasing order and appending each to the sets of the gene
    found there lists every set's places sorted (a counting sort).
    """
    n_relabel, n_genes = inverse.shape
    for j in numba.prange(n_relabel):
        fill = set_ptr[:-1].copy()
        row = out[j]
        for p in range(n_genes):
            g = inverse[j, p]
            for t in range(gene_ptr[g], gene_ptr[g + 1]):
                s = gene_sets[t]
                row[fill[s]] = p
                fill[s] += 1


@numba.njit(parallel=True, **_OPTIONS)
def null_es(weights_t, places, set_ptr, set_size, n_genes, n_topics, out, flat_count):  # pragma: no cover
    """Null ES of every (topic of the block, set, relabelling); see ``gsea._null_group``.

    ``weights_t``: ``(N, kb)`` float32 weights in ranked order, topics last (the SIMD lanes; the
    caller pads ``kb`` to a multiple of 8 so that no lane runs in a scalar remainder loop, and
    only the first ``n_topics`` lanes are counted in ``flat_count``);
    ``places``: ``(pc, nnz)`` sorted random places; ``set_ptr`` / ``set_size``: each set's slice of
    a row of ``places``; ``out``: ``(kb, n_sets, pc)`` float32, filled; ``flat_count[j]``: null
    samples of relabelling ``j`` whose hits all had weight 0 (walked with equal weights).

    Per set and lane: the running sum of the hit weights (float32, in hit order) gives the total;
    a second pass walks ``cum_i / total - misses_i`` after each hit (top) and
    ``cum_{i-1} / total - misses_i`` just before it (bottom); the null ES is the top maximum when it
    exceeds the bottom minimum in magnitude, else that minimum.
    """
    n_relabel = places.shape[0]
    kb = weights_t.shape[1]
    n_sets = set_ptr.size - 1
    max_m = 0
    for s in range(n_sets):
        max_m = max(max_m, set_size[s])
    for j in numba.prange(n_relabel):
        cum = np.empty((max_m, kb), dtype=np.float32)
        misses = np.empty(max_m, dtype=np.float32)
        scale = np.empty(kb, dtype=np.float32)
        top = np.empty(kb, dtype=np.float32)
        bottom = np.empty(kb, dtype=np.float32)
        prev = np.empty(kb, dtype=np.float32)
        n_flat = 0
        row = places[j]
        for s in range(n_sets):
            lo = set_ptr[s]
            m = set_size[s]
            step = np.float32(1.0 / (n_genes - m))
            first = weights_t[row[lo]]
            for k in range(kb):
                cum[0, k] = first[k]
            for i in range(1, m):
                w = weights_t[row[lo + i]]
                for k in range(kb):
                    cum[i, k] = cum[i - 1, k] + w[k]
            for i in range(m):
                misses[i] = np.float32(row[lo + i] - i) * step
            for k in range(kb):
                total = cum[m - 1, k]
                scale[k] = np.float32(1.0) / total if total != 0 else np.float32(0.0)
                top[k] = -np.inf
                bottom[k] = np.inf
                prev[k] = 0.0
            for i in range(m):
                c = misses[i]
                for k in range(kb):
                    x = cum[i, k] * scale[k]
                    after = x - c
                    before = prev[k] - c
                    # comparisons, not max() / min(): they compile to SIMD max / min
                    top[k] = after if after > top[k] else top[k]
                    bottom[k] = before if before < bottom[k] else bottom[k]
                    prev[k] = x
            unit = np.float32(np.nan)
            for k in range(kb):
                if scale[k] == 0:
                    if unit != unit:
                        unit = _unit_es(row, lo, m, n_genes)
                    out[k, s, j] = unit
                    if k < n_topics:
                        n_flat += 1
                elif top[k] > -bottom[k]:
                    out[k, s, j] = top[k]
                else:
                    out[k, s, j] = bottom[k]
        flat_count[j] = n_flat


@numba.njit(**_OPTIONS)
def _unit_es(row, lo, m, n_genes):  # pragma: no cover - compiled
    """ES with equal hit weights (the zero-weight convention), float64 as ``gsea._unit_es``."""
    top = -np.inf
    bottom = np.inf
    for i in range(m):
        t = (i + 1.0) / m - (row[lo + i] - i) / (n_genes - m)
        top = max(top, t)
        bottom = min(bottom, t - 1.0 / m)
    return np.float32(top if top > -bottom else bottom)


@numba.njit(parallel=True, **_OPTIONS)
def statistics(es, null, nes, pval, fdr):  # pragma: no cover - compiled
    """NES, nominal p and FDR of a block of topics (``gsea._normalise`` and ``gsea._fdr``).

    ``es``: ``(kb, S)`` float64; ``null``: ``(kb, S, P)`` float32 (left unchanged); ``nes``,
    ``pval``, ``fdr``: ``(kb, S)`` float64, filled. Threads over topics.
    """
    kb, n_sets, n_perm = null.shape
    for k in numba.prange(kb):
        pos_scale = np.empty(n_sets, dtype=np.float32)
        neg_scale = np.empty(n_sets, dtype=np.float32)
        for s in range(n_sets):
            e = es[k, s]
            n_pos = 0
            sum_pos = 0.0
            sum_neg = 0.0
            more_pos = 0
            more_neg = 0
            for p in range(n_perm):
                v = null[k, s, p]
                if v >= 0:
                    n_pos += 1
                    sum_pos += v
                else:
                    sum_neg += v
                if v >= e:
                    more_pos += 1
                if v <= e:
                    more_neg += 1
            n_neg = n_perm - n_pos
            pos_mean = sum_pos / n_pos if n_pos > 0 else e
            neg_mean = abs(sum_neg / n_neg if n_neg > 0 else e)
            if e == 0:
                nes[k, s] = 0.0
            elif e > 0:
                nes[k, s] = e / pos_mean
            else:
                nes[k, s] = e / neg_mean
            if e < 0:
                pval[k, s] = more_neg / n_neg if n_neg > 0 else 1.0
            else:
                pval[k, s] = more_pos / n_pos if n_pos > 0 else 1.0
            pos_scale[s] = np.float32(pos_mean)
            neg_scale[s] = np.float32(neg_mean)
        _fdr_topic(nes[k], null[k], pos_scale, neg_scale, fdr[k])


@numba.njit(**_OPTIONS)
def _fdr_topic(nes, null, pos_scale, neg_scale, out):  # pragma: no cover - compiled
    """gseapy's FDR of one topic's NES against its pooled normalised null, by counting.

    Each normalised null value ``v`` is placed among the sorted finite observed NES ``o``
    (a uniform grid gives the first guess, exact comparisons the answer): ``v >= 0`` is counted at
    ``#(o <= v)``, ``v < 0`` at ``#(o < v)``; suffix and prefix sums then give, for each observed
    NES, how many null values lie at or beyond it on its side.
    """
    n_sets, n_perm = null.shape
    finite = np.empty(n_sets, dtype=np.bool_)
    n_obs = 0
    for s in range(n_sets):
        finite[s] = np.isfinite(nes[s])
        n_obs += finite[s]
    observed = np.empty(n_obs, dtype=np.float64)
    t = 0
    for s in range(n_sets):
        if finite[s]:
            observed[t] = nes[s]
            t += 1
    observed.sort()
    n_grid = 4 * max(n_obs, 1)
    lo = observed[0] if n_obs > 0 else 0.0
    hi = observed[n_obs - 1] if n_obs > 0 else 0.0
    inv_width = n_grid / (hi - lo) if hi > lo else 0.0
    guess = np.empty(n_grid + 1, dtype=np.int64)
    for b in range(n_grid + 1):
        guess[b] = np.searchsorted(observed, lo + b / inv_width) if inv_width > 0 else 0
    at_or_below = np.zeros(n_obs + 1, dtype=np.int64)  # v >= 0 counted at #(o <= v)
    below = np.zeros(n_obs + 1, dtype=np.int64)        # v < 0 counted at #(o < v)
    n_null_neg = 0
    n_null = 0
    for s in range(n_sets):
        for p in range(n_perm):
            raw = null[s, p]
            v = raw / pos_scale[s] if raw >= 0 else raw / neg_scale[s]
            if not np.isfinite(v):
                continue
            n_null += 1
            x = np.float64(v)
            if x <= lo:
                t = 0
            elif x > hi:
                t = n_obs
            else:
                t = guess[min(int((x - lo) * inv_width), n_grid)]
            if x >= 0:
                while t < n_obs and observed[t] <= x:
                    t += 1
                while t > 0 and observed[t - 1] > x:
                    t -= 1
                at_or_below[t] += 1
            else:
                n_null_neg += 1
                while t < n_obs and observed[t] < x:
                    t += 1
                while t > 0 and observed[t - 1] >= x:
                    t -= 1
                below[t] += 1
    # null_ge[i] = #(v >= observed[i]) among v >= 0; null_le[i] = #(v <= observed[i]) among v < 0
    null_ge = np.empty(n_obs, dtype=np.int64)
    null_le = np.empty(n_obs, dtype=np.int64)
    running = 0
    for i in range(n_obs, 0, -1):
        running += at_or_below[i]
        null_ge[i - 1] = running
    running = 0
    for i in range(n_obs):
        running += below[i]
        null_le[i] = running
    neg_obs = np.searchsorted(observed, 0.0, side="left")
    for s in range(n_sets):
        if not finite[s]:
            out[s] = np.nan
            continue
        e = nes[s]
        if e < 0:
            i = np.searchsorted(observed, e, side="right")
            obs_more = i
            null_more = null_le[i - 1]
            null_side = n_null_neg
            obs_side = neg_obs
        else:
            i = np.searchsorted(observed, e, side="left")
            obs_more = n_obs - i
            null_more = null_ge[i]
            null_side = n_null - n_null_neg
            obs_side = n_obs - neg_obs
        phi_null = null_more / null_side if null_side > 0 else 0.0
        phi_obs = obs_more / obs_side if obs_side > 0 else 0.0
        out[s] = 1.0 if phi_obs == 0 else min(1.0, max(0.0, phi_null / phi_obs))
