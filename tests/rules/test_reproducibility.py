"""Reproducibility rules: entry-point detection, notebooks, pins and messages the examples do not pin down."""

from __future__ import annotations

import ast
import json

import libcst as cst
import pytest

from pytest_aiml.engine import runner
from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.examples import run_example
from pytest_aiml.engine.rule import Example
from pytest_aiml.engine.runner import applicable_rules
from pytest_aiml.rules.reproducibility import (
    DataLoaderShuffleWithoutGenerator,
    DeterministicAlgorithmsNotRequested,
    HyperparametersLeftDefault,
    NumpyRandomInDataset,
    SplitWithoutRandomState,
    UnseededRandomness,
    has_main_guard,
    is_training_script,
)


def _notebook(*cells: str) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code", "source": cell, "metadata": {}, "outputs": [], "execution_count": None}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


# -- entry points ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("if __name__ == '__main__':\n    main()\n", True),
        ('if "__main__" == __name__:\n    main()\n', True),
        ("if __name__ == '__main__' and debug:\n    main()\n", False),
        ("def run():\n    if __name__ == '__main__':\n        main()\n", False),
        ("if __name__ != '__main__':\n    pass\n", False),
        ("print(__name__)\n", False),
    ],
)
def test_main_guard_detection(source, expected):
    assert has_main_guard(cst.parse_module(source)) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("train.py", True),
        ("scripts/train_bert.py", True),
        ("model_train.py", True),
        ("src/train_utils.py", False),
        ("mingpt/trainer.py", False),
        ("train_helpers.py", False),
        ("evaluate.py", False),
        ("constrain.py", False),
    ],
)
def test_training_script_names(path, expected):
    assert is_training_script(path) is expected


# -- AIML521 ---------------------------------------------------------------------------------


def test_unseeded_notebook_reports_cell():
    notebook = _notebook(
        "import torch\n",
        "model = torch.nn.Linear(4, 1)\nloss = model(torch.ones(4)).sum()\nloss.backward()\n",
    )
    findings = run_example(UnseededRandomness, Example(notebook, path="notebooks/explore.ipynb"))
    assert len(findings) == 1
    assert findings[0].message.startswith("cell 2: torch.nn.Linear()")
    assert findings[0].line == 1


def test_seed_in_later_notebook_cell_counts():
    notebook = _notebook(
        "import torch\nmodel = torch.nn.Linear(4, 1)\n",
        "torch.manual_seed(0)\nmodel.fit(data)\n",
    )
    assert run_example(UnseededRandomness, Example(notebook, path="explore.ipynb")) == []


def test_one_finding_per_unseeded_library():
    source = (
        "import random\nimport numpy as np\nimport torch\n\ntorch.manual_seed(0)\n"
        "a = np.random.rand(3)\nb = np.random.rand(3)\nc = random.random()\nnet = torch.nn.Linear(3, 1)\nnet.fit(a)\n"
    )
    findings = run_example(UnseededRandomness, Example(source, path="train.py"))
    assert [finding.line for finding in findings] == [6, 8]
    assert "NumPy's global random state" in findings[0].message
    assert "random.seed(seed)" in findings[1].message


def test_entropy_reseed_is_not_a_seed():
    # ``np.random.seed()`` without an argument reseeds from the operating system.
    source = "import numpy as np\n\nnp.random.seed()\nidx = np.random.permutation(10)\nmodel.fit(X[idx])\n"
    findings = run_example(UnseededRandomness, Example(source, path="train.py"))
    assert [finding.line for finding in findings] == [4]


def test_seeded_default_rng_does_not_seed_sklearn():
    source = (
        "import numpy as np\nfrom sklearn.cluster import KMeans\n\nrng = np.random.default_rng(0)\n"
        "km = KMeans(n_clusters=3)\nkm.fit(rng.normal(size=(10, 2)))\n"
    )
    findings = run_example(UnseededRandomness, Example(source, path="train_clusters.py"))
    assert [finding.line for finding in findings] == [5]
    assert "KMeans() without random_state" in findings[0].message


def test_method_seed_helper_counts():
    source = (
        "import torch\nfrom lightning.fabric import Fabric\n\nfabric = Fabric()\nfabric.seed_everything(3)\n"
        "model = torch.nn.Linear(2, 2)\nfabric.backward(model(x).sum())\n"
    )
    assert run_example(UnseededRandomness, Example(source, path="train.py")) == []


def test_untrained_entry_point_is_silent():
    source = "import numpy as np\n\nif __name__ == '__main__':\n    print(np.random.rand(3))\n"
    assert run_example(UnseededRandomness, Example(source, path="demo.py")) == []


# -- AIML523 and AIML524 -----------------------------------------------------------------------


def test_shuffle_loader_silent_when_seeded_by_keras():
    source = (
        "import keras\nfrom torch.utils.data import DataLoader\n\nkeras.utils.set_random_seed(1)\n"
        "loader = DataLoader(ds, shuffle=True)\nmodel.fit(loader)\n"
    )
    assert run_example(DataLoaderShuffleWithoutGenerator, Example(source, path="train.py")) == []


def test_lightning_deterministic_false_reported():
    source = "import lightning as L\n\ntrainer = L.Trainer(deterministic=False)\ntrainer.fit(model)\n"
    findings = run_example(DeterministicAlgorithmsNotRequested, Example(source, path="train.py"))
    assert [finding.line for finding in findings] == [3]
    assert "lightning.Trainer() has no deterministic=True" in findings[0].message


def test_hf_full_determinism_counts():
    source = (
        "import torch\nfrom transformers import TrainingArguments\n\n"
        "args = TrainingArguments('out', full_determinism=True)\nloss.backward()\n"
    )
    assert run_example(DeterministicAlgorithmsNotRequested, Example(source, path="train.py")) == []


def test_library_seed_is_not_determinism():
    # Lightning's seed_everything seeds the generators but leaves cuDNN free to pick kernels.
    source = "import torch\nimport lightning as L\n\nL.seed_everything(0)\nloss.backward()\n"
    findings = run_example(DeterministicAlgorithmsNotRequested, Example(source, path="train.py"))
    assert [finding.line for finding in findings] == [5]


# -- AIML522 and AIML525 -------------------------------------------------------------------------


def test_explicit_random_state_none_is_a_choice():
    source = "from sklearn.model_selection import train_test_split\n\nparts = train_test_split(X, random_state=None)\n"
    assert run_example(SplitWithoutRandomState, Example(source)) == []


def test_old_cross_validation_module_resolved():
    source = "from sklearn.cross_validation import train_test_split\n\nparts = train_test_split(X, y)\n"
    assert len(run_example(SplitWithoutRandomState, Example(source))) == 1


def test_tuning_package_silences_estimators_only():
    source = (
        "import optuna\nimport torch\nfrom sklearn.svm import SVC\n\nclf = SVC()\n"
        "opt = torch.optim.Adam(model.parameters())\n"
    )
    findings = run_example(HyperparametersLeftDefault, Example(source))
    assert [finding.line for finding in findings] == [6]


def test_estimator_message_names_hyperparameters():
    source = "from lightgbm import LGBMClassifier\n\nmodel = LGBMClassifier(n_jobs=4)\n"
    findings = run_example(HyperparametersLeftDefault, Example(source))
    assert len(findings) == 1
    assert "LGBMClassifier()" in findings[0].message
    assert "num_leaves" in findings[0].message


# -- AIML526 ---------------------------------------------------------------------------------------

_DATASET = (
    "import numpy as np\nfrom torch.utils.data import Dataset\n\nclass Flip(Dataset):\n"
    "    def __getitem__(self, i):\n        return self.x[i] if np.random.rand() < 0.5 else self.x[i][::-1]\n"
)


@pytest.mark.parametrize(
    ("requirements", "reported"),
    [
        ("torch==1.8.1\n", True),
        ("torch<1.9\n", True),
        ("torch\n", True),
        ("torch==1.9.0\n", False),
        ("torch>=1.10,<3\n", False),
    ],
)
def test_dataset_numpy_follows_torch_pin(requirements, reported):
    example = Example(_DATASET, path="data/flip.py", files={"requirements.txt": requirements})
    findings = run_example(NumpyRandomInDataset, example)
    assert bool(findings) is reported


def test_dataset_subclass_of_local_dataset():
    source = _DATASET + (
        "\nclass Noisy(Flip):\n    def __getitem__(self, i):\n        return super().__getitem__(i) + np.random.normal()\n"
    )
    findings = run_example(NumpyRandomInDataset, Example(source))
    assert [finding.line for finding in findings] == [6, 10]
    assert "Noisy.__getitem__()" in findings[1].message


# -- ast candidate checks ----------------------------------------------------------------


def _kept(rule: type, source: str) -> bool:
    return rule.candidate(AstFacts(ast.parse(source)))


def _libcst_findings(monkeypatch, rule: type, source: str, path: str) -> list:
    """Run the rule's libcst visitor on the source, with no candidate check in front of it."""
    assert applicable_rules(path, source, [rule]), "the text pre-filter already rules the file out"
    monkeypatch.setattr(runner, "_candidates", lambda rules, source: rules)
    return run_example(rule, Example(source, path=path))


_MAIN = "\nif __name__ == '__main__':\n    main()\n"

REPORTED = [
    # A later import in a function may rebind ``np``; the module-level one still draws from NumPy.
    (UnseededRandomness, "run.py", "import numpy as np\n\ndef main():\n    model.fit(np.random.permutation(10))\n\n"
     "def on_tpu():\n    import jax.numpy as np\n" + _MAIN),
    # ``Trainer`` is imported only after main() in the traversal: there it is unresolved and seeds nothing.
    (UnseededRandomness, "run.py", "import torch\n\ndef main():\n    head = torch.nn.Linear(8, 2)\n"
     "    Trainer(model=head).train()\n\ndef build():\n    from transformers import Trainer\n" + _MAIN),
    # A seed call without a seed reseeds from the operating system.
    (DataLoaderShuffleWithoutGenerator, "train.py", "import torch\nfrom torch.utils.data import DataLoader\n\n"
     "torch.manual_seed()\nloader = DataLoader(ds, shuffle=True)\nmodel.fit(loader)\n"),
    # ``cudnn`` is bound only inside a function: the assignment may not reach torch's flag.
    (DeterministicAlgorithmsNotRequested, "train.py", "import torch\n\ndef backends():\n    from compat import cudnn\n\n"
     "cudnn.deterministic = True\nloss.backward()\n"),
    # A string naming a scheduler is not a scheduler.
    (HyperparametersLeftDefault, "model.py", "from torch import optim as O\n\nopt = O.Adam(model.parameters())\n"
     "schedule = 'OneCycleLR'\n"),
    (HyperparametersLeftDefault, "model.py", "import torch\n\nopt = torch.optim.Adam([{'params': head}, {'params': body}])\n"),
]


@pytest.mark.parametrize(("rule", "path", "source"), REPORTED, ids=[f"{rule.code}-{i}" for i, (rule, *_) in enumerate(REPORTED)])
def test_candidate_keeps_reported_file(rule, path, source):
    assert _kept(rule, source)
    assert run_example(rule, Example(source, path=path))


RULED_OUT = [
    (UnseededRandomness, "train.py", "import torch\nfrom torch import nn\n\ntorch.manual_seed(0)\nmodel = nn.Linear(4, 2)\n"
     "for x in data:\n    model(x).sum().backward()\n"),
    # The project's seeding helper is taken to seed every library.
    (UnseededRandomness, "train.py", "import numpy as np\nfrom .utils import set_seed\n\nset_seed(1)\n"
     "model.fit(np.random.permutation(8))\n"),
    # Random numbers, but nothing trains.
    (UnseededRandomness, "sample.py", "import torch\n\ndef main():\n    print(torch.randn(3))\n" + _MAIN),
    (DataLoaderShuffleWithoutGenerator, "train.py", "import lightning as L\nfrom torch.utils.data import DataLoader\n\n"
     "L.seed_everything(7)\nloader = DataLoader(ds, shuffle=True)\nL.Trainer().fit(model, loader)\n"),
    (DataLoaderShuffleWithoutGenerator, "train.py", "from torch.utils.data import DataLoader\n\n"
     "loader = DataLoader(ds, batch_size=8)\nmodel.fit(loader)\n"),
    # A main guard that trains nothing has no place to anchor a finding.
    (DeterministicAlgorithmsNotRequested, "setup.py", "import torch\n\nif __name__ == '__main__':\n    print(torch.__version__)\n"),
    (DeterministicAlgorithmsNotRequested, "train.py", "import torch\n\ntorch.use_deterministic_algorithms(True)\n"
     "for x in data:\n    model(x).sum().backward()\n"),
    (DeterministicAlgorithmsNotRequested, "train.py", "import torch\nfrom torch.backends import cudnn\n\n"
     "cudnn.deterministic = True\ncudnn.benchmark = False\nloss.backward()\n"),
    (HyperparametersLeftDefault, "model.py", "from torch import optim\n\nopt = optim.AdamW(model.parameters(), lr=3e-4)\n"),
    (HyperparametersLeftDefault, "model.py", "import torch\n\nopt = torch.optim.SGD(model.parameters())\n"
     "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)\n"),
    (HyperparametersLeftDefault, "model.py", "import optuna\nfrom sklearn.svm import SVC\n\nclf = SVC()\n"),
]


@pytest.mark.parametrize(("rule", "path", "source"), RULED_OUT, ids=[f"{rule.code}-{i}" for i, (rule, *_) in enumerate(RULED_OUT)])
def test_candidate_rules_out_clean_file(monkeypatch, rule, path, source):
    assert not _kept(rule, source)
    assert _libcst_findings(monkeypatch, rule, source, path) == []
