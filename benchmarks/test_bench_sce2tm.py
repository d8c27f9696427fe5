"""pytest-benchmark: one scE2TM training step and one Sinkhorn/ECR forward+backward at the paper's
sizes (batch 512, 5000 genes, K = 100), on CPU with one thread.

    pytest benchmarks/test_bench_sce2tm.py --benchmark-only

``bench_sce2tm.py`` compares whole epochs with the authors' package side by side; these track our
side alone between commits.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from topiceval.models.sce2tm.ecr import ecr_loss, pairwise_sq_distances  # noqa: E402
from topiceval.models.sce2tm.model import SCE2TMConfig, SCE2TMNet  # noqa: E402
from topiceval.models.sce2tm.train import torch_threads  # noqa: E402


@pytest.fixture(scope="module")
def step_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(512, 5000, generator=g) * (torch.rand(512, 5000, generator=g) > 0.5)
    v = torch.randn(512, 512, generator=g)
    torch.manual_seed(0)
    net = SCE2TMNet(5000, 512, SCE2TMConfig())
    return net, x, v


def test_training_step(benchmark, step_inputs):
    net, x, v = step_inputs
    nbr = torch.randperm(512)
    optimizer = torch.optim.RMSprop(net.parameters(), lr=1e-3)

    def step():
        terms, _ = net.packed_losses(x, 512, nbr, v, v[nbr])
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        return terms["loss"].item()

    with torch_threads(1):
        loss = benchmark(step)
    assert loss == loss  # finite, not NaN


def test_ecr_forward_backward(benchmark):
    g = torch.Generator().manual_seed(1)
    topics = torch.nn.functional.normalize(torch.randn(100, 200, generator=g))
    genes = torch.nn.functional.normalize(torch.randn(5000, 200, generator=g))
    genes = genes + 0.3 * topics[torch.randint(0, 100, (5000,), generator=g)]

    def run():
        t, ge = topics.clone().requires_grad_(), genes.clone().requires_grad_()
        loss, result = ecr_loss(pairwise_sq_distances(t, ge), 100.0)
        loss.backward()
        return result.n_iter

    with torch_threads(1):
        n_iter = benchmark(run)
    assert 1 <= n_iter <= 1000
