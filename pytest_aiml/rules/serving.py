"""Serving rules: how production code loads models, takes requests and runs inference."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pytest_aiml.engine.ast_facts import AstFacts, argument, own_nodes
from pytest_aiml.engine.context import ModuleContext, call_argument, is_false, is_true
from pytest_aiml.engine.discovery import MODEL_SUFFIXES
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import Visitor, walk
from pytest_aiml.rules.flow import (
    SERVING_FUNCTION,
    SERVING_PATH_PART,
    UNVALIDATED_TYPES,
    VALIDATING_NAME,
    Origin,
    ValueFlow,
    all_parameters,
    block_statements,
    callee_name,
    dotted_text,
    flask_request_data,
    is_dependency,
    is_request_object,
    request_body_read,
    route_path,
)

# -- AIML201 hardcoded-model-path ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathArgument:
    """The model-path argument of a loader, and which paths count as hardcoded for it."""

    position: int | None
    keyword: str | None
    #: Only absolute and home paths: relative names are hub ids or registry names for this loader.
    local_only: bool = False
    #: The loader takes an open file, so the path comes through ``open(...)``.
    file_object: bool = False
    #: The loader reads any serialised object, data as often as models, so a relative
    #: file named for data (``traindata.pt``) is not a model.
    any_object: bool = False


_FILE_ARGUMENT = PathArgument(0, "f")
MODEL_LOADERS: dict[str, PathArgument] = {
    "torch.load": PathArgument(0, "f", any_object=True),
    "torch.serialization.load": PathArgument(0, "f", any_object=True),
    "torch.jit.load": _FILE_ARGUMENT,
    "torch.export.load": _FILE_ARGUMENT,
    "joblib.load": PathArgument(0, "filename", any_object=True),
    "pandas.read_pickle": PathArgument(0, "filepath_or_buffer", any_object=True),
    "onnxruntime.InferenceSession": PathArgument(0, "path_or_bytes"),
    "onnx.load": _FILE_ARGUMENT,
    "onnx.load_model": _FILE_ARGUMENT,
    "tensorflow.saved_model.load": PathArgument(0, "export_dir"),
    "tensorflow.lite.Interpreter": PathArgument(None, "model_path"),
    "tflite_runtime.interpreter.Interpreter": PathArgument(None, "model_path"),
    "xgboost.Booster": PathArgument(None, "model_file"),
    "lightgbm.Booster": PathArgument(None, "model_file"),
    "fasttext.load_model": PathArgument(0, "path"),
    "llama_cpp.Llama": PathArgument(None, "model_path"),
    "sentence_transformers.SentenceTransformer": PathArgument(0, "model_name_or_path", local_only=True),
    "transformers.pipeline": PathArgument(None, "model", local_only=True),
    "ultralytics.YOLO": PathArgument(0, "model", local_only=True),
    "spacy.load": PathArgument(0, "name", local_only=True),
}
for _name in (
    "keras.models.load_model", "keras.saving.load_model", "tensorflow.keras.models.load_model",
    "tensorflow.keras.saving.load_model", "tf_keras.models.load_model", "tensorflow.python.keras.models.load_model",
):
    MODEL_LOADERS[_name] = PathArgument(0, "filepath")
for _name in ("torch", "numpy", "flax", "tensorflow", "paddle", "mlx"):
    MODEL_LOADERS[f"safetensors.{_name}.load_file"] = PathArgument(0, "filename", any_object=True)
MODEL_LOADERS["safetensors.safe_open"] = PathArgument(0, "filename", any_object=True)
for _name in ("pickle.load", "_pickle.load", "cPickle.load", "dill.load", "cloudpickle.load"):
    MODEL_LOADERS[_name] = PathArgument(0, "file", file_object=True, any_object=True)
del _name

#: Words of a file name that mark a data file: ``features.pkl``, ``X_train.joblib``, ``test.pt``.
_DATA_WORDS = frozenset(
    {
        "data", "dataset", "datasets", "feature", "features", "label", "labels", "sample", "samples", "train",
        "training", "test", "testing", "val", "valid", "validation", "trainset", "testset", "valset", "validset",
    }
)
#: Words that mark a model or a fitted object even next to a data word: ``label_encoder.pkl``,
#: ``best_val.pt``, ``trained_model.pt``. ``embeddings`` is in neither list, because an
#: embedding table is often part of a model.
_MODEL_WORDS = frozenset(
    {
        "model", "models", "weights", "checkpoint", "ckpt", "net", "network", "encoder", "decoder", "tokenizer",
        "vectorizer", "scaler", "classifier", "clf", "regressor", "estimator", "pipeline", "extractor", "embedder",
        "labeler", "labeller", "state", "params", "best", "last", "final", "epoch", "step", "loss", "acc",
        "trained", "pretrained", "finetuned",
    }
)

_FROM_PRETRAINED = PathArgument(0, "pretrained_model_name_or_path", local_only=True)
_MLFLOW_LOAD = PathArgument(0, "model_uri", local_only=True)
_BOOSTER_LOAD = PathArgument(0, "fname")
#: Loader methods recognised by name alone, whatever object they are called on.
_LOADER_METHODS = frozenset({"from_pretrained", "load_model"})
PATH_BUILDERS = frozenset(
    {
        "pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath", "pathlib.WindowsPath",
        "pathlib.PureWindowsPath", "os.path.join", "posixpath.join", "ntpath.join",
    }
)
PATH_WRAPPERS = frozenset(
    {
        "os.path.expanduser", "os.path.abspath", "os.path.realpath", "os.path.normpath", "os.fspath",
        "builtins.str", "builtins.open", "io.open",
    }
)
_PATH_METHODS = frozenset({"expanduser", "resolve", "absolute"})
_WINDOWS_ROOT = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")
#: An absolute, home or drive prefix followed by at least one named folder or file.
_NAMED_LOCAL_PREFIX = re.compile(r"^(/|~[/\\]|[A-Za-z]:[\\/]|\\\\)[^/\\]+")


_PATH_LITERAL_TEXT = re.compile(
    r"""['"](?:/|~|[A-Za-z]:[\\/]|\\\\)|\.(?:"""
    + "|".join(sorted(re.escape(suffix.lstrip(".")) for suffix in MODEL_SUFFIXES))
    + r""")['"]""",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PathValue:
    """A path known from the source: all of it, or only its leading part."""

    text: str
    complete: bool = True
    opened: bool = False


def hardcoded_kind(value: PathValue, loader: PathArgument) -> bool:
    """Tell whether a known path is hardcoded in a way that breaks on another machine."""
    text = value.text
    if "://" in text or text.startswith(("models:/", "runs:/")):
        return False
    if not value.complete:
        return bool(_NAMED_LOCAL_PREFIX.match(text))
    if text.startswith(("/", "~")) or _WINDOWS_ROOT.match(text):
        return bool(_NAMED_LOCAL_PREFIX.match(text)) or text.startswith("~")
    if loader.local_only:
        return False
    name = PurePosixPath(text.replace("\\", "/"))
    if loader.any_object and names_data_file(name.stem):
        return False
    return name.suffix.lower() in MODEL_SUFFIXES


def names_data_file(stem: str) -> bool:
    """Tell whether a file name without its suffix marks the file as data, not a model.

    Words are the runs of letters, so ``X_train2`` has ``x`` and ``train``, and a word
    ending in ``data`` counts as ``data`` (``traindata``, ``rawdata``).
    """
    words = re.findall(r"[a-z]+", stem.lower())
    if any(word in _MODEL_WORDS or word.endswith(("model", "ckpt")) for word in words):
        return False
    return any(word in _DATA_WORDS or word.endswith(("data", "dataset", "datasets")) for word in words)


class HardcodedModelPath(FileRule):
    """Flag model-loading calls whose path is written into the code."""

    code = "AIML201"
    slug = "hardcoded-model-path"
    category = Category.MLOPS
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = "Hardcoded model paths"
    message = "a model is loaded from a path hardcoded in the source"
    impact = (
        "A path written into the code ties the service to one machine's file layout: deployment to "
        "another host, container or model version fails, or silently loads a stale model."
    )
    fix = (
        "Read the model location from configuration: an environment variable, a settings object, a "
        "CLI argument or a model registry URI (for example mlflow 'models:/name/version'); keep "
        "relative defaults next to the package and resolve them from the configured root."
    )
    prefilter = (
        "load", "InferenceSession", "from_pretrained", "Booster", "Interpreter", "safe_open", "Llama",
        "SentenceTransformer", "pipeline", "YOLO", "read_pickle",
    )
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        # A hardcoded path is a string literal: absolute, home or drive-rooted, or named like a model file.
        return cls.matches_text(text) and _PATH_LITERAL_TEXT.search(text) is not None

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # "load" and a path-like string are in most modules; only a call to a model loader is reported.
        if not facts.calls.isdisjoint(MODEL_LOADERS) or not facts.callee_names.isdisjoint(_LOADER_METHODS):
            return True
        return any(name.startswith("mlflow.") and name.endswith(".load_model") for name in facts.calls)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: Per function: local name -> its known path, or None when the name holds something unknown.
        self._frames: list[dict[str, PathValue | None]] = [{}]
        #: Module-level names bound once to a non-literal expression, e.g. ``MODEL_DIR = Path("/opt")``.
        self._module_expressions: dict[str, cst.BaseExpression] = {}

    def visit_Module(self, node: cst.Module) -> None:
        seen: set[str] = set()
        for statement in node.body:
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target = small.targets[0].target
                    if isinstance(target, cst.Name):
                        if target.value in seen:
                            self._module_expressions.pop(target.value, None)
                        else:
                            self._module_expressions[target.value] = small.value
                        seen.add(target.value)

    # -- scopes: parameters and local assignments shadow module constants ------------

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._frames.append({param.name.value: None for param in all_parameters(node)})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._frames.append({param.name.value: None for param in node.params.params})

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._frames.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if len(self._frames) == 1:
            return
        value = self._path_value(original_node.value)
        for target in original_node.targets:
            self._bind(target.target, value)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if len(self._frames) > 1:
            value = None if original_node.value is None else self._path_value(original_node.value)
            self._bind(original_node.target, value)

    def visit_For(self, node: cst.For) -> None:
        if len(self._frames) > 1:
            self._bind(node.target, None)

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if item.asname is None:
                continue
            value = self._path_value(item.item) if isinstance(item.item, cst.Call) else None
            if value is not None and not value.opened:
                value = None
            self._bind(item.asname.name, value)

    def _bind(self, target: cst.BaseExpression, value: PathValue | None) -> None:
        if isinstance(target, cst.Name):
            self._frames[-1][target.value] = value
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value, None)

    # -- the check --------------------------------------------------------------------

    def visit_Call(self, node: cst.Call) -> None:
        found = self._loader(node)
        if found is None:
            return
        display, loader = found
        arg = call_argument(node, loader.position, loader.keyword)
        if arg is None or arg.star:
            return
        value = self._path_value(arg.value)
        if value is None or (loader.file_object and not value.opened):
            return
        if not hardcoded_kind(value, loader):
            return
        if value.complete:
            self.report(node, f"{display}() loads a hardcoded path '{value.text}'")
        else:
            self.report(node, f"{display}() loads a path that starts with the hardcoded '{value.text}'")

    def _loader(self, node: cst.Call) -> tuple[str, PathArgument] | None:
        name = self.context.qualified_name(node.func)
        if name is not None:
            if name in MODEL_LOADERS:
                return name, MODEL_LOADERS[name]
            if name.startswith("mlflow.") and name.endswith(".load_model"):
                return name, _MLFLOW_LOAD
        func = node.func
        if not isinstance(func, cst.Attribute):
            return None
        written = dotted_text(func) or func.attr.value
        if func.attr.value == "from_pretrained":
            return written, _FROM_PRETRAINED
        if func.attr.value == "load_model" and name is None and self.context.imports_any("xgboost", "catboost"):
            # The booster's own method: ``booster.load_model("model.json")``.
            return written, _BOOSTER_LOAD
        return None

    def _path_value(self, expr: cst.BaseExpression, depth: int = 0) -> PathValue | None:
        """Return the path an expression is known to hold, or None when it is not known."""
        if depth > 8:
            return None
        if isinstance(expr, cst.Name):
            return self._name_value(expr.value, depth)
        literal = self.context.string_value(expr)
        if literal is not None:
            return PathValue(literal)
        if isinstance(expr, cst.FormattedString):
            return self._formatted_value(expr, depth)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide):
            return self._joined([expr.left, expr.right], depth)
        if isinstance(expr, cst.Call):
            return self._call_value(expr, depth)
        return None

    def _name_value(self, name: str, depth: int) -> PathValue | None:
        # The module frame holds only ``with open(...) as f`` names: module-level
        # assignments are the context's constants and the module expressions.
        for frame in reversed(self._frames):
            if name in frame:
                return frame[name]
        if name in self.context.constants:
            return PathValue(self.context.constants[name])
        expression = self._module_expressions.get(name)
        return None if expression is None else self._path_value(expression, depth + 1)

    def _call_value(self, call: cst.Call, depth: int) -> PathValue | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in _PATH_METHODS and not call.args:
            return self._path_value(func.value, depth + 1)
        name = self.context.qualified_name(func)
        if name in PATH_BUILDERS:
            if any(arg.keyword is not None or arg.star for arg in call.args) or not call.args:
                return None
            return self._joined([arg.value for arg in call.args], depth)
        if name in PATH_WRAPPERS:
            first = call_argument(call, 0, None)
            if first is None:
                return None
            inner = self._path_value(first.value, depth + 1)
            if inner is None or name not in ("builtins.open", "io.open"):
                return inner
            return PathValue(inner.text, inner.complete, opened=True)
        return None

    def _formatted_value(self, expr: cst.FormattedString, depth: int) -> PathValue:
        """Return an f-string's text up to its first placeholder whose value is not known."""
        text: list[str] = []
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringText):
                text.append(part.value.replace("{{", "{").replace("}}", "}"))
                continue
            inner = None if part.format_spec or part.conversion else self._path_value(part.expression, depth + 1)
            if inner is None or not inner.complete:
                return PathValue("".join(text) + (inner.text if inner else ""), complete=False)
            text.append(inner.text)
        return PathValue("".join(text))

    def _joined(self, parts: list[cst.BaseExpression], depth: int) -> PathValue | None:
        head = self._path_value(parts[0], depth + 1)
        if head is None:
            return None
        text, complete = head.text, head.complete
        for part in parts[1:]:
            if not complete:
                break
            tail = self._path_value(part, depth + 1)
            if tail is None:
                return PathValue(text.rstrip("/\\") + "/", complete=False)
            if tail.text.startswith(("/", "~")) or _WINDOWS_ROOT.match(tail.text):
                # An absolute part replaces everything before it, as in os.path.join and pathlib.
                text, complete = tail.text, tail.complete
            else:
                text, complete = text.rstrip("/\\") + "/" + tail.text, tail.complete
        return PathValue(text, complete)


HardcodedModelPath.VALID = (
    Example("import os\nimport torch\nstate = torch.load(os.environ['MODEL_PATH'], weights_only=True)\n"),
    Example(
        "from transformers import AutoModel\n"
        "model = AutoModel.from_pretrained('bert-base-uncased')\n"
        "local = AutoModel.from_pretrained('checkpoints/bert')\n"
    ),
    Example("import torch\n\ndef load(path='/opt/models/m.pt'):\n    return torch.jit.load(path)\n"),
    Example("import joblib\nfrom settings import MODEL_PATH\nclf = joblib.load(MODEL_PATH)\n"),
    Example("import mlflow\nmodel = mlflow.pyfunc.load_model('models:/churn/3')\n"),
    Example("import numpy as np\n# numpy.load reads data, not a model loader\nweights = np.load('/data/emb.npy')\n"),
    Example("import torch\nstate = torch.load(f'{args.model_dir}/model.pt')\n"),
    Example(
        "import torch\n\ndef test_loads():\n    torch.load('/opt/models/fixture.pt')\n",
        path="tests/test_model.py",
    ),
    Example("import pickle\nwith open(config.model_path, 'rb') as f:\n    model = pickle.load(f)\n"),
    Example(
        "import torch\n# a relative file named for data holds a tensor, not a model\ndata = torch.load('traindata.pt')\n",
        path="time_series/train.py",
    ),
    Example("import pickle\nwith open('data/features.pkl', 'rb') as f:\n    X, y = pickle.load(f)\n"),
)
HardcodedModelPath.INVALID = (
    Example("import torch as T\nmodel = T.load('/opt/models/churn.pt')\n", lines=(2,)),
    Example(
        "from pathlib import Path\nimport joblib\nMODEL_DIR = Path('/srv/models')\n"
        "clf = joblib.load(MODEL_DIR / 'clf.joblib')\n",
        lines=(4,),
    ),
    Example("import os\nimport onnxruntime as ort\nsess = ort.InferenceSession(os.path.expanduser('~/models/m.onnx'))\n", lines=(3,)),
    Example(
        "import pickle\nMODEL = 'model.pkl'\nwith open(MODEL, 'rb') as f:\n    clf = pickle.load(f)\n"
        "other = pickle.load(open('/opt/encoder.pkl', 'rb'))\n",
        lines=(4, 5),
    ),
    Example("from tensorflow.keras.models import load_model\nmodel = load_model('C:\\\\models\\\\net.h5')\n", lines=(2,)),
    Example("from transformers import AutoModel\nmodel = AutoModel.from_pretrained('/home/ana/bert-finetuned')\n", lines=(2,)),
    Example("import xgboost as xgb\nbooster = xgb.Booster(model_file='/opt/xgb.json')\nbooster.load_model('xgb.ubj')\n", lines=(2, 3)),
    Example("from safetensors.torch import load_file\nstate = load_file(f'/mnt/weights/{name}.safetensors')\n", lines=(2,)),
    Example(
        "import joblib\nX = joblib.load('/srv/cache/X_train.joblib')\nencoder = joblib.load('label_encoder.joblib')\n",
        lines=(2, 3),
    ),
)


# -- AIML202 no-input-validation ----------------------------------------------------

#: Method names that run a model or a preprocessing step on their argument.
MODEL_METHODS = frozenset(
    {
        "predict", "predict_proba", "predict_log_proba", "decision_function", "forward", "generate", "transform",
        "encode", "embed", "embed_query", "embed_documents", "score_samples",
    }
)
#: Names of models and model-like objects that are called directly: ``model(x)``, ``self.net(x)``.
MODEL_NAME = re.compile(
    r"^(model|net|network|clf|classifier|regressor|estimator|encoder|decoder|backbone|pipe|pipeline)$"
    r"|_(model|net|clf|classifier|regressor|estimator|encoder|pipeline)$",
    re.IGNORECASE,
)
#: Names of functions that run inference or preprocessing.
INFERENCE_FUNCTION = re.compile(r"predict|infer|preprocess", re.IGNORECASE)
#: Names of helpers that turn request data into model input: ``prepare_features``, ``build_inputs``.
HELPER_FUNCTION = re.compile(r"prepare|preprocess|feature|transform|build|make|encode|extract", re.IGNORECASE)
_ABORT_NAMES = frozenset({"abort", "HTTPException", "BadRequest", "ValidationError"})
_PATH_PARAMETER = re.compile(r"\{(\w+)")


@dataclass(eq=False, slots=True)
class _Handler:
    """What one route handler has shown so far."""

    name: str
    request_names: set[str] = field(default_factory=set)
    validated: bool = False
    unvalidated_calls: list[tuple[cst.Call, str, Origin]] = field(default_factory=list)


class NoInputValidation(FileRule):
    """Flag route handlers that pass request data to a model without validating it."""

    code = "AIML202"
    slug = "no-input-validation"
    category = Category.SERVING
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = "No input validation"
    message = "a route handler passes request data to a model without validating it"
    impact = (
        "Malformed or hostile requests reach the model unchecked: wrong shapes, types, NaN or missing "
        "fields end as 500 errors, silent garbage predictions or a crashed worker."
    )
    fix = (
        "Declare the body as a pydantic model (FastAPI) or validate it before use with pydantic "
        "(Model(**data), Model.model_validate(data)), marshmallow or jsonschema; reject invalid input "
        "with a 4xx error before the model runs."
    )
    prefilter = ("fastapi", "flask")
    applies_to_tests = False

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._handlers: list[_Handler | None] = []
        self._flow = ValueFlow(context, self._source, carries=self._carries_request_data)
        #: Module functions by name -> whether the function validates its parameters.
        self._helpers_validate: dict[str, bool] = {}

    def _source(self, expr: cst.BaseExpression) -> str | None:
        handler = self._handler()
        if handler is None:
            return None
        return flask_request_data(expr, self.context) or request_body_read(expr, handler.request_names)

    def _handler(self) -> _Handler | None:
        return self._handlers[-1] if self._handlers else None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._flow.enter_scope()
        rule = route_path(node, self.context)
        if rule is None:
            # A function nested in a handler belongs to that handler. Other functions belong to none.
            self._handlers.append(self._handler() if self._handlers else None)
            return
        handler = _Handler(node.name.value)
        self._handlers.append(handler)
        if not self.context.imports_any("fastapi"):
            return
        path_parameters = set(_PATH_PARAMETER.findall(rule))
        for param in all_parameters(node):
            name = param.name.value
            if name in ("self", "cls") or name in path_parameters or is_dependency(param, self.context):
                continue
            if is_request_object(param, self.context):
                handler.request_names.add(name)
            elif self._is_unvalidated_type(param.annotation):
                if param.annotation is None:
                    described = f"the untyped parameter '{name}'"
                else:
                    annotation = self.context.module.code_for_node(param.annotation.annotation)
                    described = f"the parameter '{name}: {annotation}'"
                self._flow.bind(param.name, Origin(described))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._flow.leave_scope()
        # NOTE: one validation anywhere in the handler clears all of its calls, even a
        # call made before the check or on other data: precision is preferred here.
        handler = self._handlers.pop()
        if handler is None or handler.validated or any(outer is handler for outer in self._handlers):
            return
        for call, display, origin in handler.unvalidated_calls:
            message = f"{display}() receives {origin.description} unvalidated in the route handler {handler.name}()"
            self.report(call, message)

    def _is_unvalidated_type(self, annotation: cst.Annotation | None) -> bool:
        if annotation is None:
            return True
        expr = annotation.annotation
        if isinstance(expr, cst.Subscript):
            name = self.context.qualified_name(expr.value)
            if name == "typing.Annotated" and expr.slice:
                inner = expr.slice[0].slice
                return isinstance(inner, cst.Index) and self._is_unvalidated_type(cst.Annotation(inner.value))
            return name in UNVALIDATED_TYPES
        return self.context.qualified_name(expr) in UNVALIDATED_TYPES

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if self._handler() is not None:
            self._flow.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        if self._handler() is not None:
            self._flow.bind_assignment(original_node)

    def visit_For(self, node: cst.For) -> None:
        if self._handler() is not None:
            self._flow.bind(node.target, self._flow.origin(node.iter))

    def visit_If(self, node: cst.If) -> None:
        handler = self._handler()
        if handler is None or handler.validated:
            return
        if _rejects_data(node, self._flow):
            handler.validated = True

    def visit_Call(self, node: cst.Call) -> None:
        handler = self._handler()
        if handler is None or handler.validated:
            return
        name = callee_name(node)
        if name is None:
            return
        if _validates(node, name, self._flow):
            handler.validated = True
            return
        display = self._model_call(node, name)
        if display is None:
            return
        for arg in node.args:
            origin = self._flow.origin(arg.value)
            if origin is not None:
                handler.unvalidated_calls.append((node, display, origin))
                return

    def _carries_request_data(self, call: cst.Call) -> bool:
        """Tell whether a call returns the request data it is given, as a helper that prepares features does.

        This covers a function defined in this module that does not validate its
        parameters, and a function named for preparing input (:data:`HELPER_FUNCTION`),
        called by name or on an imported module. The flow goes one level deep: the
        helper's own calls are not followed.
        """
        name = callee_name(call)
        if name is None or name[:1].isupper() or VALIDATING_NAME.search(name):
            return False
        # A model call is reported where it receives the data, so its result is not
        # followed: one unvalidated input gives one finding, not one per later step.
        if self._model_call(call, name) is not None:
            return False
        func = call.func
        if isinstance(func, cst.Name) and name in self.context.functions:
            return not self._helper_validates(name)
        if isinstance(func, cst.Attribute) and not (
            isinstance(func.value, cst.Name) and func.value.value in self.context.imports
        ):
            # A method of an object, such as ``scaler.transform(x)``, is a model call or unknown.
            return False
        qualified = self.context.qualified_name(func)
        if qualified is not None and qualified.startswith("builtins."):
            return False
        return bool(HELPER_FUNCTION.search(name))

    def _helper_validates(self, name: str) -> bool:
        if name not in self._helpers_validate:
            scan = _ValidationScan(self.context, self.context.functions[name])
            walk(self.context.functions[name], scan)
            self._helpers_validate[name] = scan.validates
        return self._helpers_validate[name]

    def _model_call(self, node: cst.Call, name: str) -> str | None:
        """Return how to name the call in a message if it runs a model or preprocessing step."""
        func = node.func
        written = dotted_text(func) or name
        if isinstance(func, cst.Attribute):
            if name in MODEL_METHODS:
                return written
            if name == "run" and self._is_onnx_session(func.value):
                return written
            if MODEL_NAME.search(name) and isinstance(func.value, cst.Name) and func.value.value == "self":
                return written
        else:
            qualified = self.context.qualified_name(func)
            if qualified is not None and qualified.startswith("builtins."):
                return None
            if qualified is None and MODEL_NAME.search(name):
                # Imported names are left out: ``pipeline(...)`` builds a model, it does not run one.
                return written
        if INFERENCE_FUNCTION.search(name):
            return written
        return None

    def _is_onnx_session(self, receiver: cst.BaseExpression) -> bool:
        name = dotted_text(receiver) or ""
        return "sess" in name.lower()


class _ValidationScan(Visitor):
    """Check whether a function validates its parameters, by the test a route handler gets."""

    def __init__(self, context: ModuleContext, function: cst.FunctionDef) -> None:
        super().__init__()
        self.validates = False
        self._flow = ValueFlow(context, lambda expr: None)
        for param in all_parameters(function):
            if param.name.value not in ("self", "cls"):
                self._flow.bind(param.name, Origin(f"the parameter '{param.name.value}'"))

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._flow.bind_assignment(original_node)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._flow.bind_assignment(original_node)

    def visit_For(self, node: cst.For) -> None:
        self._flow.bind(node.target, self._flow.origin(node.iter))

    def visit_If(self, node: cst.If) -> None:
        if _rejects_data(node, self._flow):
            self.validates = True

    def visit_Call(self, node: cst.Call) -> None:
        name = callee_name(node)
        if name is not None and _validates(node, name, self._flow):
            self.validates = True


class _ExpressionNodes(Visitor):
    """Collect every node of one small expression, such as the test of an ``if``."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.nodes.append(node)
        return True


def _validates(node: cst.Call, name: str, flow: ValueFlow) -> bool:
    """Tell whether a call checks the data it is given."""
    if VALIDATING_NAME.search(name):
        return True
    func = node.func
    if isinstance(func, cst.Attribute) and name == "load":
        # marshmallow: ``schema.load(data)`` validates and deserialises.
        return "schema" in flow.context.module.code_for_node(func.value).lower()
    if name[:1].isupper():
        # A pydantic model or dataclass built from the data: ``Item(**payload)``.
        return any(arg.star == "**" and flow.origin(arg.value) is not None for arg in node.args)
    return False


def _rejects_data(node: cst.If, flow: ValueFlow) -> bool:
    """Tell whether an ``if`` tests the data and rejects it: ``if 'x' not in data: abort(400)``."""
    if not _rejects(node.body):
        return False
    collector = _ExpressionNodes()
    walk(node.test, collector)
    return any(
        isinstance(expr, (cst.Name, cst.Attribute, cst.Call)) and flow.origin(expr) is not None
        for expr in collector.nodes
    )


def _rejects(body: cst.BaseSuite) -> bool:
    """Tell whether a block raises, aborts or returns: the shape of a rejected request."""
    for statement in block_statements(body):
        if isinstance(statement, (cst.Raise, cst.Return)):
            return True
        if isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Call):
            if callee_name(statement.value) in _ABORT_NAMES:
                return True
    return False


NoInputValidation.VALID = (
    Example(
        "from fastapi import FastAPI\nfrom pydantic import BaseModel\n\napp = FastAPI()\n\n"
        "class Features(BaseModel):\n    values: list[float]\n\n"
        "@app.post('/predict')\ndef predict(features: Features):\n    return {'y': model.predict([features.values])}\n"
    ),
    Example(
        "from flask import Flask, request, abort\n\napp = Flask(__name__)\n\n"
        "@app.route('/predict', methods=['POST'])\ndef predict():\n    data = request.get_json()\n"
        "    if not data or 'features' not in data:\n        abort(400)\n"
        "    return {'y': model.predict([data['features']]).tolist()}\n"
    ),
    Example(
        "from flask import Flask, request\nfrom schemas import InputSchema\n\napp = Flask(__name__)\n"
        "schema = InputSchema()\n\n@app.post('/score')\ndef score():\n    payload = schema.load(request.json)\n"
        "    return {'y': clf.predict_proba([payload['x']]).tolist()}\n"
    ),
    Example(
        "from fastapi import FastAPI\n\napp = FastAPI()\n\n@app.post('/predict')\n"
        "def predict(payload: dict):\n    item = Item.model_validate(payload)\n    return model.predict([item.x])\n"
    ),
    Example(
        "from fastapi import Depends, FastAPI\n\napp = FastAPI()\n\n@app.get('/items/{item_id}')\n"
        "def read(item_id, db=Depends(get_db)):\n    return predict_item(item_id)\n"
    ),
    Example(
        "from flask import Flask, request\n\napp = Flask(__name__)\n\n"
        "def predict():\n    # not a route handler\n    return model.predict(request.json)\n"
    ),
    Example(
        "import flask\n\napp = flask.Flask(__name__)\n\n@app.route('/health')\ndef health():\n"
        "    return {'model': model.predict(WARMUP_BATCH) is not None}\n"
    ),
    Example(
        "from flask import Flask, abort, request\n\napp = Flask(__name__)\n\n"
        "def prepare_features(trip):\n    if 'distance' not in trip:\n        abort(400)\n"
        "    return {'distance': float(trip['distance'])}\n\n"
        "@app.post('/predict')\ndef predict_endpoint():\n    features = prepare_features(request.get_json())\n"
        "    return {'minutes': predict(features)}\n"
    ),
    Example(
        "from flask import Flask, request\nfrom store import lookup_user\n\napp = Flask(__name__)\n\n"
        "@app.post('/recommend')\ndef recommend():\n    # lookup_user returns a stored record, not the request data\n"
        "    user = lookup_user(request.json['id'])\n    return {'items': model.predict([user.history])}\n"
    ),
)
NoInputValidation.INVALID = (
    Example(
        "from flask import Flask, request\nimport numpy as np\n\napp = Flask(__name__)\n\n"
        "@app.route('/predict', methods=['POST'])\ndef predict():\n    data = request.get_json()\n"
        "    features = np.array(data['features']).reshape(1, -1)\n    return {'y': model.predict(features).tolist()}\n",
        lines=(10,),
    ),
    Example(
        "from fastapi import FastAPI\nfrom typing import Any, Dict\n\napp = FastAPI()\n\n@app.post('/predict')\n"
        "def predict(payload: Dict[str, Any]):\n    return {'y': model.predict([payload['x']]).tolist()}\n",
        lines=(8,),
    ),
    Example(
        "from fastapi import FastAPI, Request\n\napp = FastAPI()\n\n@app.post('/embed')\n"
        "async def embed(request: Request):\n    body = await request.json()\n    return encoder.encode(body['text'])\n",
        lines=(8,),
    ),
    Example(
        "import flask\n\nbp = flask.Blueprint('api', __name__)\n\n@bp.route('/infer', methods=['POST'])\n"
        "def infer():\n    x = preprocess(flask.request.form['text'])\n    return {'y': run_inference(x)}\n",
        lines=(7,),
    ),
    Example(
        "from fastapi import APIRouter\n\nrouter = APIRouter()\n\n@router.post('/score')\n"
        "def score(data):\n    return {'y': ranking_model(data)}\n\n"
        "@router.post('/onnx')\ndef onnx(data: dict):\n    return session.run(None, {'input': data['x']})\n",
        lines=(7, 11),
    ),
    Example(
        "from flask import Flask, request\n\napp = Flask(__name__)\n\n"
        "def prepare_features(trip):\n    return {'route': f\"{trip['start']}_{trip['end']}\", 'km': trip['km']}\n\n"
        "def predict(features):\n    return float(model.predict(vectorizer.transform([features]))[0])\n\n"
        "@app.route('/predict', methods=['POST'])\ndef predict_endpoint():\n    trip = request.get_json()\n"
        "    features = prepare_features(trip)\n    return {'minutes': predict(features)}\n",
        lines=(15,),
    ),
)


# -- AIML203 inference-without-no-grad ----------------------------------------------

#: Lightning runs these under ``torch.no_grad()`` or ``torch.inference_mode()`` itself.
_LIGHTNING_HOOKS = frozenset({"predict_step", "validation_step", "test_step"})
NO_GRAD_CONTEXTS = frozenset(
    {
        "torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad",
        "torch.autograd.grad_mode.inference_mode", "torch.set_grad_enabled", "torch.autograd.set_grad_enabled",
        "torch.enable_grad",
    }
)
TORCH_MODULE_BASES = frozenset(
    {
        "torch.nn.Module", "torch.nn.modules.module.Module", "lightning.LightningModule",
        "lightning.pytorch.LightningModule", "lightning.pytorch.core.LightningModule",
        "pytorch_lightning.LightningModule", "pytorch_lightning.core.LightningModule",
    }
)
TORCH_MODEL_FACTORIES = frozenset({"torch.load", "torch.jit.load", "torch.jit.script", "torch.jit.trace"})
TORCH_MODEL_PACKAGES = frozenset({"torch", "torchvision", "timm", "open_clip", "segmentation_models_pytorch"})
#: Models called as ``model(x)`` that manage gradients themselves or are not torch modules.
NOT_TORCH_CALLS = frozenset({"transformers.pipeline", "ultralytics.YOLO", "sentence_transformers.SentenceTransformer"})
_MODEL_SETUP_METHODS = frozenset({"to", "eval", "cuda", "cpu", "half", "float", "requires_grad_"})
_TORCH_MODEL_NAME = re.compile(
    r"^(model|net|network|encoder|decoder|classifier|backbone)$|_(model|net|encoder|decoder|classifier)$", re.IGNORECASE
)


@dataclass(slots=True)
class _Function:
    """A function being visited, and the model calls in it that may need ``torch.no_grad()``."""

    name: str
    serving: bool
    no_grad: bool
    trains: bool = False
    calls: list[tuple[cst.Call, str]] = field(default_factory=list)


class InferenceWithoutNoGrad(FileRule):
    """Flag torch model calls in serving code that run with autograd enabled."""

    code = "AIML203"
    slug = "inference-without-no-grad"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = None
    message = "a torch model runs in serving code with autograd enabled"
    impact = (
        "Without torch.no_grad() or torch.inference_mode(), every forward pass records the autograd graph "
        "and keeps activations alive: more memory per request, slower inference and out-of-memory "
        "errors under load."
    )
    fix = (
        "Wrap inference in 'with torch.inference_mode():' (or torch.no_grad()), or decorate the serving "
        "function with @torch.inference_mode(); call model.eval() once after loading as well."
    )
    prefilter = ("torch",)
    applies_to_tests = False
    #: Text that a module with serving code outside a serving path contains: a serving
    #: function, or a route decorator (``@app.get(`` and not any ``dict.get(``).
    SERVING_TEXT = re.compile(r"def (?:predict|infer|serve|handle)|@[\w.]*\.(?:route|get|post|put|patch|delete|websocket)\(")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        if not cls.matches_text(text):
            return False
        on_serving_path = any(SERVING_PATH_PART.search(part) for part in PurePosixPath(path).parts)
        return on_serving_path or cls.SERVING_TEXT.search(text) is not None

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # "torch" is in every torch module. A report needs a model call in a module that imports
        # torch, inside a function that may be serving code. Lightning hooks, methods of torch
        # modules and training functions are not, and neither is code under a context or decorator
        # that surely disables autograd. The path may make every function serving code, so
        # function names are not checked.
        if not facts.may_import("torch"):
            return False
        assigned: set[str] = set()
        for node in facts.nodes(ast.Assign):
            value = node.value
            while (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr in _MODEL_SETUP_METHODS
            ):
                value = value.func.value
            if isinstance(value, ast.Call):
                assigned.update(key for target in node.targets if (key := cls._model_key(target)) is not None)
        classes = {node.name for node in facts.tree.body if isinstance(node, ast.ClassDef)}
        scan = _ModelCallScan(facts, assigned, classes)
        # Calls at module level are never reported: only a function's calls are.
        scan.visit(facts.tree, serving=False, model_internal=False, protected=False)
        return scan.found

    @staticmethod
    def _model_key(expr: ast.expr) -> str | None:
        """Return the key (``model``, ``self.model``) of a receiver that ``_torch_model_call`` accepts."""
        if isinstance(expr, ast.Name):
            return expr.id
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            return f"self.{expr.attr}"
        return None

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._serving_module = any(SERVING_PATH_PART.search(part) for part in PurePosixPath(context.path).parts)
        self._functions: list[_Function] = []
        #: Per enclosing class, innermost last: whether it subclasses a torch module.
        self._classes: list[bool] = []
        self._no_grad_depth = 0
        self._with_no_grad: list[bool] = []
        self._torch_classes: set[str] = set()
        #: Names bound by ``class`` statements, nested ones included once visited.
        self._class_names: set[str] = set(context.classes)
        #: ``model`` or ``self.model`` -> True for a torch model, False for something else.
        self._bindings: dict[str, bool] = {}
        #: Functions called under no_grad somewhere in the module: their calls are covered there.
        self._called_without_grad: set[str] = set()
        self._grad_disabled_globally = False
        self._candidates: list[tuple[cst.Call, str, str]] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        torch_module = any(
            self.context.qualified_name(base.value) in TORCH_MODULE_BASES
            or (isinstance(base.value, cst.Name) and base.value.value in self._torch_classes)
            for base in node.bases
        )
        if torch_module:
            self._torch_classes.add(node.name.value)
        self._class_names.add(node.name.value)
        self._classes.append(torch_module)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        outer = self._functions[-1] if self._functions else None
        name = node.name.value
        # The methods of a torch module are the model itself (``forward`` calling its
        # layers), not a serving entry point, wherever the module is defined.
        model_internal = bool(self._classes) and self._classes[-1]
        serving = (
            (outer is not None and outer.serving)
            or route_path(node, self.context) is not None
            or bool(SERVING_FUNCTION.match(name))
            or self._serving_module
        ) and name not in _LIGHTNING_HOOKS and not model_internal
        decorated = any(self._disables_grad(decorator.decorator) for decorator in node.decorators)
        no_grad = (outer is not None and outer.no_grad) or decorated
        self._functions.append(_Function(name, serving, no_grad))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        function = self._functions.pop()
        if function.trains:
            return
        self._candidates.extend((call, display, function.name) for call, display in function.calls)

    def visit_With(self, node: cst.With) -> None:
        disables = any(self._disables_grad(item.item) for item in node.items)
        self._with_no_grad.append(disables)
        self._no_grad_depth += disables

    def leave_With(self, original_node: cst.With) -> None:
        self._no_grad_depth -= self._with_no_grad.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        kind = self._model_kind(original_node.value)
        if kind is None:
            return
        for target in original_node.targets:
            key = dotted_text(target.target)
            if key is not None:
                self._bindings[key] = kind

    def visit_Call(self, node: cst.Call) -> None:
        if not self._functions:
            self._note_global_switch(node)
            return
        function = self._functions[-1]
        func = node.func
        if isinstance(func, cst.Attribute):
            self._note_training(function, node, func)
        protected = function.no_grad or self._no_grad_depth > 0
        if protected:
            called = callee_name(node)
            if called is not None:
                self._called_without_grad.add(called)
            return
        self._note_global_switch(node)
        if not function.serving or not self.context.imports_any("torch"):
            return
        display = self._torch_model_call(func)
        if display is not None:
            function.calls.append((node, display))

    def leave_Module(self, original_node: cst.Module) -> None:
        # NOTE: callers are seen only in this module. A serving-path helper that another
        # module calls under torch.no_grad() is still reported.
        if self._grad_disabled_globally:
            return
        for call, display, function in self._candidates:
            if function in self._called_without_grad:
                continue
            self.report(
                call,
                f"{display}() runs a torch model in {function}() without torch.no_grad() or torch.inference_mode()",
            )

    def _note_training(self, function: _Function, call: cst.Call, func: cst.Attribute) -> None:
        if func.attr.value == "backward":
            function.trains = True
        elif func.attr.value == "step":
            # ``optimizer.step()``, or ``scaler.step(optimizer)`` under mixed precision.
            names = [dotted_text(func.value), *(dotted_text(arg.value) for arg in call.args)]
            if any("optim" in (name or "").lower() for name in names):
                function.trains = True

    def _note_global_switch(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) in ("torch.set_grad_enabled", "torch.autograd.set_grad_enabled"):
            if not is_true(_first_argument(node)):
                self._grad_disabled_globally = True

    def _disables_grad(self, expr: cst.BaseExpression) -> bool:
        """Tell whether a context manager or decorator turns autograd off (an unknown argument counts as off)."""
        call = expr if isinstance(expr, cst.Call) else None
        name = self.context.qualified_name(call.func if call else expr)
        argument = _first_argument(call) if call else None
        return disables_grad(name, call is not None, is_true(argument), is_false(argument))

    def _model_kind(self, value: cst.BaseExpression) -> bool | None:
        """Return True for a value that is a torch model, False for a known non-torch model, None if unknown."""
        while (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in _MODEL_SETUP_METHODS
        ):
            value = value.func.value
        if not isinstance(value, cst.Call):
            return None
        func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value == "from_pretrained":
            receiver = dotted_text(func.value) or ""
            return not receiver.rsplit(".", 1)[-1].startswith(("TF", "Flax"))
        if isinstance(func, cst.Name) and func.value in self._torch_classes:
            return True
        name = self.context.qualified_name(func)
        if name is None or name.startswith("builtins."):
            return None
        if name in TORCH_MODEL_FACTORIES:
            return True
        if name in NOT_TORCH_CALLS:
            return False
        return name.split(".", 1)[0] in TORCH_MODEL_PACKAGES if not name.startswith(".") else None

    def _torch_model_call(self, func: cst.BaseExpression) -> str | None:
        """Return the written name of a call that runs a torch model, or None."""
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            receiver = func.value
            suffix = ".forward"
        else:
            receiver = func
            suffix = ""
        key = dotted_text(receiver)
        if key is None:
            return None
        if isinstance(receiver, cst.Name):
            # Calling an imported name or a class builds an object: ``Net(num_gpus=2)`` runs no model.
            if receiver.value in self.context.imports or receiver.value in self._class_names:
                return None
            identifier = receiver.value
        elif isinstance(receiver, cst.Attribute) and dotted_text(receiver.value) == "self":
            identifier = receiver.attr.value
        else:
            return None
        kind = self._bindings.get(key)
        if kind is False:
            return None
        if kind or _TORCH_MODEL_NAME.search(identifier):
            return key + suffix
        return None


class _ModelCallScan:
    """The ``ast`` side of AIML203's candidate check: looks for a model call the rule may report.

    It walks the module as the rule's visitor does and leaves a call out only where the
    visitor surely leaves it out too.
    """

    def __init__(self, facts: AstFacts, assigned: set[str], classes: set[str]) -> None:
        self.facts = facts
        #: ``model`` and ``self.model`` keys assigned from a call somewhere in the module.
        self.assigned = assigned
        #: Module-level classes: calling one builds an object.
        self.classes = classes
        #: Classes that surely subclass a torch module, in the order they are defined.
        self.torch_classes: set[str] = set()
        self.found = False

    def visit(self, node: ast.AST, *, serving: bool, model_internal: bool, protected: bool) -> None:
        """Visit the children of ``node``, where ``serving`` is true if the innermost function may be serving code."""
        for child in ast.iter_child_nodes(node):
            if self.found:
                return
            inner_serving, inner_internal, inner_protected = serving, model_internal, protected
            if isinstance(child, ast.ClassDef):
                inner_internal = any(self._surely_torch_base(base) for base in child.bases)
                if inner_internal:
                    self.torch_classes.add(child.name)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                trains = any(
                    isinstance(call.func, ast.Attribute) and call.func.attr == "backward" for call in _own_calls(child)
                )
                inner_serving = child.name not in _LIGHTNING_HOOKS and not model_internal and not trains
                inner_protected = protected or any(self._surely_disables(item) for item in child.decorator_list)
            elif isinstance(child, (ast.With, ast.AsyncWith)):
                inner_protected = protected or any(self._surely_disables(item.context_expr) for item in child.items)
            elif isinstance(child, ast.Call) and serving and not protected and self._model_call(child):
                self.found = True
                return
            self.visit(child, serving=inner_serving, model_internal=inner_internal, protected=inner_protected)

    def _model_call(self, call: ast.Call) -> bool:
        func = call.func
        receiver = func.value if isinstance(func, ast.Attribute) and func.attr == "forward" else func
        key = InferenceWithoutNoGrad._model_key(receiver)
        if key is None:
            return False
        if isinstance(receiver, ast.Name):
            # Calling a class or a name imported for the whole module builds an object.
            if receiver.id in self.classes or None not in self.facts.resolutions(receiver):
                return False
        return key in self.assigned or _TORCH_MODEL_NAME.search(key.removeprefix("self.")) is not None

    def _surely_torch_base(self, base: ast.expr) -> bool:
        if isinstance(base, ast.Name) and base.id in self.torch_classes:
            return True
        names = self.facts.resolutions(base)
        return None not in names and names <= TORCH_MODULE_BASES

    def _surely_disables(self, expr: ast.expr) -> bool:
        """Tell whether ``_disables_grad`` holds for a context manager or decorator however its name resolves."""
        call = expr if isinstance(expr, ast.Call) else None
        names = self.facts.resolutions(call.func if call else expr)
        mode = argument(call, 0, "mode") if call else None
        literal = mode.value if isinstance(mode, ast.Constant) else None
        return all(disables_grad(name, call is not None, literal is True, literal is False) for name in names)


def disables_grad(name: str | None, called: bool, mode_true: bool, mode_false: bool) -> bool:
    """Tell whether a context manager or decorator of this name turns autograd off.

    ``called`` is true for a call (``torch.no_grad()``), and the other two for a first argument
    that is the literal True or False. An unknown argument counts as off.
    """
    if name not in NO_GRAD_CONTEXTS or name == "torch.enable_grad":
        return False
    if name.endswith("set_grad_enabled"):
        return called and not mode_true
    if name.endswith("inference_mode"):
        return not mode_false
    return True


def _own_calls(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Call]:
    """Return the calls that run in the function itself, leaving out those of nested functions."""
    nodes = own_nodes(ast.iter_child_nodes(function), (ast.FunctionDef, ast.AsyncFunctionDef))
    return [node for node in nodes if isinstance(node, ast.Call)]


def _first_argument(call: cst.Call) -> cst.BaseExpression | None:
    arg = call_argument(call, 0, "mode")
    return None if arg is None else arg.value


InferenceWithoutNoGrad.VALID = (
    Example(
        "import torch\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = torch.jit.load('m.pt')\n\n"
        "@app.post('/predict')\ndef predict(x: list[float]):\n    with torch.inference_mode():\n"
        "        return model(torch.tensor([x])).tolist()\n"
    ),
    Example(
        "import torch\n\n@torch.no_grad()\ndef predict(model, batch):\n    return model(batch).argmax(-1)\n",
        path="serve.py",
    ),
    Example(
        "import torch\n\ndef train_step(model, batch, optimizer):\n    loss = model(batch).mean()\n"
        "    loss.backward()\n    optimizer.step()\n",
        path="server/train_loop.py",
    ),
    Example(
        "import torch\nfrom transformers import pipeline\n\nclassifier = pipeline('sentiment-analysis')\n\n"
        "def predict(text):\n    return classifier(text)\n"
    ),
    Example(
        "import torch\n\ndef predict(model, batch):\n    return model(batch)\n\ndef handle(batch):\n"
        "    with torch.no_grad():\n        return predict(MODEL, batch)\n"
    ),
    Example("import torch\n\ndef summarize(model, x):\n    # not a serving path\n    return model(x)\n", path="analysis/plots.py"),
    Example(
        "import torch\n\ntorch.set_grad_enabled(False)\n\ndef predict(x):\n    return model(x)\n",
        path="api/app.py",
    ),
    Example(
        "import torch.nn as nn\nimport torch.nn.functional as F\n\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.conv1 = nn.Conv2d(1, 32, 3)\n\n"
        "    def forward(self, x):\n        # the model's own layers, not a serving entry point\n"
        "        return F.relu(self.conv1(x))\n",
        path="server.py",
    ),
    Example(
        "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n    pass\n\n"
        "def serve_model(num_gpus):\n    # building the model runs no forward pass\n    return Net(num_gpus=num_gpus)\n",
    ),
    Example(
        "import torch\nfrom torch import nn\n\nclass ParameterServer(nn.Module):\n"
        "    def forward(self, inp):\n        return self.model(inp).to('cpu')\n\n"
        "def run_step(model, batch):\n    return model(batch)\n",
        # a path part that only ends in 'server' is distributed training, not serving
        path="distributed/rpc/parameter_server/rpc_parameter_server.py",
    ),
)
InferenceWithoutNoGrad.INVALID = (
    Example(
        "import torch\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = torch.jit.load('m.pt')\n\n"
        "@app.post('/predict')\ndef predict(x: list[float]):\n    return model(torch.tensor([x])).tolist()\n",
        lines=(9,),
    ),
    Example(
        "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n    pass\n\nclf = Net()\n\n"
        "def infer(batch):\n    return clf(batch)\n",
        lines=(10,),
    ),
    Example(
        "import torch\n\nclass Handler:\n    def inference(self, data):\n        return self.model.forward(data)\n",
        lines=(5,),
    ),
    Example(
        "import torch as T\n\ndef embed(texts):\n    with T.inference_mode(False):\n        return encoder(texts)\n",
        path="app/embeddings.py",
        lines=(5,),
    ),
    Example(
        "import torch\nfrom transformers import AutoModel\n\nbert = AutoModel.from_pretrained('bert-base-uncased')\n\n"
        "def predict(inputs):\n    return bert(**inputs).last_hidden_state\n",
        lines=(7,),
    ),
)

RULES = (HardcodedModelPath, NoInputValidation, InferenceWithoutNoGrad)
