"""The preprocessing rules: fitting in serving code, and constants that differ between training and serving."""

from __future__ import annotations

import ast

import pytest

from pytest_aiml.engine import runner
from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.constants import is_preprocessing_name, preprocessing_constants, same_value
from pytest_aiml.engine.discovery import discover
from pytest_aiml.engine.examples import run_example
from pytest_aiml.engine.inventory import build_inventory
from pytest_aiml.engine.rule import Example
from pytest_aiml.engine.runner import applicable_rules
from pytest_aiml.rules.preprocessing import FitInServing, PreprocessingConstantsDiffer

TRAIN = "from sklearn.linear_model import LogisticRegression\n{body}\nmodel = LogisticRegression().fit(X, y)\n"


def _fit_findings(source: str, path: str = "example.py"):
    return run_example(FitInServing, Example(source, path=path))


def _write(tmp_path, files: dict[str, str]):
    for relative, content in files.items():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return build_inventory(discover(tmp_path))


def _constant_findings(tmp_path, files: dict[str, str]):
    return list(PreprocessingConstantsDiffer().check(_write(tmp_path, files)))


# -- constant extraction ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FEATURE_MEANS", True),
        ("STD", True),
        ("IMAGENET_STD", True),
        ("VOCAB", True),
        ("label2id", True),
        ("featureMeans", True),
        ("AGE_MAX", True),
        ("PIXEL_SCALE", True),
        ("MAX_BATCH_SIZE", False),
        ("MAX_RETRIES", False),
        ("MIN_WORKERS", False),
        ("MODEL_PATH", False),
        ("THRESHOLD", False),
    ],
)
def test_preprocessing_name_table(name, expected):
    assert is_preprocessing_name(name) is expected


def test_constants_read_literals():
    text = (
        "import numpy as np\nimport torch as T\n"
        "FEATURE_MEANS = [0.5, 12.0]\nSTD: float = 0.229\nVOCAB = {'a': 0}\n"
        "MEAN_X, STD_X = 1.0, 2.0\nIMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)\n"
        "PIXEL_SCALE = T.tensor(255.0)\nMODEL_PATH = 'm.pt'\n"
    )
    constants = preprocessing_constants(text)
    assert constants["FEATURE_MEANS"].value == [0.5, 12.0]
    assert constants["STD"].value == 0.229
    assert constants["VOCAB"].value == {"a": 0}
    assert constants["MEAN_X"].value == 1.0
    assert constants["STD_X"].value == 2.0
    assert constants["IMAGENET_MEAN"].value == [0.485, 0.456, 0.406]
    assert constants["PIXEL_SCALE"].value == 255.0
    assert "MODEL_PATH" not in constants


def test_constant_position_is_one_based():
    constant = preprocessing_constants("import os\n\nMEAN = 0.5\n")["MEAN"]
    assert constant.line == 3
    assert constant.column == 1


@pytest.mark.parametrize(
    "text",
    [
        "MEAN = compute_mean()\n",
        "MEAN = 0.5\nMEAN = 0.6\n",
        "MEAN = 0.5\nMEAN += 0.1\n",
        "VOCAB = {'a': 0}\nVOCAB['b'] = 1\n",
        "LABELS = ['a']\nLABELS.append('b')\n",
        "MEAN = 0.5\ndel MEAN\n",
        "MEAN = [x for x in range(3)]\n",
        "MEAN = np.array([0.5])\n",
        "import numpy as np\nMEAN = np.array([0.5], np.float32)\n",
        "def scale(x):\n    MEAN = 0.5\n    return x - MEAN\n",
    ],
    ids=[
        "call", "rebound", "augmented", "subscript-assigned", "appended", "deleted", "comprehension",
        "numpy-not-imported", "array-second-positional", "inside-function",
    ],
)
def test_unknown_values_left_out(text):
    assert "MEAN" not in preprocessing_constants(text)
    assert "VOCAB" not in preprocessing_constants(text)
    assert "LABELS" not in preprocessing_constants(text)


def test_unparsable_source_has_no_constants():
    assert preprocessing_constants("MEAN = [0.5,\n") == {}


def test_list_and_tuple_compare_equal():
    assert same_value([0.5, [1, 2]], (0.5, (1, 2)))
    assert not same_value([0.5, 12.0], [0.5, 12.5])
    assert same_value({"a": (1, 2)}, {"a": [1, 2]})


def test_inventory_reads_constants_once(tmp_path):
    inventory = _write(tmp_path, {"serve.py": "MEAN = 0.5\n"})
    first = inventory.literal_constants("serve.py")
    assert first["MEAN"].value == 0.5
    assert inventory.literal_constants("serve.py") is first


# -- AIML804 preprocessing-constants-differ ----------------------------------------------


def test_constants_finding_names_both_sides(tmp_path):
    findings = _constant_findings(
        tmp_path,
        {
            "training/train.py": TRAIN.format(body="FEATURE_MEANS = [0.5, 12.0]"),
            "serving/app.py": "import fastapi\n\nFEATURE_MEANS = [0.5, 12.5]\n",
        },
    )
    assert len(findings) == 1
    finding = findings[0]
    assert finding.code == "AIML804"
    assert finding.path == "serving/app.py"
    assert (finding.line, finding.column) == (3, 1)
    assert finding.statement_line == 3
    assert "FEATURE_MEANS" in finding.message
    assert "training/train.py:2 ([0.5, 12.0])" in finding.message
    assert "serving/app.py ([0.5, 12.5])" in finding.message
    assert "element 1 is 12.0 in training, 12.5 in serving" in finding.message


def test_long_values_shortened(tmp_path):
    trained = list(range(100))
    served = [*range(99), 1000]
    findings = _constant_findings(
        tmp_path,
        {"train.py": TRAIN.format(body=f"VOCAB_IDS = {trained}"), "serve.py": f"VOCAB_IDS = {served}\n"},
    )
    assert len(findings) == 1
    message = findings[0].message
    assert "..." in message
    assert "1000" in message
    assert "element 99 is 99 in training, 1000 in serving" in message


def test_dictionary_difference_named(tmp_path):
    findings = _constant_findings(
        tmp_path,
        {
            "train.py": TRAIN.format(body="LABEL_MAPPING = {'cat': 0, 'dog': 1}"),
            "serve.py": "LABEL_MAPPING = {'cat': 1, 'dog': 0}\n",
        },
    )
    assert len(findings) == 1
    assert "key 'cat' is 0 in training, 1 in serving" in findings[0].message


def test_one_finding_per_differing_name(tmp_path):
    findings = _constant_findings(
        tmp_path,
        {
            "train.py": TRAIN.format(body="MEAN = 0.5\nSTD = 0.2\nSCALE = 1.0"),
            "serve.py": "MEAN = 0.4\nSTD = 0.3\nSCALE = 1.0\n",
        },
    )
    assert [(finding.line, finding.message.split()[0]) for finding in findings] == [(1, "MEAN"), (2, "STD")]


def test_agreeing_training_module_clears_name(tmp_path):
    files = {
        "jobs/train_a.py": TRAIN.format(body="MEAN = 0.5"),
        "jobs/train_b.py": TRAIN.format(body="MEAN = 0.4"),
        "serve.py": "MEAN = 0.5\n",
    }
    assert _constant_findings(tmp_path, files) == []


def test_closest_training_module_named(tmp_path):
    files = {
        "other/train.py": TRAIN.format(body="MEAN = 0.1"),
        "churn/train.py": TRAIN.format(body="MEAN = 0.2"),
        "churn/serve.py": "MEAN = 0.5\n",
    }
    findings = _constant_findings(tmp_path, files)
    assert len(findings) == 1
    assert "churn/train.py:2 (0.2)" in findings[0].message


def test_training_script_in_serving_folder_is_training(tmp_path):
    files = {"serving/train_scaler.py": "SCALE = 255.0\n", "serving/app.py": "SCALE = 256.0\n"}
    findings = _constant_findings(tmp_path, files)
    assert [finding.path for finding in findings] == ["serving/app.py"]


@pytest.mark.parametrize(
    "files",
    [
        {"train.py": TRAIN.format(body="MEAN = 0.5"), "serve.py": "from train import MEAN\n"},
        {"train.py": TRAIN.format(body=""), "serve.py": "MEAN = 0.5\n"},
        {"train.py": TRAIN.format(body="MEAN = 0.5"), "utils/stats.py": "MEAN = 0.4\n"},
        {"train.py": TRAIN.format(body="MEAN = 0.5"), "tests/test_serve.py": "MEAN = 0.4\n"},
        {"train.py": TRAIN.format(body="MEAN = 0.5"), "serve.py": "MEAN = load_mean()\n"},
        {"serve.py": "MEAN = 0.5\n", "api/predict.py": "MEAN = 0.4\n"},
    ],
    ids=["imported", "training-side-missing", "not-serving", "test-module", "not-literal", "no-training-module"],
)
def test_constants_not_reported(tmp_path, files):
    assert _constant_findings(tmp_path, files) == []


# -- AIML803 fit-in-serving --------------------------------------------------------------


def test_fit_message_names_class_and_place():
    source = (
        "from fastapi import FastAPI\nfrom sklearn import preprocessing\n\napp = FastAPI()\n\n"
        "@app.post('/score')\ndef score(x: list[float]):\n    scaler = preprocessing.RobustScaler()\n"
        "    return model.predict(scaler.fit_transform([x]))\n"
    )
    findings = _fit_findings(source)
    assert len(findings) == 1
    assert findings[0].line == 9
    assert findings[0].message.startswith("scaler.fit_transform() fits a RobustScaler in route handler score()")


def test_attribute_bound_in_init_resolved():
    source = (
        "from sklearn.preprocessing import OneHotEncoder\n\nclass Model:\n    def __init__(self):\n"
        "        self.cats = OneHotEncoder()\n\n    def predict(self, frame):\n"
        "        self.cats.partial_fit(frame)\n        return self.cats.transform(frame)\n"
    )
    findings = _fit_findings(source)
    assert [finding.line for finding in findings] == [8]
    assert "fits a OneHotEncoder in serving function predict()" in findings[0].message


def test_nested_function_inherits_serving():
    source = (
        "from sklearn.preprocessing import LabelEncoder\n\ndef predict(rows):\n    def encode(column):\n"
        "        return LabelEncoder().fit_transform(column)\n    return model.predict(encode(rows))\n"
    )
    findings = _fit_findings(source)
    assert [finding.line for finding in findings] == [5]
    assert "in serving function predict()" in findings[0].message


def test_local_binding_shadows_module_binding():
    source = (
        "from sklearn.preprocessing import StandardScaler\n\nstats = StandardScaler()\n\ndef predict(x):\n"
        "    stats = compute_stats(x)\n    stats.fit(x)\n"
    )
    assert _fit_findings(source) == []


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler()\nscaler.fit(X)\n", "features.py"),
        ("def predict(x):\n    return model.fit(x)\n", "example.py"),
        ("def predict(x):\n    sc = StandardScaler()\n    return sc.fit_transform(x)\n", "example.py"),
        ("from sklearn.preprocessing import Normalizer\n\ndef predict(x):\n    return Normalizer().fit_transform(x)\n",
         "example.py"),
        ("def predict(x):\n    return scaler.transform(x)\n", "example.py"),
        ("def predict(x):\n    scaler.fit(x)\n", "train.py"),
        ("def fit_scaler(frame):\n    scaler.fit(frame)\n", "serving/model.py"),
        ("class Scaler:\n    def fit(self, x):\n        self.fit_stats(x)\n\n    def predict(self, x):\n"
         "        return super().fit(x)\n", "serving/model.py"),
    ],
    ids=[
        "not-serving", "model-fit", "unimported-short-name", "stateless-normalizer", "transform-only",
        "training-module", "training-function", "own-fit-method",
    ],
)
def test_fit_not_reported(source, path):
    assert _fit_findings(source, path) == []


# -- ast candidate check -----------------------------------------------------------------


def _kept(source: str) -> bool:
    return FitInServing.candidate(AstFacts(ast.parse(source)))


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("import category_encoders as ce\n\nencoder = ce.TargetEncoder()\nencoder.fit(frame, frame['y'])\n", "serving/app.py"),
        # Named like a transformer, built nowhere in sight.
        ("class Service:\n    def predict(self, texts):\n        return self.text_vectorizer.fit_transform(texts)\n", "app.py"),
        ("import sklearn.preprocessing as pp\n\ndef predict(x):\n    return pp.StandardScaler().fit(x).transform(x)\n", "app.py"),
    ],
)
def test_candidate_keeps_reported_file(source, path):
    assert _kept(source)
    assert _fit_findings(source, path)


@pytest.mark.parametrize(
    "source",
    [
        # ``fit(`` of models and trainers, with no transformer in the module.
        "def predict(x, y):\n    model.fit(x, y)\n    return model.predict(x)\n",
        "import lightning as L\n\ndef serve():\n    L.Trainer().fit(model)\n",
    ],
)
def test_candidate_rules_out_clean_file(monkeypatch, source):
    assert not _kept(source)
    assert applicable_rules("serving/app.py", source, [FitInServing]), "the text pre-filter already rules the file out"
    monkeypatch.setattr(runner, "_candidates", lambda rules, source: rules)
    assert _fit_findings(source, "serving/app.py") == []
