"""A registry trainer that counts its calls and can simulate a kill (tests of the leaderboard cache).

Imported by name (``leaderboard_models:counting_nmf``) by :mod:`topiceval.adapters.registry`, as
any registered model's trainer; the tests run it in-process (sequential backend) to count calls.
"""

from __future__ import annotations

CALLS: list[int] = []
#: Raise KeyboardInterrupt on this call number (1-based), simulating a killed run.
INTERRUPT_AT: int | None = None
#: Raise RuntimeError for this seed (a crashing model).
FAIL_SEED: int | None = None


def counting_nmf(adata, params):
    from topiceval.adapters import nmf

    CALLS.append(params.seed)
    if INTERRUPT_AT is not None and len(CALLS) == INTERRUPT_AT:
        raise KeyboardInterrupt("simulated kill")
    if FAIL_SEED is not None and params.seed == FAIL_SEED:
        raise RuntimeError("simulated crash")
    result = nmf.train(adata, params)
    result.outputs.name = "counting"
    return result


def reset() -> None:
    global INTERRUPT_AT, FAIL_SEED
    CALLS.clear()
    INTERRUPT_AT = None
    FAIL_SEED = None


def killing_nmf(adata, params):
    """NMF that, on its first attempt for seed 1, kills the worker process running it (SIGKILL).

    Attempts are appended to ``$TOPICEVAL_TEST_ATTEMPTS/attempts.txt`` (one ``seed`` a line), so a
    test in the client process can count them across worker processes.
    """
    import os
    import signal
    from pathlib import Path

    from topiceval.adapters import nmf

    folder = Path(os.environ["TOPICEVAL_TEST_ATTEMPTS"])
    with open(folder / "attempts.txt", "a") as log:
        log.write(f"{params.seed}\n")
    marker = folder / f"killed-{params.seed}"
    if params.seed == 1 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    result = nmf.train(adata, params)
    result.outputs.name = "killing"
    return result
