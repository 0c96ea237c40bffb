"""Preprocessing rules: serving code that transforms its inputs differently from training."""

from __future__ import annotations

import ast
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pytest_aiml.engine.ast_facts import AstFacts
from pytest_aiml.engine.constants import LiteralConstant, name_parts, same_value
from pytest_aiml.engine.context import ModuleContext
from pytest_aiml.engine.discovery import FileKind, is_test_path
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory, is_training_script_name
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority, RepoRule
from pytest_aiml.rules.flow import dotted_text, route_path

# The serving path and function patterns of AIML203, shared so that AIML203, AIML803 and
# AIML804 agree on what serving code is.
from pytest_aiml.rules.flow import SERVING_FUNCTION, SERVING_PATH_PART

FIT_METHODS = frozenset({"fit", "fit_transform", "partial_fit"})
#: scikit-learn classes whose ``fit`` learns statistics from the data. Stateless ones
#: (``HashingVectorizer``, ``Normalizer``, ``FunctionTransformer``, ``Binarizer``) learn
#: nothing, so fitting them at serving time changes no output.
STATEFUL_TRANSFORMERS = frozenset(
    {
        "StandardScaler", "MinMaxScaler", "RobustScaler", "MaxAbsScaler", "QuantileTransformer",
        "PowerTransformer", "KBinsDiscretizer", "SplineTransformer", "PolynomialFeatures", "OneHotEncoder",
        "OrdinalEncoder", "LabelEncoder", "LabelBinarizer", "MultiLabelBinarizer", "TargetEncoder",
        "SimpleImputer", "KNNImputer", "IterativeImputer", "TfidfVectorizer", "CountVectorizer",
        "TfidfTransformer", "DictVectorizer", "PCA", "TruncatedSVD", "IncrementalPCA", "Pipeline",
        "make_pipeline", "ColumnTransformer", "make_column_transformer", "FeatureUnion", "make_union",
    }
)
_FACTORY_CLASSES = {"make_pipeline": "Pipeline", "make_column_transformer": "ColumnTransformer", "make_union": "FeatureUnion"}
#: Calls whose result may be an already fitted transformer: its name decides.
_UNKNOWN_RESULT = frozenset(
    {
        "joblib.load", "pickle.load", "pickle.loads", "cloudpickle.load", "dill.load", "skops.io.load",
        "sklearn.base.clone", "copy.deepcopy", "copy.copy",
    }
)
#: Name parts that mark a variable as a preprocessing object: ``scaler``, ``self.label_encoder``.
TRANSFORMER_NAME_PARTS = frozenset(
    {
        "scaler", "scalers", "encoder", "encoders", "vectorizer", "vectoriser", "vectorizers", "imputer",
        "imputers", "preprocessor", "pca", "tfidf", "ohe", "standardizer", "standardiser",
    }
)
#: Function name parts that mark training code, where fitting is the point.
TRAINING_NAME_PARTS = frozenset({"train", "training", "retrain", "fit", "refit", "calibrate"})


@dataclass(frozen=True, slots=True)
class _Function:
    """A function being visited: whether it is serving code, and how a message describes it."""

    name: str
    #: ``"in route handler predict()"`` and the like; None outside serving code.
    where: str | None
    names: dict[str, str | bool | None]


class FitInServing(FileRule):
    """Flag a scaler, encoder or vectoriser fitted in serving code."""

    code = "AIML803"
    slug = "fit-in-serving"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "Training-serving skew"
    message = "a scaler, encoder or vectoriser is fitted in serving code"
    impact = (
        "Fitting at serving time learns the statistics, vocabulary or categories from the request or a "
        "local file instead of reusing those of training. The model then receives inputs scaled or encoded "
        "differently from what it learned on: a single-row request is scaled to all zeros, and an encoder "
        "fitted on one request produces a different column layout."
    )
    fix = (
        "Fit the transformer once in the training pipeline, save it with the model (ideally as one "
        "sklearn Pipeline), load it at startup, and call only .transform() in serving code."
    )
    prefilter = ("fit(", "fit_transform(")
    applies_to_tests = False

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a fit method called on a known transformer: one the module builds from
        # scikit-learn or category_encoders, or a receiver named like one (``scaler``, ``self.encoder``).
        receivers = [
            node.func.value
            for node in facts.nodes(ast.Call)
            if isinstance(node.func, ast.Attribute) and node.func.attr in FIT_METHODS
        ]
        if not receivers:
            return False
        if any(_builds_transformer(name) for name in facts.calls):
            return True
        names = [receiver.id if isinstance(receiver, ast.Name) else receiver.attr
                 for receiver in receivers if isinstance(receiver, (ast.Name, ast.Attribute))]
        return any(TRANSFORMER_NAME_PARTS.intersection(name_parts(name)) for name in names)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        path = PurePosixPath(context.path)
        self._training_module = is_training_script_name(context.path)
        self._serving_module = any(SERVING_PATH_PART.search(part) for part in path.parts)
        self._functions: list[_Function] = []
        #: Per enclosing class, innermost last: ``self.scaler`` -> transformer class name,
        #: False for a known other object, None when unknown.
        self._attributes: list[dict[str, str | bool | None]] = []
        #: Module-level names, with values as for ``self`` attributes.
        self._module_names: dict[str, str | bool | None] = {}

    def visit_Module(self, node: cst.Module) -> None:
        # Module-level bindings are known before the functions that use them are visited.
        for statement in node.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Assign, cst.AnnAssign)):
                        self._bind(small, self._module_names)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._attributes.append({})

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._attributes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        name = node.name.value
        outer = self._functions[-1] if self._functions else None
        if TRAINING_NAME_PARTS.intersection(name_parts(name)):
            where = None
        elif route_path(node, self.context) is not None:
            where = f"in route handler {name}()"
        elif SERVING_FUNCTION.match(name):
            where = f"in serving function {name}()"
        elif outer is not None:
            where = outer.where
        elif self._serving_module:
            where = f"in {name}() of a serving module"
        else:
            where = None
        self._functions.append(_Function(name, where, {}))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if self._functions:
            self._bind(original_node, self._functions[-1].names)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if self._functions:
            self._bind(original_node, self._functions[-1].names)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if self._training_module or not isinstance(func, cst.Attribute) or func.attr.value not in FIT_METHODS:
            return
        where = self._where()
        if where is None:
            return
        receiver = func.value
        transformer = self._receiver_kind(receiver)
        if transformer is None:
            return
        if isinstance(receiver, cst.Call):
            display = f"{dotted_text(receiver.func) or 'transformer'}(...)"
        else:
            display = dotted_text(receiver) or "transformer"
        self.report(
            node,
            f"{display}.{func.attr.value}() fits {transformer} {where}, so its statistics come from serving data, not training",
        )

    def _where(self) -> str | None:
        if self._functions:
            return self._functions[-1].where
        return "at import time of a serving module" if self._serving_module else None

    def _receiver_kind(self, receiver: cst.BaseExpression) -> str | None:
        """Describe a receiver known to be a stateful transformer, or return None."""
        if isinstance(receiver, cst.Call):
            found = self._value_kind(receiver)
            return f"a {found}" if isinstance(found, str) else None
        key = dotted_text(receiver)
        if key is None:
            return None
        bound = self._lookup(key)
        if isinstance(bound, str):
            return f"a {bound}"
        if bound is False:
            return None
        identifier = key.rsplit(".", 1)[-1]
        if TRANSFORMER_NAME_PARTS.intersection(name_parts(identifier)):
            return f"the preprocessing object {identifier!r}"
        return None

    def _lookup(self, key: str) -> str | bool | None:
        if key.startswith("self."):
            return self._attributes[-1].get(key) if self._attributes else None
        if "." in key:
            return None
        for function in reversed(self._functions):
            if key in function.names:
                return function.names[key]
        return self._module_names.get(key)

    def _bind(self, node: cst.Assign | cst.AnnAssign, names: dict[str, str | bool | None]) -> None:
        if node.value is None:
            return
        kind = self._value_kind(node.value)
        targets = [target.target for target in node.targets] if isinstance(node, cst.Assign) else [node.target]
        for target in targets:
            key = dotted_text(target)
            if key is None:
                continue
            table = self._attributes[-1] if key.startswith("self.") and self._attributes else names
            # An unknown value is stored too, so that it hides a binding of the same name further out.
            table[key] = kind

    def _value_kind(self, value: cst.BaseExpression) -> str | bool | None:
        """Return the transformer class a value is built from, False for another known object, None if unknown."""
        while (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in (*FIT_METHODS, "set_params", "set_output")
        ):
            value = value.func.value
        if not isinstance(value, cst.Call):
            return None
        name = self.context.qualified_name(value.func)
        if name is None:
            if isinstance(value.func, cst.Name) and value.func.value in self.context.classes:
                return False
            return None
        if name.startswith("builtins.") or name in _UNKNOWN_RESULT:
            return None
        if _builds_transformer(name):
            last = name.rsplit(".", 1)[-1]
            return _FACTORY_CLASSES.get(last, last)
        return False


def _builds_transformer(name: str) -> bool:
    """Tell whether a call of this resolved name builds a stateful scikit-learn or category_encoders transformer."""
    last = name.rsplit(".", 1)[-1]
    if name.startswith("sklearn."):
        return last in STATEFUL_TRANSFORMERS
    return name.startswith("category_encoders.") and last[:1].isupper()


_SKLEARN_API = "from fastapi import FastAPI\nfrom sklearn.preprocessing import StandardScaler\n\napp = FastAPI()\n"

FitInServing.VALID = (
    Example(
        _SKLEARN_API + "scaler = joblib.load('scaler.joblib')\n\n@app.post('/predict')\n"
        "def predict(x: list[float]):\n    return model.predict(scaler.transform([x]))\n"
    ),
    Example(
        "from sklearn.feature_extraction.text import HashingVectorizer\n\ndef predict(texts):\n"
        "    # stateless: fitting learns nothing from the request\n"
        "    return clf.predict(HashingVectorizer(n_features=2**18).fit_transform(texts))\n"
    ),
    Example(
        "from sklearn.preprocessing import StandardScaler\n\nscaler = StandardScaler()\n\n"
        "def build_features(frame):\n    return scaler.fit_transform(frame)\n",
        path="features/build.py",
    ),
    Example(
        "from sklearn.preprocessing import StandardScaler\n\nscaler = StandardScaler()\n"
        "scaler.fit(pd.read_csv('train.csv'))\n",
        # A training script stays a training script inside a serving folder.
        path="serving/train_scaler.py",
    ),
    Example(
        "from sklearn.preprocessing import StandardScaler\n\ndef train_preprocessor(frame):\n"
        "    return StandardScaler().fit(frame)\n",
        path="app/pipeline.py",
    ),
    Example(
        "from sklearn.linear_model import SGDClassifier\n\nmodel = SGDClassifier()\n\ndef predict(x, y):\n"
        "    # online learning of the model itself, not of a preprocessing step\n    model.partial_fit(x, y)\n"
        "    return model.predict(x)\n"
    ),
    Example(
        "from sklearn.preprocessing import StandardScaler\n\ndef predict(x):\n    scaler = StandardScaler()\n"
        "    return scaler.fit_transform(x)\n",
        path="tests/test_serving.py",
    ),
    Example(
        "from sentence_transformers import SentenceTransformer\n\nencoder = SentenceTransformer('all-MiniLM-L6-v2')\n\n"
        "def handle(texts):\n    # a known model, not a scikit-learn encoder\n    encoder.fit(train_objectives)\n",
    ),
)
FitInServing.INVALID = (
    Example(
        _SKLEARN_API + "scaler = StandardScaler()\n\n@app.post('/score')\ndef score(x: list[float]):\n"
        "    return model.predict(scaler.fit_transform([x]))\n",
        path="service.py",
        lines=(9,),
    ),
    Example(
        "import flask\nimport joblib\n\napp = flask.Flask(__name__)\nencoder = joblib.load('encoder.joblib')\n\n"
        "@app.route('/classify', methods=['POST'])\ndef classify():\n    rows = flask.request.json['rows']\n"
        "    encoder.fit(rows)\n    return {'y': model.predict(encoder.transform(rows)).tolist()}\n",
        lines=(10,),
    ),
    Example(
        "class ChurnModel:\n    def __init__(self, scaler, model):\n        self.scaler = scaler\n"
        "        self.model = model\n\n    def predict(self, frame):\n"
        "        return self.model.predict(self.scaler.fit_transform(frame))\n",
        lines=(7,),
    ),
    Example(
        "from sklearn.feature_extraction.text import TfidfVectorizer\n\ndef infer(texts):\n"
        "    features = TfidfVectorizer().fit_transform(texts)\n    return clf.predict(features)\n",
        lines=(4,),
    ),
    Example(
        "from sklearn.impute import SimpleImputer\n\nfill = SimpleImputer(strategy='median')\n"
        "fill.fit(pd.read_csv('reference.csv'))\n",
        path="serving/app.py",
        lines=(4,),
    ),
    Example(
        "import category_encoders as ce\n\nenc = ce.TargetEncoder(cols=['city'])\n\ndef handle(request):\n"
        "    frame = to_frame(request)\n    enc.fit(frame, frame['y'])\n    return model.predict(enc.transform(frame))\n",
        lines=(7,),
    ),
    Example(
        "from sklearn.pipeline import make_pipeline\nfrom sklearn.decomposition import PCA\n"
        "from sklearn.preprocessing import MinMaxScaler\n\nclass Handler:\n    def __init__(self):\n"
        "        self.steps = make_pipeline(MinMaxScaler(), PCA(8))\n\n    def preprocess(self, batch):\n"
        "        return self.steps.fit_transform(batch)\n",
        path="inference/handler.py",
        lines=(10,),
    ),
)


class PreprocessingConstantsDiffer(RepoRule):
    """Flag preprocessing constants written with different literal values in training and serving modules."""

    code = "AIML804"
    slug = "preprocessing-constants-differ"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "Inconsistent preprocessing"
    message = "a preprocessing constant has different values in training and serving modules"
    impact = (
        "A normalisation statistic, value range, vocabulary or label mapping copied by hand into the "
        "serving code drifts from the one training used. The model then receives differently scaled or "
        "encoded inputs, or its outputs are mapped to the wrong labels, and no error is raised."
    )
    fix = (
        "Define each preprocessing constant once, in a module that both training and serving import, "
        "or save it with the model artifact (a fitted transformer, a vocabulary file) and load it at serving time."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        serving = serving_modules(inventory)
        training = sorted(
            path for path in {*inventory.training_files, *inventory.training_scripts} if path not in serving
        )
        if not serving or not training:
            return
        training_constants = {path: inventory.literal_constants(path) for path in training}
        for path in serving:
            for name, constant in sorted(inventory.literal_constants(path).items()):
                defined = [(other, constants[name]) for other, constants in training_constants.items() if name in constants]
                # NOTE: modules are paired by constant name only, so in a repository holding
                # several projects a serving module may be compared with another project's training.
                if not defined or any(same_value(found.value, constant.value) for _, found in defined):
                    continue
                other, found = max(defined, key=lambda item: (_shared_parts(item[0], path), item[0]))
                yield Finding(
                    code=self.code,
                    path=path,
                    line=constant.line,
                    column=constant.column,
                    statement_line=constant.line,
                    message=_difference_message(name, other, found, path, constant),
                )


def serving_modules(inventory: Inventory) -> list[str]:
    """Return the serving modules: ``Inventory.serving_files`` and Python files on a serving path, training scripts excepted."""
    found = set(inventory.serving_files)
    found.update(
        path for path in inventory.repo.of_kind(FileKind.PYTHON)
        if not is_test_path(path) and any(SERVING_PATH_PART.search(part) for part in PurePosixPath(path).parts)
    )
    return sorted(path for path in found if not is_training_script_name(path))


def _shared_parts(left: str, right: str) -> int:
    count = 0
    for a, b in zip(PurePosixPath(left).parts[:-1], PurePosixPath(right).parts[:-1]):
        if a != b:
            break
        count += 1
    return count


_SHORT = reprlib.Repr()
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = 6
_SHORT.maxdict = 4
_SHORT.maxstring = 40
_SHORT.maxother = 40


def _difference_message(name: str, training: str, trained: LiteralConstant, serving: str, served: LiteralConstant) -> str:
    # A notebook's line counts its code cells joined together, which no editor shows.
    where = training if training.endswith(".ipynb") else f"{training}:{trained.line}"
    message = (
        f"{name} differs between training module {where} ({_SHORT.repr(trained.value)}) "
        f"and serving module {serving} ({_SHORT.repr(served.value)})"
    )
    detail = _first_difference(trained.value, served.value)
    return f"{message}: {detail}" if detail else message


def _first_difference(training: Any, serving: Any) -> str:
    """Point at the first differing element of two sequences or mappings, which shortened values may hide."""
    if isinstance(training, (list, tuple)) and isinstance(serving, (list, tuple)):
        if len(training) != len(serving):
            return f"{len(training)} elements in training, {len(serving)} in serving"
        for index, (left, right) in enumerate(zip(training, serving)):
            if not same_value(left, right):
                return f"element {index} is {_SHORT.repr(left)} in training, {_SHORT.repr(right)} in serving"
        return ""
    if isinstance(training, dict) and isinstance(serving, dict):
        missing = [key for key in training if key not in serving]
        if missing:
            return f"key {_SHORT.repr(missing[0])}{_more(missing)} is missing in serving"
        extra = [key for key in serving if key not in training]
        if extra:
            return f"key {_SHORT.repr(extra[0])}{_more(extra)} is missing in training"
        for key, value in training.items():
            if not same_value(value, serving[key]):
                return f"key {_SHORT.repr(key)} is {_SHORT.repr(value)} in training, {_SHORT.repr(serving[key])} in serving"
    return ""


def _more(keys: list[Any]) -> str:
    return f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""


_TRAIN_SCALER = "from sklearn.linear_model import LogisticRegression\n\n{constants}\n\nmodel = LogisticRegression().fit(X, y)\n"
_SERVE = "from fastapi import FastAPI\n\napp = FastAPI()\n{constants}\n"

PreprocessingConstantsDiffer.VALID = (
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="FEATURE_MEANS = [0.5, 12.0]\nFEATURE_STDS = (1.0, 3.5)"),
            "serving/app.py": _SERVE.format(constants="FEATURE_MEANS = (0.5, 12.0)\nFEATURE_STDS = [1.0, 3.5]"),
        }
    ),
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="from features import FEATURE_MEANS"),
            "features.py": "FEATURE_MEANS = [0.5, 12.0]\n",
            "serving/app.py": _SERVE.format(constants="FEATURE_MEANS = [0.4, 11.0]"),
        }
    ),
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="STD = 0.229"),
            # Not a literal: the value is known only when the module runs.
            "serving/app.py": _SERVE.format(constants="import numpy as np\nSTD = float(np.load('std.npy'))"),
        }
    ),
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="MAX_BATCH_SIZE = 256\nMAX_RETRIES = 0"),
            "serving/app.py": _SERVE.format(constants="MAX_BATCH_SIZE = 8\nMAX_RETRIES = 3"),
        }
    ),
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="VOCAB = {'a': 0, 'b': 1}"),
            "serving/app.py": _SERVE.format(constants="VOCAB = {'a': 0}\nVOCAB.update(load_extra_tokens())"),
        }
    ),
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="MEAN = 0.5"),
            "tests/test_app.py": "MEAN = 0.0\n",
            "serving/app.py": _SERVE.format(constants="def normalize(x):\n    MEAN = 0.1\n    return x - MEAN"),
        }
    ),
)
PreprocessingConstantsDiffer.INVALID = (
    Example(
        files={
            "train.py": _TRAIN_SCALER.format(constants="FEATURE_MEANS = [0.5, 12.0]"),
            "serving/app.py": _SERVE.format(constants="FEATURE_MEANS = [0.5, 12.5]"),
        },
        lines=(4,),
    ),
    Example(
        files={
            "vision/train.py": "import numpy as np\nIMAGENET_STD = np.array([0.229, 0.224, 0.225])\n"
            "model.fit(x)\n",
            "vision/serve.py": "import torch\nIMAGENET_STD = torch.tensor([0.229, 0.224, 0.226])\n"
            "model = torch.load('m.pt', weights_only=True)\n",
        },
        lines=(2,),
    ),
    Example(
        files={
            "training/train_text.py": "VOCAB = {'<pad>': 0, '<unk>': 1, 'good': 2, 'bad': 3}\n",
            "api/predict.py": "VOCAB = {'<pad>': 0, '<unk>': 1, 'good': 2}\n",
        },
        lines=(1,),
    ),
    Example(
        files={
            "pipeline/trainer.py": "LABELS = ['negative', 'neutral', 'positive']\nAGE_MAX = 90\n",
            "inference/labels.py": "# Order must match the training labels.\nLABELS = ['negative', 'positive', 'neutral']\n"
            "AGE_MAX = 90\n",
        },
        lines=(2,),
    ),
    Example(
        files={
            "notebooks/train.ipynb": '{"cells": [{"cell_type": "code", "source": ["SCALE = 255.0\\n", "model.fit(x)\\n"], '
            '"metadata": {}, "outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, '
            '"nbformat_minor": 5}',
            "server.py": "SCALE = 256.0\n",
        },
        lines=(1,),
    ),
)

RULES = (FitInServing, PreprocessingConstantsDiffer)
