"""The C heap keeps freed memory for the next training step (adapters._common.retain_freed_memory)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Training steps of a dense network of d-scIGM's first widths (5000-1387-1066, 8.4M weights):
# each step's gradients and activations are freed together, and by default glibc gives the freed
# top of its heap back and the next step faults it in again, page by page.
_STEPS = """
import json, resource, sys
import torch
from topiceval.adapters import _common
applied = _common.retain_freed_memory() if sys.argv[1] == "retain" else None
torch.manual_seed(0)
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Linear(5000, 1387), torch.nn.Tanh(), torch.nn.Linear(1387, 1066))
optimiser = torch.optim.Adam(net.parameters())
x = torch.randn(32, 5000)
def step():
    optimiser.zero_grad(set_to_none=True)
    net(x).square().mean().backward()
    optimiser.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""
#: The pages a step's gradients alone take (8.4M float32 weights), ten steps.
_PAGES = 10 * (5000 * 1387 + 1387 * 1066) * 4 // 4096


def _run_steps(mode: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True,
                         env={**environment, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_retained_heap_is_not_faulted_in_again():
    default, retained = _run_steps("default"), _run_steps("retain")
    assert retained["applied"] is True
    assert default["faults"] > _PAGES // 2  # the default gives it back every step (measured: 135,000)
    assert retained["faults"] < _PAGES // 8  # kept: the steps reuse it (measured: 1 to 5,300)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_a_users_own_malloc_setting_is_left_alone():
    mine = _run_steps("retain", MALLOC_TRIM_THRESHOLD_="131072")
    assert mine["applied"] is False
    assert mine["faults"] > _PAGES // 2  # glibc's default trimming, as asked
