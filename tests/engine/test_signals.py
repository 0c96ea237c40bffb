"""Text signals: the literal anchors in front of each pattern never change what is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aiml.engine.signals import CODE_SIGNALS, _anchors, read_signals

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "fixtures").rglob("*.py")) + sorted((ROOT / "pytest_aiml").rglob("*.py"))
SNIPPETS = [
    "job = BatchPredictionJob(model)\n",
    "spark.read.parquet(path)\n",
    "logger.info('prediction %s', score)\n",
    "class OutputGuardrail:\n    pass\n",
    "if __name__ == '__main__':\n    main()\n",
    "trainer = Trainer(accelerator='gpu', devices=2)\n",
    "model.cuda()\n",
    "with torch.autocast('cuda'):\n    pass\n",
    # The patterns whose anchors are given by hand, one snippet per alternative.
    "trainer = pl.Trainer (max_epochs=3)\n",
    "logger = loggers.MLFlowLogger(experiment_name='x')\n",
    "model = AutoModel.from_pretrained(name, device_map='auto')\n",
    "trainer = Trainer(gpus=1)\n",
    "tf.config.list_physical_devices('GPU')\n",
    "device = 'cuda:0'\n",
    "def model_fn(model_dir):\n    pass\n",
    "def lambda_handler(event, context):\n    pass\n",
    "class TritonPythonModel:\n    pass\n",
    "class Handler(ts.torch_handler.BaseHandler):\n    pass\n",
    "class Predictor(BasePredictor):\n    pass\n",
    "def run(raw_data):\n    pass\n",
    "def validate_user_input(text):\n    pass\n",
    "def check_llm_response(text):\n    pass\n",
    "def sanitise_prompts(texts):\n    pass\n",
    "def guard_output(text):\n    pass\n",
    "class PromptGuardrail:\n    pass\n",
    "def apply_guardrails(text):\n    pass\n",
    "result = moderate_output(reply)\n",
    "config = {'content_filter': True}\n",
    "log.info('inference took %s', score)\n",
]


def _slow_signals(text: str) -> frozenset[str]:
    return frozenset(name for name, pattern in CODE_SIGNALS.items() if pattern.search(text))


@pytest.mark.parametrize("text", SNIPPETS)
def test_anchored_search_matches_plain_search_on_snippets(text: str) -> None:
    assert read_signals("x.py", text).signals == _slow_signals(text)


def test_anchored_search_matches_plain_search_on_real_files() -> None:
    assert SAMPLES
    for path in SAMPLES:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert read_signals(str(path), text).signals == _slow_signals(text), path


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"\.fit\(|\.fit_generator\(", (".fit(", ".fit_generator(")),
        (r"\.predict\([^)\n]*(csv|batch)|spark", (".predict(", "spark")),
        (r"log(ger)?\.\w+", ("log",)),
        (r"^if\s+__name__", None),
        (r"colou?r_map", ("colo",)),
        (r"[Gg]uard", None),
    ],
)
def test_anchors_of_pattern(pattern: str, expected: tuple[str, ...] | None) -> None:
    assert _anchors(pattern) == expected
