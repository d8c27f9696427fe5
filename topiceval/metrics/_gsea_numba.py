"""Compiled kernels of the native GSEA engine (numba, ``cache=True``).

Three kernels, each the compiled twin of numpy code in :mod:`topiceval.metrics.gsea` (which stays
the reference the tests compare against):

* :func:`random_places`: for every relabelling of the genes, the sorted random places of every set
  (one counting sort through the gene -> sets index, shared by all topics);
* :func:`null_es`: the null ES of every (permutation, set, topic), threads over permutations;
  each set is walked for ``LANES`` topics at once by :func:`_walk`, explicit LLVM vector code
  (numba's own loops do not vectorise the lane loops); the null is laid out
  ``(permutations, sets, lanes)``;
* :func:`statistics`: NES and nominal p (threads over sets) and the FDR (threads over topics),
  which counts how many normalised null ES fall at or beyond each observed NES through a monotone
  bucket grid over the sorted observed values (no sort of the pooled null).

Every output element is written by exactly one thread and every floating-point sum runs in a fixed
order, so the results do not depend on the number of threads. No ``fastmath``: the float32
operations are those of the numpy reference, in the same order (the null is bit-identical to it).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

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


#: Topics walked together as one SIMD vector (float32 lanes) by :func:`null_es`.
LANES = 16


def lane_groups(weights_t: np.ndarray) -> np.ndarray:
    """``(N, kb)`` float32 sorted weights, topics last, as :func:`null_es` reads them:
    ``(N, lanes)`` with ``lanes`` the next multiple of ``LANES``, the missing lanes filled with
    copies of the first topic (their null ES are computed and never read)."""
    n_genes, kb = weights_t.shape
    padded = np.empty((n_genes, -(-kb // LANES) * LANES), dtype=np.float32)
    padded[:, :kb] = weights_t
    padded[:, kb:] = weights_t[:, :1]
    return padded


def _make_walk(width: int):  # noqa: ANN202
    """The walk of :func:`_walk` over ``width`` lanes (``LANES`` or ``2 * LANES``: two independent
    vectors per hit, which hides the latency of the running sums)."""

    @intrinsic
    def walk(typingctx, weights, w_offset, stride, row, lo, m, step, out, o_offset):  # noqa: ANN001, ANN202
        """The running sums of one set for ``width`` topics at once, as explicit LLVM vector code.

        ``weights``: flat float32 ``(N, stride)``, the topics' lanes starting at ``w_offset``;
        ``row[lo:lo + m]``: the set's sorted random places; ``step``: ``1 / (N - m)`` (float32), so
        that the misses before hit ``i`` are ``c_i = float32(row[lo + i] - i) * step``. Writes the
        null ES of the ``width`` topics to ``out[o_offset:]`` and returns a bit mask of the lanes
        whose hit weights are all 0.

        Pass 1 adds the hit weights in hit order (the total); pass 2 adds them again in the same order
        and, after each hit, takes ``x = cum * (1 / total)``, ``top = max(top, x - c_i)`` and, with the
        ``x`` before the hit, ``bottom = min(bottom, x_prev - c_i)``: the float32 operations of
        ``gsea._null_group``, in its order (no fused multiply-add, no reassociation). numba's own loops
        do not vectorise this reliably (its SLP vectoriser is off and the loop vectoriser gives up on
        the lane loops), hence the hand-written vector IR.
        """
        sig = types.int64(weights, types.int64, types.int64, row, types.int64, types.int64, types.float32,
                          out, types.int64)

        def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
            w_arr = context.make_array(signature.args[0])(context, builder, args[0])
            row_arr = context.make_array(signature.args[3])(context, builder, args[3])
            out_arr = context.make_array(signature.args[7])(context, builder, args[7])
            w_offset, stride, lo, m, step, o_offset = args[1], args[2], args[4], args[5], args[6], args[8]
            i64 = ir.IntType(64)
            vec = ir.VectorType(ir.FloatType(), width)
            w_base = builder.gep(w_arr.data, [w_offset])
            zero = ir.Constant(vec, [0.0] * width)
            one_i = ir.Constant(i64, 1)
            function = builder.function

            def hit(i):  # noqa: ANN001, ANN202
                """The place of hit ``i`` and the weights of the lanes there."""
                place = builder.load(builder.gep(row_arr.data, [builder.add(lo, i)]))
                if place.type.width < 64:
                    place = builder.sext(place, i64)
                lanes = builder.gep(w_base, [builder.mul(place, stride)])
                return place, builder.load(builder.bitcast(lanes, vec.as_pointer()), align=4)

            def loop(name, start_values):  # noqa: ANN001, ANN202
                """A counted loop over the hits: returns (i, phis, body block, exit block, close)."""
                before = builder.block
                head = function.append_basic_block(f"{name}_head")
                body = function.append_basic_block(f"{name}_body")
                done = function.append_basic_block(f"{name}_end")
                builder.branch(head)
                builder.position_at_end(head)
                i = builder.phi(i64)
                i.add_incoming(ir.Constant(i64, 0), before)
                phis = []
                for value in start_values:
                    phi = builder.phi(value.type)
                    phi.add_incoming(value, before)
                    phis.append(phi)
                builder.cbranch(builder.icmp_signed("<", i, m), body, done)
                builder.position_at_end(body)

                def close(next_values):  # noqa: ANN001, ANN202
                    block = builder.block
                    i.add_incoming(builder.add(i, one_i), block)
                    for phi, value in zip(phis, next_values):
                        phi.add_incoming(value, block)
                    builder.branch(head)
                    builder.position_at_end(done)
                return i, phis, close

            # pass 1: the total hit weight of every lane
            i, (cum,), close = loop("total", [zero])
            close([builder.fadd(cum, hit(i)[1])])
            total = cum
            flat = builder.fcmp_ordered("==", total, zero)
            scale = builder.select(flat, zero, builder.fdiv(ir.Constant(vec, [1.0] * width), total))
            # pass 2: the running sum after (top) and before (bottom) each hit
            inf = float("inf")
            i, (cum, prev, top, bottom), close = loop(
                "walk", [zero, zero, ir.Constant(vec, [-inf] * width), ir.Constant(vec, [inf] * width)])
            place, weights_i = hit(i)
            c = builder.fmul(builder.sitofp(builder.sub(place, i), ir.FloatType()), step)  # c_i, float32
            c = builder.insert_element(ir.Constant(vec, ir.Undefined), c, ir.Constant(ir.IntType(32), 0))
            c = builder.shuffle_vector(c, ir.Constant(vec, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width))
            cum_next = builder.fadd(cum, weights_i)
            x = builder.fmul(cum_next, scale)
            after = builder.fsub(x, c)
            below = builder.fsub(prev, c)
            top_next = builder.select(builder.fcmp_ordered(">", after, top), after, top)
            bottom_next = builder.select(builder.fcmp_ordered("<", below, bottom), below, bottom)
            close([cum_next, x, top_next, bottom_next])
            value = builder.select(builder.fcmp_ordered(">", top, builder.fneg(bottom)), top, bottom)
            target = builder.bitcast(builder.gep(out_arr.data, [o_offset]), vec.as_pointer())
            builder.store(value, target, align=4)
            mask = builder.bitcast(flat, ir.IntType(width))
            return builder.zext(mask, i64)

        return sig, codegen

    return walk


#: ``_walk(weights, w_offset, stride, row, lo, m, step, out, o_offset)``: see :func:`_make_walk`.
_walk = _make_walk(LANES)
_walk2 = _make_walk(2 * LANES)


@numba.njit(parallel=True, **_OPTIONS)
def null_es(weights_p, places, set_ptr, set_size, n_genes, n_topics, out, flat_count):  # pragma: no cover
    """Null ES of every (relabelling, set, topic of the block); see ``gsea._null_group``.

    ``weights_p``: ``(N, lanes)`` float32 weights in ranked order, ``lanes`` a multiple of
    ``LANES`` (:func:`lane_groups`; only the first ``n_topics`` lanes are counted in
    ``flat_count``); ``places``: ``(pc, nnz)`` sorted random places; ``set_ptr`` / ``set_size``:
    each set's slice of a row of ``places``; ``out``: ``(pc, n_sets, lanes)`` float32, filled;
    ``flat_count[j]``: null samples of relabelling ``j`` whose hits all had weight 0 (walked with
    equal weights).

    Threads over relabellings; each set is walked by :func:`_walk`, ``LANES`` topics per vector
    and two vectors per walk where the block has them. The null ES is the top maximum when it
    exceeds the bottom minimum in magnitude, else that minimum.
    """
    n_relabel = places.shape[0]
    lanes = weights_p.shape[1]
    n_groups = lanes // LANES
    n_sets = set_ptr.size - 1
    flat_weights = weights_p.reshape(-1)
    flat_out = out.reshape(-1)
    for j in numba.prange(n_relabel):
        n_flat = 0
        row = places[j]
        for s in range(n_sets):
            lo = set_ptr[s]
            m = set_size[s]
            step = np.float32(1.0 / (n_genes - m))
            base = (j * n_sets + s) * lanes
            q = 0
            while q < n_groups:  # two groups of lanes per walk where there are two
                if q + 1 < n_groups:
                    mask = _walk2(flat_weights, q * LANES, lanes, row, lo, m, step, flat_out,
                                  base + q * LANES)
                    width = 2 * LANES
                else:
                    mask = _walk(flat_weights, q * LANES, lanes, row, lo, m, step, flat_out,
                                 base + q * LANES)
                    width = LANES
                if mask != 0:  # rare: lanes whose hits all have weight 0
                    unit = _unit_es(row, lo, m, n_genes)
                    for k in range(width):
                        if (mask >> k) & 1:
                            out[j, s, q * LANES + k] = unit
                            if q * LANES + k < n_topics:
                                n_flat += 1
                q += width // LANES
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
def statistics(es, null, nes, pval, fdr, n_chunks=2):  # pragma: no cover - compiled
    """NES, nominal p and FDR of a block of topics (``gsea._normalise`` and ``gsea._fdr``).

    ``es``: ``(kb, S)`` float64; ``null``: ``(P, S, lanes)`` float32 as :func:`null_es` writes it
    (``lanes >= kb``; lanes past ``kb`` are ignored; left unchanged); ``nes``, ``pval``, ``fdr``:
    ``(kb, S)`` float64, filled; ``n_chunks``: the FDR's topics go in this many chunks (the
    number of threads; the results do not depend on it).

    First pass, threads over sets: per (set, topic), the count and float64 sums (in permutation
    order) of the non-negative and negative null ES and the counts at least as extreme as the ES.
    Second pass, threads over topics: gseapy's FDR of each topic's NES against its pooled
    normalised null, by counting (:func:`_fdr_counts`). Integer counts and sums in a fixed order:
    nothing depends on the number of threads.
    """
    kb, n_sets = es.shape
    n_perm = null.shape[0]
    es_t = np.ascontiguousarray(es.T)
    pos_scale = np.empty((n_sets, kb), dtype=np.float32)
    neg_scale = np.empty((n_sets, kb), dtype=np.float32)
    chunk = 16
    for c in numba.prange(-(-n_sets // chunk)):
        s0 = c * chunk
        s1 = min(n_sets, s0 + chunk)
        n_pos = np.zeros((s1 - s0, kb), dtype=np.int64)
        more_pos = np.zeros((s1 - s0, kb), dtype=np.int64)
        more_neg = np.zeros((s1 - s0, kb), dtype=np.int64)
        sum_pos = np.zeros((s1 - s0, kb), dtype=np.float64)
        sum_neg = np.zeros((s1 - s0, kb), dtype=np.float64)
        for p in range(n_perm):
            for s in range(s0, s1):
                for k in range(kb):
                    v = null[p, s, k]
                    e = es_t[s, k]
                    positive = v >= 0
                    n_pos[s - s0, k] += positive
                    # float64 sums of float32 values in permutation order (as before the layout changed)
                    sum_pos[s - s0, k] += v if positive else 0.0
                    sum_neg[s - s0, k] += 0.0 if positive else v
                    more_pos[s - s0, k] += v >= e
                    more_neg[s - s0, k] += v <= e
        for s in range(s0, s1):
            for k in range(kb):
                e = es_t[s, k]
                npos = n_pos[s - s0, k]
                n_neg = n_perm - npos
                pos_mean = sum_pos[s - s0, k] / npos if npos > 0 else e
                neg_mean = abs(sum_neg[s - s0, k] / n_neg if n_neg > 0 else e)
                if e == 0:
                    nes[k, s] = 0.0
                elif e > 0:
                    nes[k, s] = e / pos_mean
                else:
                    nes[k, s] = e / neg_mean
                if e < 0:
                    pval[k, s] = more_neg[s - s0, k] / n_neg if n_neg > 0 else 1.0
                else:
                    pval[k, s] = more_pos[s - s0, k] / npos if npos > 0 else 1.0
                pos_scale[s, k] = np.float32(pos_mean)
                neg_scale[s, k] = np.float32(neg_mean)
    # the FDR: topics in chunks (each topic's counts are integers)
    n_chunks = max(1, min(kb, n_chunks))
    for c in numba.prange(n_chunks):
        k0 = c * kb // n_chunks
        k1 = (c + 1) * kb // n_chunks
        _fdr_counts(nes, null, pos_scale, neg_scale, k0, k1, fdr)


@numba.njit(**_OPTIONS)
def _fdr_counts(nes, null, pos_scale, neg_scale, k0, k1, out):  # pragma: no cover - compiled
    """gseapy's FDR of topics ``k0:k1`` (NES against each topic's pooled normalised null), by counting.

    Each normalised null value ``v`` of topic ``k`` is counted at ``t = #(o <= v)`` (``v >= 0``) or
    ``t = #(o < v)`` (``v < 0``) among the topic's sorted finite observed NES ``o``; suffix and
    prefix sums of these counts give, for each observed NES, how many null values lie at or beyond
    it on its side. ``t`` comes from a uniform grid over ``[o_min, o_max]``: the bucket
    ``b(x) = int((x - o_min) * G / (o_max - o_min))`` is monotone in ``x``, so when no observed
    value shares ``x``'s bucket, ``t`` is exactly the number of observed values in lower buckets;
    otherwise the few observed values of that bucket are compared with ``x``. The null is read
    once, every topic of the chunk per (permutation, set).
    """
    n_perm, n_sets, _ = null.shape
    kc = k1 - k0
    observed = np.empty((kc, n_sets), dtype=np.float64)
    n_obs = np.zeros(kc, dtype=np.int64)
    n_grid = 32 * max(n_sets, 1)  # fine enough that a bucket rarely holds an observed value
    # below[c, b]: observed values in buckets < b (as -1 - below[c, b] when bucket b holds some);
    # bucket n_grid (past o_max) is empty
    below = np.zeros((kc, n_grid + 2), dtype=np.int32)
    lo = np.zeros(kc, dtype=np.float64)
    hi = np.zeros(kc, dtype=np.float64)
    inv_width = np.zeros(kc, dtype=np.float64)
    for c in range(kc):
        t = 0
        for s in range(n_sets):
            if np.isfinite(nes[k0 + c, s]):
                observed[c, t] = nes[k0 + c, s]
                t += 1
        n_obs[c] = t
        observed[c, :t].sort()
        if t > 0:
            lo[c] = observed[c, 0]
            hi[c] = observed[c, t - 1]
        # one bucket (all observed values in bucket 0) when they are all equal
        inv_width[c] = (n_grid - 1) / (hi[c] - lo[c]) if hi[c] > lo[c] else 0.0
        i = 0
        for b in range(n_grid + 2):
            while i < t and min(int((observed[c, i] - lo[c]) * inv_width[c]), n_grid - 1) < b:
                i += 1
            below[c, b] = i
        for b in range(n_grid + 1):  # buckets that hold observed values: stored as -1 - below
            if below[c, b + 1] > below[c, b]:
                below[c, b] = -below[c, b] - 1
    counts = np.zeros((kc, n_sets + 1), dtype=np.int64)  # null values counted at t
    n_null = np.zeros(kc, dtype=np.int64)
    n_null_neg = np.zeros(kc, dtype=np.int64)
    # a tile of permutations at a time (a buffer of at most 8 MB): normalise them into one row per
    # topic, then count each topic's row with its own tables (which then stay in cache)
    tile = max(1, min(64, (1 << 23) // max(kc * n_sets * 4, 1)))
    buffer = np.empty((kc, tile * n_sets), dtype=np.float32)
    for p0 in range(0, n_perm, tile):
        p1 = min(n_perm, p0 + tile)
        n_values = 0
        for p in range(p0, p1):
            for s in range(n_sets):
                for c in range(kc):
                    raw = null[p, s, k0 + c]
                    k = k0 + c
                    buffer[c, n_values] = raw / pos_scale[s, k] if raw >= 0 else raw / neg_scale[s, k]
                n_values += 1
        for c in range(kc):
            low = lo[c]
            scale = inv_width[c]
            n_finite = 0
            n_negative = 0
            for i in range(n_values):
                v = buffer[c, i]
                if not np.isfinite(v):
                    continue
                x = np.float64(v)
                positive = x >= 0
                n_finite += 1
                n_negative += not positive
                # the bucket, clamped (x < o_min: before every observed value; x > o_max: after)
                y = (x - low) * scale
                b = 0 if y < 0 else (n_grid if y >= n_grid else int(y))
                t = below[c, b]
                if t < 0:  # rare: observed values in x's bucket, compared one by one (no array
                    t = -t - 1  # views in this loop: each would cost a reference count)
                    end = below[c, b + 1]
                    end = -end - 1 if end < 0 else end
                    while t < end and (observed[c, t] < x or (positive and observed[c, t] == x)):
                        t += 1
                counts[c, t] += 1
            n_null[c] += n_finite
            n_null_neg[c] += n_negative
    for c in range(kc):
        k = k0 + c
        n = n_obs[c]
        row = observed[c, :n]
        # null_ge[i] = #(v >= o_i) (o_i >= 0: only v >= 0 are counted at t > i);
        # null_le[i] = #(v <= o_i) (o_i < 0: only v < 0 are counted at t <= i)
        null_ge = np.empty(n + 1, dtype=np.int64)
        null_ge[n] = 0
        for i in range(n, 0, -1):
            null_ge[i - 1] = null_ge[i] + counts[c, i]
        null_le = np.empty(max(n, 1), dtype=np.int64)
        running = 0
        for i in range(n):
            running += counts[c, i]
            null_le[i] = running
        neg_obs = np.searchsorted(row, 0.0, side="left")
        for s in range(n_sets):
            e = nes[k, s]
            if not np.isfinite(e):
                out[k, s] = np.nan
                continue
            if e < 0:
                i = np.searchsorted(row, e, side="right")
                obs_more = i
                null_more = null_le[i - 1]
                null_side = n_null_neg[c]
                obs_side = neg_obs
            else:
                i = np.searchsorted(row, e, side="left")
                obs_more = n - i
                null_more = null_ge[i]
                null_side = n_null[c] - n_null_neg[c]
                obs_side = n - neg_obs
            phi_null = null_more / null_side if null_side > 0 else 0.0
            phi_obs = obs_more / obs_side if obs_side > 0 else 0.0
            out[k, s] = 1.0 if phi_obs == 0 else min(1.0, max(0.0, phi_null / phi_obs))
