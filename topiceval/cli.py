"""The ``topiceval`` command line: parse, call the library, print. It computes nothing itself.

User errors (bad files, shapes, unknown options) exit with status 2 and a one-line message on
stderr, never a traceback (set ``TOPICEVAL_DEBUG=1`` to see one). Output files are written
atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from topiceval.errors import TopicEvalError
from topiceval.examples import EXAMPLES

__all__ = ["main", "build_parser"]

def _metric_names() -> str:
    from topiceval.evaluate import METRICS

    return ",".join(METRICS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from topiceval import __version__

    parser = argparse.ArgumentParser(
        prog="topiceval",
        description="Score single-cell embedded topic models on interpretability and clustering.",
    )
    parser.add_argument("--version", action="version", version=f"topiceval {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    score = sub.add_parser(
        "score",
        help="score a model's outputs (TC, TD, TQ, IP, ORA, GSEA)",
        description="Score topic-model outputs and write the scores as JSON.",
        epilog="Example: topiceval score --example yan_nmf --out result.json",
    )
    inputs = score.add_argument_group("inputs")
    inputs.add_argument("--example", choices=sorted(EXAMPLES), help="use a shipped example's files as defaults")
    inputs.add_argument("--topic-gene", metavar="BETA", help="topic-gene matrix K x V: .csv (header of gene names optional), .npy or .h5ad")
    inputs.add_argument("--genes", metavar="GENES", help="gene names: JSON list or one per line (optional if BETA has a header)")
    inputs.add_argument("--cell-topic", metavar="THETA", help="cell-topic matrix n x K: .csv or .npy")
    inputs.add_argument("--cell-embedding", metavar="EMB", help="cell embedding n x d for clustering metrics: .csv or .npy")
    inputs.add_argument("--labels", metavar="LABELS", help="cell labels: JSON list, one per line, file.csv:column or file.h5ad:column")
    inputs.add_argument("--gene-sets", metavar="GMT", help="GMT file (plain or .gz) or shipped collection (hallmark, reactome, mouse_hallmark)")
    inputs.add_argument("--gene-set-case", choices=["upper", "exact"], default="upper", help="compare symbols upper-cased (default) or exactly")
    inputs.add_argument("--name", help="model name in the output (default: file name)")
    options = score.add_argument_group("metrics")
    options.add_argument("--metrics", default=None, help=f"comma-separated metrics (default: tc,td,tq,ip where inputs allow); valid: {_metric_names()}")
    options.add_argument("--top-n", type=int, default=10, help="top genes per topic (default 10)")
    options.add_argument("--tc-zero-cooccurrence", type=float, choices=[0.0, -1.0], default=0.0, help="TC of a never co-occurring pair: 0 (reference, default) or -1 (NPMI limit)")
    options.add_argument("--td-method", choices=["unique", "exclusive"], default="unique", help="TD as paper Eq. 3 (unique, default) or reference code (exclusive)")
    options.add_argument("--seed", type=int, default=0, help="seed of every stochastic step (default 0)")
    enrich = score.add_argument_group("enrichment (--metrics ora,gsea)")
    enrich.add_argument("--ora-background", choices=["gene_sets", "vocabulary"], default="gene_sets", help="ORA universe: all genes of the gene sets (reference, gseapy.enrich; default) or the model's genes")
    enrich.add_argument("--ora-bh-scope", choices=["hit_sets", "all_sets"], default="hit_sets", help="ORA Benjamini-Hochberg per topic over the sets sharing a gene with it (reference, default) or over all tested sets")
    enrich.add_argument("--alpha", type=float, default=0.01, help="ORA adjusted p-value at or below which a pathway is enriched (default 0.01)")
    enrich.add_argument("--ora-min-size", type=int, default=None, help="test only sets with at least this many background genes (default: no bound)")
    enrich.add_argument("--ora-max-size", type=int, default=None, help="test only sets with at most this many background genes (default: no bound)")
    enrich.add_argument("--gsea-engine", choices=["native", "gseapy", "blitzgsea"], default="native", help="GSEA engine: native (default), gseapy (reference, slow) or blitzgsea; the last two need topiceval[gsea]")
    enrich.add_argument("--n-perm", type=int, default=1000, help="GSEA permutations (default 1000)")
    enrich.add_argument("--gsea-fdr", type=float, default=0.01, help="GSEA FDR at or below which a pathway is enriched (default 0.01)")
    enrich.add_argument("--gsea-rank-by", choices=["topic_gene", "log"], default="topic_gene", help="rank genes by the topic-gene values (reference, default) or their centred log")
    enrich.add_argument("--gsea-min-size", type=int, default=15, help="GSEA tests sets with at least this many model genes (default 15)")
    enrich.add_argument("--gsea-max-size", type=int, default=500, help="GSEA tests sets with at most this many model genes (default 500)")
    enrich.add_argument("--n-jobs", type=int, default=1, help="threads for GSEA (default 1; -1: all cores); changes no number")
    score.add_argument("--out", metavar="JSON", help="write the result here (default: print JSON to stdout)")
    score.add_argument("--details", metavar="DIR", help="write the enrichment tables of every tested pair here (ora.csv, gsea.csv)")
    score.set_defaults(func=_cmd_score)
    return parser


def _cmd_score(args: argparse.Namespace) -> int:
    from topiceval.evaluate import evaluate
    from topiceval.gene_sets import load
    from topiceval.io import read_labels, read_outputs

    if args.example:
        example = EXAMPLES[args.example]
        args.topic_gene = args.topic_gene or str(example.topic_gene)
        args.cell_topic = args.cell_topic or str(example.cell_topic)
        args.labels = args.labels or str(example.labels)
        args.gene_sets = args.gene_sets or example.gene_sets
        args.name = args.name or example.name
    if not args.topic_gene:
        raise TopicEvalError("give --topic-gene (or --example NAME)")
    outputs = read_outputs(
        args.topic_gene,
        gene_names=args.genes,
        cell_topic=args.cell_topic,
        cell_embedding=args.cell_embedding,
        name=args.name,
    )
    labels = read_labels(args.labels) if args.labels else None
    gene_sets = load(args.gene_sets, case=args.gene_set_case) if args.gene_sets else None
    result = evaluate(
        outputs,
        gene_sets=gene_sets,
        labels=labels,
        metrics=args.metrics,
        top_n=args.top_n,
        tc_zero_cooccurrence=args.tc_zero_cooccurrence,
        td_method=args.td_method,
        seed=args.seed,
        ora_background=args.ora_background,
        ora_bh_scope=args.ora_bh_scope,
        ora_alpha=args.alpha,
        ora_min_size=args.ora_min_size,
        ora_max_size=args.ora_max_size,
        gsea_engine=args.gsea_engine,
        gsea_n_perm=args.n_perm,
        gsea_fdr=args.gsea_fdr,
        gsea_rank_by=args.gsea_rank_by,
        gsea_min_size=args.gsea_min_size,
        gsea_max_size=args.gsea_max_size,
        n_jobs=args.n_jobs,
    )
    if args.details:
        written = result.write_details(args.details)
        if not written:
            warnings.warn("--details: no metric with a detail table was asked for (--metrics ora,gsea)", stacklevel=1)
        for path in written:
            print(f"wrote {path}", file=sys.stderr if not args.out else sys.stdout)
    if args.out:
        result.to_json(args.out)
        print(_summary(result))
        print(f"wrote {args.out}")
    else:
        import json

        print(json.dumps(result.to_dict(), indent=2))
    return 0


def _summary(result) -> str:  # noqa: ANN001 - Evaluation, imported lazily
    model = result.config["model"]
    lines = [f"{model['name']}: {model['n_topics']} topics x {model['n_genes']} genes"
             + (f", {model['n_cells']} cells" if model["n_cells"] else "")]
    gene_sets = result.config.get("gene_sets")
    if gene_sets:
        coverage = result.config["coverage"]
        lines.append(
            f"gene sets: {gene_sets['source']} ({gene_sets['n_sets']} sets), "
            f"{coverage['n_covered']}/{coverage['n_genes']} model genes covered"
        )
    width = max(len(k) for k in result.scores.index)
    lines += [f"  {key:<{width}}  {value:.4f}" for key, value in result.scores.items()]
    return "\n".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"topiceval: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(os.environ.get("TOPICEVAL_DEBUG"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            if not debug:
                warnings.showwarning = _show_warning  # restored when the block ends
            return int(args.func(args) or 0)
    except (TopicEvalError, OSError) as exc:
        if debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"topiceval: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("topiceval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
