"""What the paper-setting benchmarks share: the leaderboard's config and its prepared datasets.

``bench_cell_costs.py``, ``bench_heap.py`` and ``bench_spectra_loss.py`` fit models with the
settings of ``reports/paper-setting/paper-setting.toml`` on a dataset of the shared data folder,
prepared as the leaderboard prepares it (``runner.prepare_dataset``: the config's highly variable
genes of count data). They import this module from their own folder (``python benchmarks/X.py``
puts it first on ``sys.path``).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anndata import AnnData

    from topiceval.leaderboard.config import LeaderboardConfig

CONFIG = Path(__file__).resolve().parents[1] / "reports" / "paper-setting" / "paper-setting.toml"


def load_config() -> LeaderboardConfig:
    """The paper-setting leaderboard's config."""
    from topiceval.leaderboard.config import load_config as load

    return load(CONFIG)


def prepared_dataset(dataset: str, config: LeaderboardConfig) -> AnnData:
    """``dataset`` as the leaderboard feeds it to the models (prepared in a temporary folder, in memory).

    Raises ``SystemExit`` with the leaderboard's reason when the leaderboard would skip it.
    """
    import anndata

    from topiceval.leaderboard.config import DatasetSpec
    from topiceval.leaderboard.runner import prepare_dataset

    with tempfile.TemporaryDirectory(prefix="topiceval-bench-") as cache, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_dataset(DatasetSpec(dataset), config.n_top_genes, cache)
        if prepared.skip_reason:
            raise SystemExit(f"{dataset}: {prepared.skip_reason}")
        return anndata.read_h5ad(prepared.path)
