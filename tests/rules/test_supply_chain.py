"""AIML102 on cases beyond its own examples: messages, argument positions, local paths and shadowing."""

from __future__ import annotations

import ast

import pytest

from pytest_aiml.engine import runner
from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.context import RepoContext
from pytest_aiml.engine.runner import analyze_text, applicable_rules
from pytest_aiml.rules.supply_chain import UnpinnedHubDownload, is_local_path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _messages(source: str, path: str = "example.py") -> list[str]:
    analysis = analyze_text(path, source, applicable_rules(path, source, [UnpinnedHubDownload]), RepoContext())
    assert analysis.failure is None, analysis.failure
    return [finding.message for finding in analysis.findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m')\n",
            "transformers.AutoModel.from_pretrained() downloads 'org/m' from the Hugging Face Hub without revision=",
        ),
        (
            "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision='main')\n",
            "at revision 'main', a branch or tag name, which is mutable",
        ),
        (
            "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision='release-2024')\n",
            "a branch or tag name",
        ),
        (
            "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision='0123abc')\n",
            "at revision '0123abc', an abbreviated commit hash instead of the full 40-character one",
        ),
        (
            "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision=None)\n",
            "without revision=",
        ),
        (
            "def load(cls):\n    return cls.tokenizer_class.from_pretrained('org/m')\n",
            "cls.tokenizer_class.from_pretrained() downloads 'org/m'",
        ),
        (
            "from huggingface_hub import hf_hub_download\np = hf_hub_download('org/m', 'w.bin')\n",
            "huggingface_hub.hf_hub_download() downloads 'org/m'",
        ),
        (
            "import datasets\nds = datasets.load_dataset_builder('imdb')\n",
            "datasets.load_dataset_builder() downloads 'imdb'",
        ),
        (
            "from sentence_transformers import CrossEncoder\nc = CrossEncoder(model_name='cross-encoder/ms-marco-MiniLM-L-6-v2')\n",
            "sentence_transformers.CrossEncoder() downloads 'cross-encoder/ms-marco-MiniLM-L-6-v2'",
        ),
        (
            "from peft import AutoPeftModelForCausalLM\nm = AutoPeftModelForCausalLM.from_pretrained('org/adapter')\n",
            "downloads 'org/adapter'",
        ),
        (
            "import transformers\np = transformers.pipeline('fill-mask', 'google-bert/bert-base-uncased')\n",
            "transformers.pipeline() downloads 'google-bert/bert-base-uncased'",
        ),
    ],
)
def test_message_names_call_and_problem(source, expected):
    messages = _messages(source)
    assert len(messages) == 1, messages
    assert expected in messages[0]


@pytest.mark.parametrize(
    "source",
    [
        f"from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision='{COMMIT.upper()}')\n",
        "from transformers import pipeline\nclassify = pipeline('sentiment-analysis')\n",
        "from transformers import pipeline\nclassify = pipeline('sentiment-analysis', model=loaded_model)\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', local_files_only=True)\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained(*arguments)\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained(pretrained_model_name_or_path='C:\\\\models\\\\bert')\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained('models/bert/final')\n",
        "from sentence_transformers import SentenceTransformer\nempty = SentenceTransformer()\n",
        "from datasets import load_dataset\nds = load_dataset('imagefolder', data_dir='images')\n",
        "from peft import PeftModel\nm = PeftModel.from_pretrained(base, './adapter')\n",
        "class Wrapper(Base):\n    @classmethod\n    def from_pretrained(cls, name, **kwargs):\n"
        "        return super().from_pretrained(name, **kwargs)\n",
    ],
)
def test_not_reported(source):
    assert _messages(source) == []


def test_peft_adapter_id_is_second_argument():
    source = (
        "from peft import PeftModel\n"
        f"pinned = PeftModel.from_pretrained(base, 'org/adapter', revision='{COMMIT}')\n"
        "unpinned = PeftModel.from_pretrained(base, model_id='org/adapter')\n"
    )
    messages = _messages(source)
    assert len(messages) == 1
    assert "peft.PeftModel.from_pretrained() downloads 'org/adapter'" in messages[0]


def test_parameter_shadows_module_constant():
    source = (
        "from transformers import AutoModel\nREVISION = 'main'\n"
        "def load(REVISION):\n    return AutoModel.from_pretrained('org/m', revision=REVISION)\n"
        "default = AutoModel.from_pretrained('org/m', revision=REVISION)\n"
    )
    analysis = analyze_text("example.py", source, [UnpinnedHubDownload], RepoContext())
    assert [finding.line for finding in analysis.findings] == [5]


def test_constant_rebound_is_not_a_constant():
    source = (
        f"from transformers import AutoModel\nREVISION = '{COMMIT}'\nREVISION = compute()\n"
        "m = AutoModel.from_pretrained('org/m', revision=REVISION)\n"
    )
    assert _messages(source) == []


def test_unrelated_pipeline_name_not_reported():
    source = "from sklearn.pipeline import Pipeline, make_pipeline\np = make_pipeline(scaler, model)\n"
    assert _messages(source) == []


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("bert-base-uncased", False),
        ("google-bert/bert-base-uncased", False),
        ("org/model.v2", False),
        ("./model", True),
        ("../model", True),
        (".", True),
        ("/opt/models/bert", True),
        ("~/models/bert", True),
        ("C:\\models\\bert", True),
        ("D:/models/bert", True),
        ("models/bert/final", True),
        ("https://example.com/model.bin", True),
        ("org/../etc", True),
    ],
)
def test_is_local_path(text, local):
    assert is_local_path(text) is local


# -- ast candidate check -----------------------------------------------------------------


def _kept(source: str) -> bool:
    return UnpinnedHubDownload.candidate(AstFacts(ast.parse(source)))


@pytest.mark.parametrize(
    "source",
    [
        # A constant bound in a module-level block is still a module constant.
        "from transformers import AutoModel\nif True:\n    REPO = 'org/model'\nm = AutoModel.from_pretrained(REPO)\n",
        "from transformers import AutoModel\nREV: str = 'main'\n"
        "m = AutoModel.from_pretrained(pretrained_model_name_or_path='org/m', revision=REV)\n",
        "import huggingface_hub as hub\nhub.hf_hub_download('org/m', 'weights.bin', revision='abc1234')\n",
    ],
)
def test_candidate_keeps_reported_file(source):
    assert _kept(source)
    assert _messages(source)


@pytest.mark.parametrize(
    "source",
    [
        # "pipeline" and "load_dataset" as words, with no Hub call.
        "from sklearn.pipeline import Pipeline\n\npipe = Pipeline(steps)\n",
        "def load_dataset(path):\n    return open(path).read()\n\nrows = load_dataset('data.csv')\n",
        # Repository ids that are not literals or module constants are unknown.
        "from transformers import AutoModel\n\ndef build(name):\n    return AutoModel.from_pretrained(name)\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained(f'org/{size}')\n",
        f"from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision='{COMMIT}')\n",
        "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/m', revision=cfg.revision)\n",
    ],
)
def test_candidate_rules_out_clean_file(monkeypatch, source):
    assert not _kept(source)
    assert applicable_rules("example.py", source, [UnpinnedHubDownload]), "the text pre-filter already rules the file out"
    monkeypatch.setattr(runner, "_candidates", lambda rules, source: rules)
    assert _messages(source) == []
