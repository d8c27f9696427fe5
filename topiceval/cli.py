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
    from topiceval.evaluate import METRIC_ALIASES, METRICS

    return ",".join([*METRICS, *METRIC_ALIASES])


def _resolutions(text: str) -> tuple[float, ...]:
    """``0.5,1,1.5`` or ``START:STOP:STEP`` (STOP excluded, like the paper's ``0:2:0.1``)."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(round((stop - start) / step))
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas or START:STOP:STEP, got {text!r}"
        ) from None
    return tuple(values)


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
        help="score a model's outputs (TC, TD, TQ, IP, ARI, NMI)",
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
    clustering = score.add_argument_group("clustering (--metrics ari,nmi or clustering)")
    clustering.add_argument("--cluster-method", choices=["louvain", "leiden"], default="louvain", help="community detection (default louvain, as the paper)")
    clustering.add_argument("--cluster-resolutions", type=_resolutions, default=None, metavar="R", help="resolutions to sweep: 0.5,1.0 or START:STOP:STEP (default 0:2:0.1, the paper's 0.0 .. 1.9)")
    clustering.add_argument("--cluster-n-neighbors", type=int, default=15, metavar="K", help="kNN graph size, the cell itself included (default 15, as scanpy)")
    clustering.add_argument("--cluster-knn", choices=["auto", "exact", "pynndescent"], default="auto", help="kNN search (default auto: exact up to 100,000 cells)")
    clustering.add_argument("--cluster-weighted", choices=["auto", "yes", "no"], default="auto", help="weight edges by connectivity (default auto: Louvain unweighted, Leiden weighted, as scanpy)")
    score.add_argument("--out", metavar="JSON", help="write the result here (default: print JSON to stdout)")
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
        cluster_method=args.cluster_method,
        cluster_n_neighbors=args.cluster_n_neighbors,
        cluster_knn=args.cluster_knn,
        cluster_weighted={"auto": None, "yes": True, "no": False}[args.cluster_weighted],
        **({} if args.cluster_resolutions is None else {"cluster_resolutions": args.cluster_resolutions}),
    )
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
