"""Training rules on sources their examples do not cover: positions, messages, de-duplication, text filters."""

from __future__ import annotations

import pytest

from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules import training


def _findings(rule, source: str, path: str = "train.py"):
    analysis = analyze_text(path, source, applicable_rules(path, source, [rule]), RepoContext())
    assert analysis.failure is None
    return list(analysis.findings)


def test_nested_loops_report_once():
    source = (
        "def train(model, loader, optimizer):\n"
        "    for epoch in range(3):\n"
        "        for x in loader:\n"
        "            model(x).backward()\n"
        "            optimizer.step()\n"
    )
    findings = _findings(training.GradientsNotCleared, source)
    assert [(finding.line, finding.column) for finding in findings] == [(4, 13)]
    assert "model(x).backward() and optimizer.step()" in findings[0].message


def test_gradient_finding_anchors_statement():
    source = "for x in loader:\n    loss = model(x)\n    loss.backward()\n    optimizer.step()\n"
    [finding] = _findings(training.GradientsNotCleared, source)
    # Reported when the call is reached, so an inline waiver on that statement applies.
    assert finding.statement_line == 3


def test_eval_message_names_model():
    source = (
        "def fit(net, loader, optimizer):\n"
        "    net.eval()\n"
        "    for x in loader:\n"
        "        net(x).backward()\n"
        "        optimizer.step()\n"
        "        optimizer.zero_grad()\n"
    )
    [finding] = _findings(training.EvalModeNotRestored, source)
    assert finding.line == 2
    assert "net.train()" in finding.message
    assert "net(x).backward()" in finding.message


def test_eval_in_module_level_loop():
    source = (
        "import torch\n"
        "for epoch in range(2):\n"
        "    for x in loader:\n"
        "        model(x).backward()\n"
        "        opt.step()\n"
        "        opt.zero_grad()\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        model(val)\n"
    )
    [finding] = _findings(training.EvalModeNotRestored, source)
    assert finding.line == 7
    assert "next iteration trains in eval mode" in finding.message


def test_eval_helper_with_keyword_model():
    source = (
        "def validate(loader, model):\n"
        "    model.eval()\n"
        "    return [model(x) for x in loader]\n\n"
        "def fit(net, loader, optimizer):\n"
        "    for epoch in range(2):\n"
        "        for x in loader:\n"
        "            net(x).backward()\n"
        "            optimizer.step()\n"
        "            optimizer.zero_grad()\n"
        "        validate(loader, model=net)\n"
    )
    [finding] = _findings(training.EvalModeNotRestored, source)
    assert finding.line == 11
    assert "validate() switches net to eval mode" in finding.message


@pytest.mark.parametrize(
    ("rule", "source", "column"),
    [
        (training.TensorConstructor, "import torch\nw = 2 * torch.Tensor([0.5, 1.5])\n", 9),
        (training.ZeroGradSetToNoneFalse, "def step(opt):\n    opt.zero_grad(set_to_none=False)\n", 5),
    ],
)
def test_fixable_finding_is_call(rule, source, column):
    # The fixers rewrite the reported node, so it must be the whole call.
    [finding] = _findings(rule, source)
    assert finding.line == 2
    assert finding.column == column


def test_tensor_constructor_follows_rebinding():
    source = (
        "import torch\n\n"
        "def f(rows, n):\n"
        "    data = [r.x for r in rows]\n"
        "    a = torch.Tensor(data)\n"
        "    data = n\n"
        "    b = torch.Tensor(data)\n"
    )
    assert [finding.line for finding in _findings(training.TensorConstructor, source)] == [5]


def test_moved_tensor_message_names_variable():
    source = (
        "import torch\n"
        "for x in loader:\n"
        "    mask = torch.ones(x.size(0))\n"
        "    mask = mask.cuda()\n"
    )
    [finding] = _findings(training.TensorMovedInLoop, source)
    assert finding.line == 4
    assert finding.message.startswith("mask = torch.ones(x.size(0)) is created on the CPU")


def test_moved_tensor_after_device_rebinding():
    source = (
        "import torch\n"
        "for x in loader:\n"
        "    mask = torch.ones(3)\n"
        "    mask = torch.ones(3, device=x.device)\n"
        "    mask = mask.to(device)\n"
    )
    assert _findings(training.TensorMovedInLoop, source) == []


def test_numpy_reported_once_per_expression():
    source = (
        "import numpy as np\n"
        "import torch.nn as nn\n\n"
        "class Net(nn.Module):\n"
        "    def forward(self, x):\n"
        "        return np.exp(np.log(x.cpu().numpy()))\n"
    )
    findings = _findings(training.NumpyInForward, source)
    assert [(finding.line, finding.column) for finding in findings] == [(6, 16)]


def test_numpy_outside_forward_ignored():
    source = (
        "import numpy as np\n"
        "import torch.nn as nn\n\n"
        "class Net(nn.Module):\n"
        "    def forward(self, x):\n"
        "        def helper(y):\n"
        "            return y\n"
        "        return self.fc(x)\n\n"
        "    def summary(self, x):\n"
        "        return np.mean(x.numpy())\n"
    )
    assert _findings(training.NumpyInForward, source) == []


def test_keras_nested_loops_report_once():
    source = (
        "import keras\n\n"
        "def build():\n"
        "    return keras.Sequential([keras.layers.Dense(1)])\n\n"
        "for lr in (0.1, 0.01):\n"
        "    for fold in folds:\n"
        "        model = build()\n"
        "        model.fit(fold.x, fold.y)\n"
    )
    assert [finding.line for finding in _findings(training.KerasSessionNotCleared, source)] == [8]


def test_keras_clear_in_outer_loop_still_leaks():
    source = (
        "import keras\n\n"
        "for lr in (0.1, 0.01):\n"
        "    keras.backend.clear_session()\n"
        "    for fold in folds:\n"
        "        model = keras.Sequential()\n"
        "        model.fit(fold.x, fold.y)\n"
    )
    assert [finding.line for finding in _findings(training.KerasSessionNotCleared, source)] == [6]


def test_distributed_request_rebound_name():
    source = (
        "import torch.distributed as dist\n\n"
        "def f(a, b):\n"
        "    req = dist.isend(a, dst=1)\n"
        "    req = dist.isend(b, dst=1)\n"
        "    req.wait()\n"
    )
    # The first request is overwritten, but the name is read later: silence rather than guess.
    assert _findings(training.UnwaitedDistributedRequest, source) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("self.log('loss', loss)\nlogger.log(10, 'x')\n", False),
        ("import numpy as np\ny = np.log(p)\n", True),
        ("from math import log\ny = log(p)\n", True),
        ("y = p.softmax(-1).log()\n", True),
        ("import torch\ny = torch.log2(p)\n", True),
    ],
)
def test_log_text_filter(text, expected):
    assert training.UnmaskedLog.applies_to("model.py", text) is expected


def test_checkpoint_filter_skips_callbacks():
    text = "from lightning.pytorch.callbacks import ModelCheckpoint\ncb = ModelCheckpoint('ckpt')\n"
    assert not training.CheckpointWithoutUseReentrant.applies_to("train.py", text)


@pytest.mark.parametrize(
    "rule",
    [training.ForwardCalledDirectly, training.TensorConstructor, training.ZeroGradSetToNoneFalse, training.TensorMovedInLoop],
)
def test_style_rules_skip_tests(rule):
    text = "import torch\n" + " ".join(rule.prefilter) + " zeros(\n"
    assert applicable_rules("tests/test_model.py", text, [rule]) == []
    assert applicable_rules("src/model.py", text, [rule]) == [rule]


def test_softplus_advice():
    [finding] = _findings(training.ImpreciseLogExp, "import torch\ny = torch.log(1 + torch.exp(z))\n")
    assert "torch.nn.functional.softplus(z)" in finding.message


def test_rules_have_unique_codes():
    codes = [rule.code for rule in training.RULES]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert all(rule.category.value == "training" for rule in training.RULES)
