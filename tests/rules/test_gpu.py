"""The GPU rules beyond their examples: when GPU use is established, what messages name, notebooks."""

from __future__ import annotations

import ast
import json

import pytest

from pytest_aiml.engine import runner
from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules.gpu import (
    DataLoaderUnderused,
    HostSyncInTrainingLoop,
    NoMixedPrecision,
    PerSampleInferenceLoop,
)

TRAIN_STEP = (
    "def train(model, loader, optimizer):\n"
    "    for x, y in loader:\n"
    "        loss = model(x, y)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
    "        total += loss.item()\n"
)


def _findings(rule: type, source: str, path: str = "train.py") -> list:
    analysis = analyze_text(path, source, applicable_rules(path, source, [rule]), RepoContext())
    assert analysis.failure is None
    return list(analysis.findings)


def test_gpu_use_after_the_loop_counts() -> None:
    source = TRAIN_STEP + "\nif __name__ == '__main__':\n    train(Net().cuda(), loader, opt)\n"
    (finding,) = _findings(HostSyncInTrainingLoop, source)
    assert finding.line == 6
    assert finding.message == "loss.item() runs on every training step and waits for the GPU"


def test_cuda_in_a_comment_is_not_gpu_use() -> None:
    assert _findings(HostSyncInTrainingLoop, TRAIN_STEP + "# tested on 'cuda' boxes\n") == []


def test_other_libraries_cuda_is_not_torch() -> None:
    source = "from numba import cuda as nb\nx = nb.cuda\n" + TRAIN_STEP
    assert _findings(HostSyncInTrainingLoop, source) == []


def test_sync_chain_reported_once() -> None:
    source = "import torch\nmodel.cuda()\n" + TRAIN_STEP + "        seen.append(loss.detach().cpu().numpy().tolist())\n"
    findings = _findings(HostSyncInTrainingLoop, source)
    assert [finding.message.split(" runs ")[0] for finding in findings] == ["loss.item()", "loss.detach().cpu()"]


def test_inline_waiver_line_is_the_statement() -> None:
    source = "import torch\nmodel.cuda()\n" + TRAIN_STEP
    (finding,) = _findings(HostSyncInTrainingLoop, source)
    assert finding.statement_line == finding.line == 8


def test_dataloader_message_names_missing_arguments() -> None:
    source = "import torch\nfrom torch.utils.data import DataLoader\ntorch.cuda.set_device(0)\nDataLoader(ds, num_workers=0)\n"
    (finding,) = _findings(DataLoaderUnderused, source)
    assert finding.message == "DataLoader() in GPU code sets neither num_workers nor pin_memory=True, so the GPU waits for its batches"


def test_dataloader_test_modules_skipped() -> None:
    source = "import torch\nfrom torch.utils.data import DataLoader\nmodel.cuda()\nDataLoader(ds)\n"
    assert _findings(DataLoaderUnderused, source, path="tests/test_data.py") == []
    assert len(_findings(DataLoaderUnderused, source, path="data.py")) == 1


def test_per_sample_message_names_loop() -> None:
    source = "import torch\nnet = Net().cuda()\nfor image in images:\n    out = net(image.unsqueeze(dim=0))\n"
    (finding,) = _findings(PerSampleInferenceLoop, source)
    assert finding.message == (
        "net(image.unsqueeze(dim=0)) runs net on one sample per iteration of the loop over image; batch the samples instead"
    )


def test_per_sample_inner_loop_reported_once() -> None:
    source = (
        "import torch\nmodel = Net().cuda()\nfor group in groups:\n    for x in group:\n"
        "        out = model(x[None])\n"
    )
    assert [finding.line for finding in _findings(PerSampleInferenceLoop, source)] == [5]


def test_mixed_precision_in_notebook_cell() -> None:
    cells = [
        {"cell_type": "code", "source": ["import torch\n", "model = Net().cuda()\n"], "metadata": {}, "outputs": [], "execution_count": None},
        {"cell_type": "code", "source": [
            "for x, y in loader:\n", "    loss = model(x.cuda(), y.cuda())\n", "    loss.backward()\n", "    opt.step()\n",
        ], "metadata": {}, "outputs": [], "execution_count": None},
    ]
    notebook = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    (finding,) = _findings(NoMixedPrecision, notebook, path="train.ipynb")
    assert finding.line == 1
    assert finding.message.startswith("cell 2: this training loop runs on the GPU in float32")


def test_mixed_precision_text_skips_parse() -> None:
    source = "import torch\nmodel.cuda()\nscaler = torch.cuda.amp.GradScaler()\n" + TRAIN_STEP
    assert not NoMixedPrecision.applies_to("train.py", source)
    assert NoMixedPrecision.applies_to("train.py", "import torch\nmodel.cuda()\n" + TRAIN_STEP)


def test_per_sample_anchor_is_the_statement() -> None:
    source = "import torch\nnet = Net().cuda()\nfor image in images:\n    out = net(\n        image[None],\n    )\n"
    (finding,) = _findings(PerSampleInferenceLoop, source)
    assert (finding.line, finding.statement_line) == (4, 4)


def test_one_line_loop_anchors_to_loop() -> None:
    source = "import torch\nnet = Net().cuda()\nfor image in images: outs.append(net(image[None]))\n"
    (finding,) = _findings(PerSampleInferenceLoop, source)
    assert (finding.line, finding.statement_line) == (3, 3)


# -- ast candidate checks ----------------------------------------------------------------


def _kept(rule: type, source: str) -> bool:
    return rule.candidate(AstFacts(ast.parse(source)))


REPORTED = [
    # The only GPU use is a dotted import, which libcst reads as an attribute of torch.
    (DataLoaderUnderused, "from torch.cuda import amp\nfrom torch.utils.data import DataLoader\n\nloader = DataLoader(ds)\n"),
    (DataLoaderUnderused, "import torch\nfrom torch.utils.data import DataLoader\n\ndevice = 'cuda' ':0'\n"
     "loader = DataLoader(ds, 64, True, None, None, 0, None, True)\n"),
    # The backward pass runs under an ``if``, the print on every step.
    (HostSyncInTrainingLoop, "import torch\nmodel.cuda()\nwhile True:\n    try:\n        loss = model(x)\n"
     "        if training:\n            loss.backward()\n    finally:\n        print(loss)\n"),
    (HostSyncInTrainingLoop, "import torch\nmodel.cuda()\nfor x in xs:\n    if model(x).item() > 3:\n        break\n"
     "    model(x).backward()\n"),
    # An aliased numpy.newaxis, and a backward pass only in a nested function.
    (PerSampleInferenceLoop, "import torch\nfrom numpy import newaxis as nax\n\nmodel.cuda()\nfor x in xs:\n"
     "    y = model(x[nax])\n    def tune():\n        y.sum().backward()\n"),
    (NoMixedPrecision, "import torch\nmodel.cuda()\n\nasync def train():\n    async for x in loader:\n"
     "        model(x).sum().backward()\n"),
    (NoMixedPrecision, "import pytorch_lightning as pl\n\ntrainer = pl.Trainer(gpus=[0, 1])\n"),
]


@pytest.mark.parametrize(("rule", "source"), REPORTED, ids=[f"{rule.code}-{i}" for i, (rule, _) in enumerate(REPORTED)])
def test_candidate_keeps_reported_file(rule, source):
    assert _kept(rule, source)
    assert _findings(rule, source)


RULED_OUT = [
    (DataLoaderUnderused, "import torch\nfrom torch.utils.data import DataLoader\n\ndevice = torch.device('cuda')\n"
     "loader = DataLoader(ds, batch_size=64, num_workers=8, pin_memory=True)\n"),
    # ``torch.cuda`` in a comment passes the text test, but nothing in the code uses a GPU.
    (DataLoaderUnderused, "# see the torch.cuda notes\nfrom torch.utils.data import DataLoader\n\nloader = DataLoader(ds)\n"),
    # Logging under a condition is not per step.
    (HostSyncInTrainingLoop, "import torch\nmodel.cuda()\nfor step, x in enumerate(xs):\n    loss = model(x)\n"
     "    loss.backward()\n    if step % 100 == 0:\n        print(loss.item())\n"),
    (HostSyncInTrainingLoop, "import torch\nmodel.cuda()\nfor epoch in range(3):\n    for x in xs:\n"
     "        model(x).backward()\n    print(epoch)\n"),
    (PerSampleInferenceLoop, "import torch\nmodel.cuda()\nfor x in xs:\n    loss = model(x.unsqueeze(0)).sum()\n"
     "    loss.backward()\n"),
    (PerSampleInferenceLoop, "import torch\nmodel.cuda()\nfor batch in loader:\n    out = model(batch.unsqueeze(1))\n"),
    # A backward pass outside any loop: the rule reports training loops only.
    (NoMixedPrecision, "import torch\nmodel.cuda()\n\ndef step(x):\n    model(x).sum().backward()\n"),
    (NoMixedPrecision, "import lightning as L\n\ntrainer = L.Trainer(accelerator='cpu', gpus=None)\ntrainer.fit(model)\n"),
]


@pytest.mark.parametrize(("rule", "source"), RULED_OUT, ids=[f"{rule.code}-{i}" for i, (rule, _) in enumerate(RULED_OUT)])
def test_candidate_rules_out_clean_file(monkeypatch, rule, source):
    assert not _kept(rule, source)
    assert applicable_rules("train.py", source, [rule]), "the text pre-filter already rules the file out"
    monkeypatch.setattr(runner, "_candidates", lambda rules, source: rules)
    assert _findings(rule, source) == []
