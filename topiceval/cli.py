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
    from topiceval.metrics.registry import METRIC_ALIASES, METRICS

    return ",".join([*METRICS, *METRIC_ALIASES])


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option flag: sets the option and records a deprecation note."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        setattr(namespace, self.dest, values)
        notes = getattr(namespace, "_deprecated", None) or []
        flag = "--" + self.dest.replace("_", "-")
        notes.append(f"{option_string} is deprecated and goes in the next release; use {flag}")
        namespace._deprecated = notes


def _cli_parser(spec):  # noqa: ANN001, ANN202 - OptionSpec -> argparse type
    """The text-to-value function of an option (argparse shows its message on bad input)."""
    if spec.kind == "bool_or_none":
        table = {"auto": None, "yes": True, "no": False}

        def parse_bool(text: str):  # noqa: ANN202
            if text not in table:
                raise argparse.ArgumentTypeError(f"expected auto, yes or no, got {text!r}")
            return table[text]
        return parse_bool
    parse = spec.parse or {"int": int, "int_or_none": int, "fraction": float}.get(spec.kind, str)

    def convert(text: str):  # noqa: ANN202
        if spec.kind == "int_or_none" and text.strip().lower() == "none":
            return None
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc) or f"invalid value {text!r}") from None
    convert.__name__ = spec.name
    return convert


def _add_option_flags(score: argparse.ArgumentParser) -> None:
    """One flag per registered option (the name with ``-``), grouped by family; defaults stay unset so
    that the one declaration's default applies."""
    from topiceval.metrics.registry import FAMILIES

    from topiceval.metrics.registry import option_specs_all

    shared = [spec for spec in option_specs_all() if spec.owner.__module__ == "topiceval.metrics._family"]
    groups = [("options of several metrics", shared)]
    for family in FAMILIES:
        if family.options is not None:
            title = f"{family.name} options" + ("" if family.default else f" (--metrics {','.join((family.name, *family.aliases))})")
            groups.append((title, family.options.specs()))
    done: set[str] = set()
    for title, specs in groups:
        specs = [spec for spec in specs if spec.name not in done]
        if not specs:
            continue
        group = score.add_argument_group(title)
        for spec in specs:
            done.add(spec.name)
            default = {None: "auto", True: "yes", False: "no"}[spec.default] if spec.kind == "bool_or_none" else spec.default
            if spec.name == "cluster_resolutions":
                default = "0:2:0.1"
            kwargs = {"dest": spec.name, "default": argparse.SUPPRESS, "type": _cli_parser(spec),
                      "help": f"{spec.doc} (default {'none' if default is None else default})"}
            if spec.kind == "choice":
                kwargs["choices"] = list(spec.choices)
            elif spec.kind == "bool_or_none":
                kwargs["choices"] = [None, True, False]
                kwargs["metavar"] = "{auto,yes,no}"
            if spec.metavar:
                kwargs["metavar"] = spec.metavar
            group.add_argument(spec.flag, **kwargs)
            for alias in spec.aliases:
                group.add_argument(alias, dest=spec.name, default=argparse.SUPPRESS, type=_cli_parser(spec),
                                   action=_DeprecatedAlias, help=f"deprecated spelling of {spec.flag}")


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
        help="score a model's outputs (TC, TD, TQ, IP, ORA, GSEA, ARI, NMI)",
        description="Score topic-model outputs and write the scores as JSON.",
        epilog="Example: topiceval score --example yan_nmf --out result.json",
    )
    inputs = score.add_argument_group("inputs")
    inputs.add_argument("--example", choices=sorted(EXAMPLES), help="use a shipped example's files as defaults")
    inputs.add_argument("--topic-gene", metavar="BETA", help="topic-gene matrix K x V: .csv (header of gene names optional), .npy or .h5ad (e.g. DIR/outputs.h5ad of topiceval train); optional with --cell-embedding for ARI / NMI alone")
    inputs.add_argument("--genes", metavar="GENES", help="gene names: JSON list or one per line (optional if BETA has a header)")
    inputs.add_argument("--cell-topic", metavar="THETA", help="cell-topic matrix n x K: .csv or .npy")
    inputs.add_argument("--cell-embedding", metavar="EMB", help="cell embedding n x d for clustering metrics: .csv or .npy")
    inputs.add_argument("--labels", metavar="LABELS", help="cell labels: JSON list, one per line, file.csv:column or file.h5ad:column")
    inputs.add_argument("--gene-sets", metavar="GMT", help="GMT file (plain or .gz), shipped collection (hallmark, reactome, mouse_hallmark) or MSigDB msigdb:NAME@VERSION (e.g. msigdb:c2@2024.1.Hs, downloaded once into the cache)")
    inputs.add_argument("--gene-set-case", choices=["upper", "exact"], default="upper", help="compare symbols upper-cased (default) or exactly")
    inputs.add_argument("--name", help="model name in the output (default: file name)")
    score.add_argument("--metrics", default=None, help=f"comma-separated metrics (default: tc,td,tq,ip where inputs allow; the others are named in one line); valid: {_metric_names()}")
    _add_option_flags(score)
    score.add_argument("--out", metavar="JSON", help="write the result here (default: print JSON to stdout)")
    score.add_argument("--details", metavar="DIR", help="write the enrichment tables of every tested pair here (ora.csv, gsea.csv)")
    score.set_defaults(func=_cmd_score)

    train = sub.add_parser(
        "train",
        help="train a topic model on an h5ad and write outputs that `score` reads",
        description="Train a registered topic model on an h5ad file. DIR receives outputs.h5ad "
        "(topic-gene, cell-topic, cell embedding and the input's obs), config.json (hyperparameters, "
        "seed, data file and sha256, versions, timings) and model/ (weights).",
        epilog="Example: topiceval train nmf --data counts.h5ad --out runs/nmf --seed 0; "
        "topiceval train sce2tm --data pbmc.h5ad --out runs/pbmc --topics 20 --seed 0 (default K = 100); "
        "then topiceval score --topic-gene runs/pbmc/outputs.h5ad --labels runs/pbmc/outputs.h5ad:cell_type "
        "--gene-sets reactome",
    )
    train.add_argument("model", nargs="?", help="model name (see --list)")
    train.add_argument("--list", action="store_true", help="list the trainable models and the extra each needs")
    train.add_argument("--data", metavar="H5AD", help="cells x genes .h5ad; a counts file as it comes (raw counts in X, no layers) works for every model")
    train.add_argument("--out", metavar="DIR", help="output folder (must be absent or empty unless --overwrite)")
    train.add_argument("--epochs", type=int, help="training epochs (default: the model's)")
    train.add_argument("--topics", type=int, dest="n_topics", help="number of topics K (default: the model's)")
    train.add_argument("--seed", type=int, default=0, help="seed of every random step (default 0)")
    train.add_argument("--label-key", help="obs column of cell labels, checked and kept in outputs.h5ad (training is label-free)")
    train.add_argument("--embedding-key", help="obsm key of an external cell embedding (scE2TM: default X_scGPT, else a PCA fallback)")
    train.add_argument("--layer", help="layer holding the model input, or X (default: the model's: nmf, lda, scetm, ldvae "
                       "train on layers['counts'], else on X when it holds raw counts; sce2tm and dscigm on X, log-normalised, "
                       "raw counts in X being first preprocessed with 5000 highly variable genes)")
    train.add_argument("--preprocess", type=int, metavar="N_GENES", dest="n_top_genes",
                       help="first apply the paper's preprocessing to raw counts (normalise, log1p, N highly variable genes; topiceval.datasets.preprocess)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="options",
                       help="model-specific option, repeatable; VALUE is read as JSON when it parses (e.g. --set ecr_weight=20 --set device=cpu)")
    train.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    train.add_argument("--no-progress", action="store_true", help="no progress output (on stderr) while training")
    train.set_defaults(func=_cmd_train)
    _add_gene_sets_parser(sub)
    _add_leaderboard_parsers(sub)
    _add_select_k_parser(sub)
    return parser


# --------------------------------------------------------------------------- select-k
def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None


def _add_select_k_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "select-k",
        help="train a model for several K and seeds; tabulate topic stability, TC, TD, TQ, IP, ARI, NMI per K",
        description="Train MODEL for every K and seed through the leaderboard runner (cached, resumable, "
        "parallel over seeds), then print per K the topic stability over seed pairs (Hungarian matching "
        "of topic-gene cosines), TC, TD, TQ, IP, ARI and NMI (mean +- sd), and draw them against K. The K "
        "that maximises mean stability x mean TQ is marked: that is the only rule applied, not a "
        "recommendation; read the curves.",
        epilog="Example: topiceval select-k --data pollen --model nmf --topics 5,10,20 --seeds 0,1,2 --out selk",
    )
    parser.add_argument("--data", required=True, metavar="H5AD", help="expression file (counts unless --values) or a registered dataset name")
    parser.add_argument("--model", required=True, help="registered model name (topiceval train --list)")
    parser.add_argument("--topics", required=True, type=_int_list, metavar="K,K,...", help="numbers of topics, e.g. 10,20,50,100")
    parser.add_argument("--seeds", type=_int_list, default=[0, 1, 2], metavar="S,S,...", help="seeds (at least two; default 0,1,2)")
    parser.add_argument("--label-key", help="obs column of the cell types (needed for a data file)")
    parser.add_argument("--species", choices=["human", "mouse"], help="species of the data file's genes (needed for a data file)")
    parser.add_argument("--values", choices=["counts", "log_expression"], help="what the data file holds (default counts)")
    parser.add_argument("--gene-sets", default="hallmark", help="collection for TC / TQ (default hallmark)")
    parser.add_argument("--no-clustering", action="store_true", help="skip ARI / NMI (the Louvain sweep)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the model's)")
    parser.add_argument("--n-top-genes", type=int, default=5000, help="highly variable genes kept from counts (default 5000)")
    parser.add_argument("--cache", metavar="DIR", help="cache folder (default: $TOPICEVAL_CACHE/leaderboard or the user cache)")
    parser.add_argument("--backend", choices=["joblib", "dask", "sequential"], default="joblib", help="how cells run (default joblib)")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel cells (default 1)")
    parser.add_argument("--out", metavar="DIR", help="write select_k.csv and select_k.png here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=_cmd_select_k)


def _cmd_select_k(args: argparse.Namespace) -> int:
    from pathlib import Path

    from topiceval.io import atomic_path
    from topiceval.leaderboard import statistics
    from topiceval.leaderboard.report import format_value, text_table

    metrics = ["tc", "td", "tq", "ip"] + ([] if args.no_clustering else ["clustering"])
    table = statistics.select_k(args.data, args.model, args.topics, args.seeds, label_key=args.label_key,
                                species=args.species, values=args.values, gene_sets=args.gene_sets,
                                metrics=metrics, epochs=args.epochs, n_top_genes=args.n_top_genes,
                                cache=args.cache, backend=args.backend, n_jobs=args.n_jobs,
                                progress=not args.no_progress)
    shown = [m for m in statistics.SELECT_K_METRICS if m in table.columns]
    header = ["K", *shown, "stability x TQ", ""]
    rows = [[str(k), *[format_value(r[m], r[f"{m}_sd"]) for m in shown], format_value(r.get("stability_x_TQ")),
             "<- max stability x TQ" if r.get("marked") else ""] for k, r in table.iterrows()]
    print(text_table(header, rows))
    print("\nstability: mean +- sd over seed pairs; other columns: mean +- sd over seeds. The marked K maximises "
          "mean stability x mean TQ (the only rule applied); read the curves before choosing.")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "select_k.csv", suffix=".csv") as tmp:
            table.to_csv(tmp, float_format="%.10g")
        png = statistics.plot_select_k(table)
        with atomic_path(out / "select_k.png", suffix=".png") as tmp:
            Path(tmp).write_bytes(png)
        from topiceval.leaderboard.runner import readable

        for name in ("select_k.csv", "select_k.png"):
            readable(out / name)
        print(f"wrote {out / 'select_k.csv'} and {out / 'select_k.png'}")
    return 0


def _add_leaderboard_parsers(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "benchmark",
        help="run a leaderboard (models x datasets x seeds x gene sets) and write its report",
        description="Train every model of a leaderboard config on every dataset and seed, score each "
        "against every gene-set collection, and write index.html, summary.md and CSV/JSON of every number. "
        "Finished cells are cached and never recomputed: a killed run resumes.",
        epilog="Example: topiceval benchmark --config reports/leaderboard/leaderboard.toml",
    )
    bench.add_argument("--config", required=True, metavar="TOML", help="leaderboard configuration (TOML)")
    bench.add_argument("--out", metavar="DIR", help="report folder (default: output.dir of the config, else its folder)")
    bench.add_argument("--cache", metavar="DIR", help="cache folder (default: output.cache of the config, else "
                       "$TOPICEVAL_CACHE/leaderboard or the user cache folder)")
    bench.add_argument("--backend", choices=["joblib", "dask", "sequential"], help="override run.backend")
    bench.add_argument("--n-jobs", type=int, help="override run.n_jobs (parallel cells)")
    bench.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler address (default: a LocalCluster)")
    bench.add_argument("--refresh", action="store_true", help="recompute the cells of this config even if cached")
    bench.add_argument("--report-only", action="store_true", help="only redraw the report from the results in --out")
    bench.add_argument("--cached-only", action="store_true",
                       help="train and score nothing: report the cells already in the cache and list the others "
                       "as missing (a partial report of a run still going on elsewhere)")
    bench.add_argument("--keep-published", action="store_true",
                       help="carry over the finished cells of the report already in --out that this cache lacks "
                       "(same train key and scoring; a run on another machine than the one that published it): "
                       "they are not retrained, and the new report marks them as published")
    bench.add_argument("--baseline-out", metavar="JSON", help="also write a regression baseline of every score")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    bench.set_defaults(func=_cmd_benchmark)

    regress = sub.add_parser(
        "regress",
        help="compare metric values with a baseline; non-zero exit on drift",
        description="Compare current scores (an evaluation JSON, a leaderboard results.json or folder, or a "
        "baseline) with a baseline. Exit status, the first that applies: 1 drift beyond tolerance; 4 values "
        "missing from the current results (same configuration); 5 a different model (name or shape); 3 the "
        "configuration changed (config_sha256 differs: values not comparable, not a regression); 0 within "
        "tolerance; 2 bad input (also a tolerance for a metric neither side has).",
        epilog="Example: topiceval regress --baseline baseline.json --current result.json --rtol GSEA_N=0.05",
    )
    regress.add_argument("--baseline", required=True, metavar="JSON", help="baseline file (topiceval-baseline format)")
    regress.add_argument("--current", required=True, metavar="JSON", help="current scores")
    regress.add_argument("--rtol", action="append", default=[], metavar="[METRIC=]VALUE",
                         help="relative tolerance, per metric or (bare) for every metric; repeatable")
    regress.add_argument("--atol", action="append", default=[], metavar="[METRIC=]VALUE",
                         help="absolute tolerance, per metric or (bare) for every metric; repeatable")
    regress.add_argument("--key", metavar="NAME", help="compare single evaluations under this name on both sides "
                         "(two files of the same model named differently)")
    regress.add_argument("--all", action="store_true", help="show every compared value, not only the failing ones")
    regress.add_argument("--write-baseline", action="store_true",
                         help="write --current as a new baseline to --baseline (with the given tolerances) and exit")
    regress.set_defaults(func=_cmd_regress)

    demo = sub.add_parser(
        "demo",
        help="train scE2TM, NMF and LDA on the shipped dataset, score them, write an HTML report",
        description="The main job: on the shipped Pollen et al. 2014 dataset, train scE2TM and the NMF / LDA "
        "baselines with short schedules, score them with every metric (TC, TD, TQ, IP, ORA, GSEA, ARI, NMI), "
        "write the report and print the leaderboard. Seeds are fixed: the numbers are reproducible.",
    )
    demo.add_argument("--out", default="reports/demo", metavar="DIR", help="report folder (default reports/demo)")
    demo.add_argument("--models", default="sce2tm,nmf,lda", help="comma-separated models, or 'installed' "
                      "(every registered model whose extra is installed); default sce2tm,nmf,lda")
    demo.add_argument("--n-jobs", type=int, help="parallel cells (default 2)")
    demo.add_argument("--cache", metavar="DIR", help="keep trained models here (default: a temporary folder)")
    demo.add_argument("--quick", action="store_true", help="tiny schedules for a smoke test (numbers meaningless)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)


def _add_gene_sets_parser(sub: argparse._SubParsersAction) -> None:
    gene_sets = sub.add_parser(
        "gene-sets",
        help="list, download and inspect gene-set collections (MSigDB registry, cache)",
        description="MSigDB releases and collections, the download cache, and GMT file summaries.",
    )
    actions = gene_sets.add_subparsers(dest="gene_sets_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list",
        help="known MSigDB releases, shipped collections and cached files",
        description="List the MSigDB registry (releases and collections), the shipped "
        "collections and the files in the cache.",
    )
    listing.add_argument("--release", metavar="V", help="list one release's collections with file names")
    listing.set_defaults(func=_cmd_gene_sets_list)
    fetch = actions.add_parser(
        "fetch",
        help="download an MSigDB collection into the cache",
        description="Download an MSigDB collection (GMT, gene symbols) into the cache and record "
        "its sha256; a cached file is checked, not downloaded again.",
        epilog="Example: topiceval gene-sets fetch c2 --version 2024.1.Hs",
    )
    fetch.add_argument("name", metavar="NAME", help="collection: h, c2, c2.cp.reactome, mh, all (whole database), ...")
    fetch.add_argument("--version", dest="release", metavar="V", help="MSigDB release, e.g. 2024.1.Hs, 2024.1.Mm, 7.1")
    fetch.add_argument("--force", action="store_true", help="download again; the bytes must match the recorded sha256")
    fetch.add_argument("--replace-checksum", action="store_true", help="download again and accept new bytes, recording their sha256")
    fetch.add_argument("--timeout", type=float, default=60.0, help="socket time-out in seconds (default 60)")
    fetch.add_argument("--retries", type=int, default=3, help="attempts for transient failures (default 3)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=_cmd_gene_sets_fetch)
    info = actions.add_parser(
        "info",
        help="summarise a gene-set file: sets, genes, sizes, coverage of a gene list",
        description="Summarise a collection (GMT path, shipped name or msigdb:NAME@VERSION "
        "already in the cache): number of sets and genes, set-size distribution and, with "
        "--genes, how many of those genes the collection knows.",
    )
    info.add_argument("file", metavar="FILE", help="GMT file, shipped collection or msigdb:NAME@VERSION")
    info.add_argument("--genes", metavar="GENES", help="gene list (JSON list or one per line) to report coverage for")
    info.add_argument("--case", choices=["upper", "exact"], default="upper", help="symbol case rule (default upper)")
    info.add_argument("--species", choices=["human", "mouse"], help="species of the --genes list")
    info.add_argument("--cross-species", action="store_true", help="allow matching --species genes to the other species' sets (case-insensitive symbols)")
    info.set_defaults(func=_cmd_gene_sets_info)


def _cmd_gene_sets_list(args: argparse.Namespace) -> int:
    from topiceval.gene_sets import MSIGDB_RELEASES, SHIPPED, cache_dir, cached_files, resolve
    from topiceval.gene_sets.registry import base_url

    if args.release:
        entry = resolve(f"msigdb:all@{args.release}")
        release = entry.release
        print(f"MSigDB {release.version} ({release.species} symbols), {base_url()}/release/{release.version}/")
        width = max(len(c) for c in release.collections)
        for collection in release.collections:
            print(f"  {collection:<{width}}  {release.filename(collection):<44}  {release.description(collection)}")
        print(f"Fetch one with: topiceval gene-sets fetch {release.collections[2]} --version {release.version}")
        return 0
    print(f"MSigDB releases (from {base_url()}):")
    for version, release in MSIGDB_RELEASES.items():
        top = [c for c in release.collections if "." not in c]
        n_sub = len(release.collections) - len(top)
        print(f"  {version:<10} {release.species:<6} {' '.join(top)}  (+{n_sub} sub-collections)")
    print("  details: topiceval gene-sets list --release V")
    print("shipped collections:")
    for name, shipped in SHIPPED.items():
        print(f"  {name:<15} {shipped.species:<6} {shipped.description} [{shipped.release}]")
    root = cache_dir()
    files = cached_files(root)
    print(f"cache ({root}):" + ("" if files else " empty"))
    for cached in files:
        sha = cached.entry["sha256"][:12] if cached.entry else "not yet checked"
        print(f"  {cached.key}  {_size(cached.size)}  sha256 {sha}")
    return 0


def _size(n_bytes: int) -> str:
    size = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _cmd_gene_sets_fetch(args: argparse.Namespace) -> int:
    from topiceval.gene_sets import cache_dir, fetch, read_gmt, resolve
    from topiceval.gene_sets.download import read_manifest

    entry = resolve(args.name, args.release)
    path = fetch(
        entry.collection,
        entry.version,
        force=args.force,
        replace_checksum=args.replace_checksum,
        timeout=args.timeout,
        retries=args.retries,
        progress=False if args.no_progress else None,
    )
    recorded = read_manifest(cache_dir()).get(entry.cache_key, {})
    gene_sets = read_gmt(path, source=entry.spec)
    print(f"{entry.spec}: {gene_sets.n_sets} sets, {gene_sets.n_genes} genes, {entry.species} symbols")
    print(f"  file   {path} ({_size(path.stat().st_size)})")
    print(f"  sha256 {recorded.get('sha256', gene_sets.sha256)} (recorded {recorded.get('recorded_at', '?')})")
    print(f"  use it: --gene-sets {entry.spec}  or  topiceval.gene_sets.load({entry.spec!r})")
    return 0


def _cmd_gene_sets_info(args: argparse.Namespace) -> int:
    from topiceval.errors import InputError
    from topiceval.gene_sets import load
    from topiceval.io import read_gene_names

    gene_sets = load(args.file, case=args.case, species=args.species,
                     cross_species=args.cross_species, download=False)
    config = gene_sets.config()
    print(f"{gene_sets.source}: {gene_sets.n_sets} sets, {gene_sets.n_genes} genes")
    print(f"  sha256   {gene_sets.sha256}")
    known = {k: config[k] for k in ("collection", "release", "species") if config[k]}
    if known:
        print("  " + ", ".join(f"{k} {v}" for k, v in known.items()))
    summary = gene_sets.size_summary()
    print(
        f"  set size min {summary['min']}, 25% {summary['q25']:g}, median {summary['median']:g}, "
        f"75% {summary['q75']:g}, max {summary['max']}, mean {summary['mean']:.1f}"
    )
    print("  sets by size: " + ", ".join(f"{k}: {v}" for k, v in summary["bins"].items()))
    if args.genes:
        genes = read_gene_names(args.genes)
        try:
            coverage = gene_sets.coverage(genes)
        except InputError as exc:
            print(f"  coverage of {args.genes}: 0 of {len(genes)} genes ({exc})")
            return 0
        print(
            f"  coverage of {args.genes}: {coverage.n_covered} of {coverage.n_genes} genes "
            f"({coverage.fraction:.1%}) appear in some set"
        )
        from topiceval._utils import preview

        if coverage.aliased:
            pairs = [f"{name} -> {symbol}" for name, symbol in coverage.aliased.items()]
            print(f"  matched by the symbol of a symbol-and-Ensembl-ID name: {len(pairs)} ({preview(pairs, 5)})")
        if coverage.missing:
            print(f"  not in any set: {preview(coverage.missing, 10)}")
    return 0


def _parse_options(items: Sequence[str]) -> dict:
    import json

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TopicEvalError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


def _cmd_train(args: argparse.Namespace) -> int:
    from topiceval.adapters import registry

    if args.list:
        entries = registry.available()
        width = max(len(e.name) for e in entries)
        for entry in entries:
            missing = entry.missing()
            state = f"needs: pip install \"topiceval[{entry.extra}]\"" if missing else "installed"
            print(f"{entry.name:<{width}}  {entry.description} [{state}]")
        return 0
    if not args.model:
        raise TopicEvalError("name a model to train (topiceval train --list shows them)")
    if not args.data or not args.out:
        raise TopicEvalError("give --data H5AD and --out DIR")
    params = registry.TrainParams(
        n_topics=args.n_topics, epochs=args.epochs, seed=args.seed, layer=args.layer,
        embedding_key=args.embedding_key, label_key=args.label_key, n_top_genes=args.n_top_genes,
        options=_parse_options(args.options), progress=not args.no_progress,
    )
    from topiceval.adapters._common import retain_freed_memory

    retain_freed_memory()  # this process only trains: keep freed memory for the next step
    out = registry.train(args.model, args.data, args.out, params=params, overwrite=args.overwrite,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    import json

    config = json.loads((out / registry.CONFIG_FILE).read_text())
    data = config["data"]
    print(f"{config['name']}: {config['outputs']['n_topics']} topics x {data['n_cells']} cells x "
          f"{data['n_genes']} genes, trained in {config['timings']['fit_s']:.1f} s")
    print(f"wrote {out}/ ({', '.join(config['files'])})")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from topiceval.evaluate import evaluate
    from topiceval.gene_sets import load
    from topiceval.io import read_labels, read_outputs
    from topiceval.metrics.registry import option_specs_all

    for note in getattr(args, "_deprecated", None) or []:
        warnings.warn(note, FutureWarning, stacklevel=1)
    if args.example:
        example = EXAMPLES[args.example]
        args.topic_gene = args.topic_gene or str(example.topic_gene)
        args.cell_topic = args.cell_topic or str(example.cell_topic)
        args.labels = args.labels or str(example.labels)
        args.gene_sets = args.gene_sets or example.gene_sets
        args.name = args.name or example.name
    if not args.topic_gene and not args.cell_embedding and not args.cell_topic:
        raise TopicEvalError("give --topic-gene (or --cell-embedding for ARI / NMI alone, or --example NAME)")
    outputs = read_outputs(
        args.topic_gene,
        gene_names=args.genes,
        cell_topic=args.cell_topic,
        cell_embedding=args.cell_embedding,
        name=args.name,
    )
    labels = read_labels(args.labels) if args.labels else None
    gene_sets = load(args.gene_sets, case=args.gene_set_case) if args.gene_sets else None
    options = {spec.name: getattr(args, spec.name) for spec in option_specs_all() if hasattr(args, spec.name)}
    result = evaluate(outputs, gene_sets=gene_sets, labels=labels, metrics=args.metrics, **options)
    if result.skipped:
        print("skipped: " + "; ".join(f"{name} {why}" for name, why in result.skipped.items()), file=sys.stderr)
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


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from topiceval.leaderboard import config as lconfig
    from topiceval.leaderboard import report, runner

    config = lconfig.load_config(args.config)
    if args.scheduler:
        config = config.replace(scheduler=args.scheduler)
    out = Path(args.out) if args.out else (config.out or Path(args.config).resolve().parent)
    from topiceval.errors import InputError

    if args.report_only and args.keep_published:
        raise InputError("--report-only redraws the report in --out as it is: --keep-published has nothing to add")
    if args.report_only:
        results = runner.Results.read(out)
    else:
        log = out / ("run-cached-only.log" if args.cached_only else runner.LOG_FILE)
        results = runner.run(config, cache=args.cache, log=log, backend=args.backend, n_jobs=args.n_jobs,
                             progress=not args.no_progress, refresh=args.refresh, cached_only=args.cached_only,
                             published=out if args.keep_published else None)
    paths = report.write_report(results, out)
    print(report.leaderboard_text(results))
    cells = results.cells
    if not cells.empty:
        counts = cells["status"].value_counts()
        missing = int(counts.get(runner.MISSING, 0))
        print(f"\ncells: {int(counts.get('done', 0))} done, {int(counts.get('skipped', 0))} skipped, "
              f"{int(counts.get('failed', 0))} failed" + (f", {missing} missing (not in the cache yet)" if missing else "")
              + f" (reasons in {paths['markdown'].name})")
    if args.baseline_out:
        from topiceval.leaderboard.regress import make_baseline

        make_baseline(results).write(args.baseline_out)
        print(f"wrote {args.baseline_out}")
    print(f"wrote {paths['html']} and {paths['markdown']}")
    failed = int((cells["status"] == "failed").sum()) if not cells.empty else 0
    return 1 if failed else 0


def _cmd_regress(args: argparse.Namespace) -> int:
    from topiceval.leaderboard import regress

    tolerances = regress.parse_tolerance_pairs(args.rtol, args.atol)
    if args.write_baseline:
        regress.make_baseline(args.current, tolerances=tolerances, key=args.key).write(args.baseline)
        print(f"wrote {args.baseline}")
        return 0
    comparison = regress.compare(args.baseline, args.current, tolerances=tolerances or None, key=args.key)
    table = comparison.diff_table(show_all=args.all)
    if table:
        print(table)
    print(comparison.summary())
    return comparison.exit_code


def _cmd_demo(args: argparse.Namespace) -> int:
    from topiceval.leaderboard.demo import run_demo

    outcome = run_demo(args.out, models=args.models, quick=args.quick, n_jobs=args.n_jobs, cache=args.cache,
                       progress=not args.no_progress)
    print(outcome["table"])
    cells = outcome["results"].cells
    for row in cells[cells["status"] != "done"].itertuples():
        print(f"{row.model} on {row.dataset} (seed {row.seed}) {row.status}: {row.reason}")
    print(f"\nwrote {outcome['report']['html']} ({outcome['wall_s']:.0f} s)")
    return 1 if (cells["status"] == "failed").any() else 0


def _summary(result) -> str:  # noqa: ANN001 - Evaluation, imported lazily
    model = result.config["model"]
    shape = (f"{model['n_topics']} topics x {model['n_genes']} genes" if model["n_genes"]
             else "cell representation only")
    lines = [f"{model['name']}: {shape}" + (f", {model['n_cells']} cells" if model["n_cells"] else "")]
    gene_sets = result.config.get("gene_sets")
    if gene_sets:
        coverage = result.config["coverage"]
        lines.append(
            f"gene sets: {gene_sets['source']} ({gene_sets['n_sets']} sets), "
            f"{coverage['n_covered']}/{coverage['n_genes']} model genes covered"
        )
    width = max(len(k) for k in result.scores.index)
    for key, value in result.scores.items():
        ci = result.info.get(key, {}).get("ci")
        interval = f"  [{ci['low']:.4f}, {ci['high']:.4f}] {ci['level']:.0%} CI" if ci else ""
        lines.append(f"  {key:<{width}}  {value:.4f}{interval}")
    if any(result.info.get(k, {}).get("ci") for k in result.scores.index):
        lines.append("  (percentile bootstrap over cells; topic and cluster assignments held fixed)")
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
