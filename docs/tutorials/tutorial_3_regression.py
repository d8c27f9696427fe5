"""
3. Guard a model's metrics in CI
================================

Once a model's scores are right, keep them right: store them as a baseline and compare every new
run with it, from the command line (``topiceval regress``) or in the project's own tests (the
``topiceval_regression`` pytest fixture, registered when topiceval is installed).
"""

# %%
# A result and its baseline
# -------------------------
# ``topiceval score`` writes a JSON of every score and its configuration; ``regress
# --write-baseline`` turns it into a versioned baseline file. (``main`` is the ``topiceval``
# command; in a shell, drop the ``main([...])`` and type the words.)
import json
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

from topiceval.cli import main

work = Path(tempfile.mkdtemp(prefix="topiceval-regress-"))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    main(["score", "--example", "yan_nmf", "--metrics", "tc,td,tq,ip", "--out", str(work / "result.json")])
status = main(["regress", "--write-baseline", "--baseline", str(work / "baseline.json"),
               "--current", str(work / "result.json")])
print("exit status", status)
print(json.dumps(json.loads((work / "baseline.json").read_text()), indent=1)[:500])

# %%
# A rerun with the same code and data gives the same numbers: exit status 0.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    main(["score", "--example", "yan_nmf", "--metrics", "tc,td,tq,ip", "--out", str(work / "rerun.json")])
print("exit status", main(["regress", "--baseline", str(work / "baseline.json"), "--current", str(work / "rerun.json")]))

# %%
# Drift: a value that moved beyond the tolerance (``|current - baseline| <= atol + rtol |baseline|``,
# default rtol 1e-9) fails with exit status 1 and a table of what moved. Here TD is edited by
# hand to stand in for a changed model.
drifted = json.loads((work / "rerun.json").read_text())
drifted["TD"] = drifted["TD"] - 0.01
(work / "drifted.json").write_text(json.dumps(drifted))
print("exit status", main(["regress", "--baseline", str(work / "baseline.json"), "--current", str(work / "drifted.json")]))

# %%
# A tolerance per metric accepts expected noise (GSEA's permutation null, a stochastic model):
print("exit status", main(["regress", "--baseline", str(work / "baseline.json"), "--current",
                           str(work / "drifted.json"), "--rtol", "TD=0.05"]))

# %%
# A changed configuration (other gene sets, options or metrics: ``config_sha256`` differs) is
# not a regression: the values are not comparable, and the exit status is 3.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    main(["score", "--example", "yan_nmf", "--metrics", "tc,td,tq,ip", "--td-method", "exclusive",
          "--out", str(work / "other.json")])
print("exit status", main(["regress", "--baseline", str(work / "baseline.json"), "--current", str(work / "other.json")]))

# %%
# In a project's tests
# --------------------
# The fixture keeps one baseline per test in ``baselines/<test module>/<test name>.json`` beside
# the test. The first run writes it and fails once (review it, commit it); later runs compare.
project = work / "myproject"
(project / "tests").mkdir(parents=True)
(project / "tests" / "test_model.py").write_text(textwrap.dedent('''
    import warnings

    import topiceval as te
    from topiceval.examples import EXAMPLES


    def test_my_model_keeps_its_scores(topiceval_regression):
        example = EXAMPLES["yan_nmf"]
        outputs = te.read_outputs(example.topic_gene, cell_topic=example.cell_topic)
        labels = example.labels.read_text().split()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = te.evaluate(outputs, gene_sets="reactome", labels=labels)
        topiceval_regression.check(result, rtol={"TC": 1e-6})
'''))


def pytest(*args):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=project, capture_output=True, text=True)
    print(done.stdout.strip().splitlines()[-1])
    return done.returncode


print("first run:", pytest())  # writes the baseline, fails once
print(sorted(str(p.relative_to(project)) for p in project.rglob("*.json")))
print("second run:", pytest())  # compares: passes

# %%
# ``pytest --topiceval-update-baselines`` rewrites the baselines after an intended change. In CI,
# the project's usual ``pytest`` line is all it takes: a drifted metric fails the build with the
# table of what moved.
