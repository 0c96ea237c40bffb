"""The GPU rules beyond their examples: when GPU use is established, what messages name, notebooks."""

from __future__ import annotations

import json

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
