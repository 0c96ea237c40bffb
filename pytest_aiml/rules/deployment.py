"""Deployment rules: what surrounds a served model in production.

The rules share one analysis of the repository's online serving apps. An app is a
non-test module that imports an HTTP serving framework (FastAPI, Flask, BentoML, Ray
Serve, KServe, TorchServe, LitServe...) or follows a model-server handler convention
(SageMaker ``model_fn``, a TorchServe ``BaseHandler``, a Triton ``TritonPythonModel``).
Its closure is the app module plus the local modules it imports, three imports deep,
training modules excepted. The model loads of the closure are found with ``ast`` and
resolved through its imports. An app that loads no model (a plain web service, an app
that only calls an LLM API) is not a model-serving app, so these rules leave it alone.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pytest_aiml.engine.ast_facts import add_import, qualified_name
from pytest_aiml.engine.discovery import FileKind, RepoFiles, is_test_path
from pytest_aiml.engine.findings import Finding
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.rule import Category, Effort, Example, Priority, RepoRule
from pytest_aiml.engine.signals import FileSignals, group_members
from pytest_aiml.rules.serving import MODEL_LOADERS, names_data_file

# -- the local import graph ---------------------------------------------------------------


@dataclass(frozen=True)
class ModuleGraph:
    """The repository's Python modules and the local modules each one imports, by path."""

    imports: Mapping[str, frozenset[str]]
    #: Every dotted name each module imports, local or not, ``from ray import serve`` as ``ray.serve``.
    names: Mapping[str, frozenset[str]]
    #: The dotted names under which the repository's own modules can be imported.
    local_names: frozenset[str] = frozenset()

    #: Each module's imported names and their dotted prefixes (``ray.serve`` gives ``ray`` too), filled on first use.
    _prefixes: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def imports_module(self, path: str, module: str) -> bool:
        """Tell whether the module at ``path`` imports ``module`` or something under it."""
        if path not in self._prefixes:
            self._prefixes[path] = frozenset(
                prefix
                for name in self.names.get(path, ())
                for prefix in (name, *(name[:index] for index, char in enumerate(name) if char == "."))
            )
        return module in self._prefixes[path]

    def closure(self, roots: Iterable[str], *, skip: frozenset[str] = frozenset(), depth: int | None = None) -> list[str]:
        """Return the roots and the local modules they import, transitively, in breadth-first order.

        ``skip`` modules are neither entered nor returned; ``depth`` limits the number of hops.
        """
        order = list(dict.fromkeys(roots))
        seen = set(order)
        frontier = list(order)
        hops = 0
        while frontier and (depth is None or hops < depth):
            hops += 1
            following = []
            for path in frontier:
                for imported in sorted(self.imports.get(path, ())):
                    if imported not in seen and imported not in skip:
                        seen.add(imported)
                        following.append(imported)
            order.extend(following)
            frontier = following
        return order


def module_names(path: str) -> list[str]:
    """Return the dotted names an import may use for a module: ``src.pkg.mod``, ``pkg.mod``, ``mod``."""
    parts = path[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[index:]) for index in range(len(parts))]


def build_module_graph(inventory: Inventory) -> ModuleGraph:
    """Read the imports of every Python module (notebooks excepted) and keep those of local modules."""
    python = [path for path in inventory.repo.of_kind(FileKind.PYTHON) if path.endswith(".py")]
    by_name: dict[str, list[str]] = {}
    for path in python:
        for name in module_names(path):
            by_name.setdefault(name, []).append(path)
    imports: dict[str, frozenset[str]] = {}
    names: dict[str, frozenset[str]] = {}
    for path in python:
        imported = inventory.repo.read_view(path, "imports")
        if imported is None:
            continue
        found = set()
        names[path] = imported
        for name in names[path]:
            candidates = [candidate for candidate in by_name.get(name, ()) if candidate != path]
            if candidates:
                found.add(_nearest(path, candidates))
        imports[path] = frozenset(found)
    return ModuleGraph(imports=imports, names=names, local_names=frozenset(by_name))


def _nearest(importer: str, candidates: list[str]) -> str:
    # Two modules may share a short name (``utils``); the one nearest the importer wins.
    folder = importer.split("/")[:-1]

    def shared(candidate: str) -> int:
        count = 0
        for left, right in zip(folder, candidate.split("/")[:-1]):
            if left != right:
                break
            count += 1
        return count

    return max(sorted(candidates), key=shared)


def module_graph(inventory: Inventory) -> ModuleGraph:
    return inventory.derived("local_module_graph", build_module_graph)


# -- model loads ------------------------------------------------------------------------

#: Loaders of ``serving.MODEL_LOADERS`` plus those identified by their name's form below.
_LOADERS = frozenset(MODEL_LOADERS) | {"torch.hub.load", "bentoml.models.get", "tensorflow.keras.saving.load_model"}
_PRETRAINED_PACKAGES = frozenset(
    {"transformers", "diffusers", "peft", "sentence_transformers", "optimum", "timm", "open_clip", "setfit", "gliner"}
)
#: Classes whose ``from_pretrained`` loads a model's companion, not a model.
_COMPANION_CLASS = re.compile(r"(Tokenizer|Processor|Config|FeatureExtractor|ImageProcessor)(Fast)?$")
#: Words of a variable or file name that mark a fitted companion of a model rather than the model.
_COMPANION_WORDS = frozenset(
    {
        "tokenizer", "processor", "preprocessor", "preprocessing", "scaler", "vectorizer", "vectoriser", "dv",
        "imputer", "columns", "vocab", "vocabulary", "config", "le", "ohe", "mapping", "labels", "classes",
        "stats", "mean", "std", "normalizer", "label_encoder", "encoder_labels", "features", "feature_names",
        "thresholds", "meta", "metadata",
    }
)
_MODEL_NAME_WORDS = frozenset(
    {"model", "models", "clf", "classifier", "regressor", "estimator", "net", "network", "booster", "pipeline", "predictor"}
)
#: Parameter names that select one of several models: the load is a router, not a single model.
_SELECTOR_PARAMETER = re.compile(r"version|variant|model_name|model_id|name$|key$|kind$|^tag|stage|alias", re.IGNORECASE)
#: Methods that run a loaded model.
MODEL_CALL_METHODS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "decision_function", "forward", "generate", "run", "infer", "encode"}
)


@dataclass(frozen=True, slots=True)
class ModelLoad:
    """A call that loads a model or one of its companions (tokenizer, scaler)."""

    path: str
    line: int
    call: str
    #: The names the result is assigned to, as written: ``model``, ``dv, model``.
    target: str
    #: The literal file or model id it loads, when the source writes one.
    source: str | None
    scope: str
    companion: bool
    #: The load sits in a loop or a comprehension, or takes a parameter that selects a model.
    repeated: bool
    #: The enclosing function (or class, for ``__init__``) whose argument gives the path.
    parameterised_by: str | None
    #: The object a ``load_state_dict`` or ``load_model`` method is called on, as written.
    receiver: str | None = None

    def describe(self) -> str:
        what = f"{self.call}({self.source!r})" if self.source else f"{self.call}(...)"
        return f"{what} at {self.path}:{self.line}"


class _Aliases:
    """The names a module binds by import, mapped to what they import, filled in as the scan reaches each import."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        add_import(self.names, node)

    def qualified(self, node: ast.expr) -> str | None:
        """Return the imported dotted name an expression refers to, or None for local names."""
        return qualified_name(node, self.names)


def _identifier_words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z]+", text.lower()))
    words.update(re.findall(r"[a-z_]+", text.lower()))
    return words


class _LoadScanner(ast.NodeVisitor):
    def __init__(self, path: str, aliases: _Aliases) -> None:
        self.path = path
        self.aliases = aliases
        self.loads: list[ModelLoad] = []
        self._functions: list[tuple[str, set[str]]] = []
        self._classes: list[str] = []
        self._loops = 0
        self._target = ""
        self._opened: dict[str, str] = {}

    # -- context ------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        self.aliases.add(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.aliases.add(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.append(node.name)
        self.generic_visit(node)
        self._classes.pop()

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = node.args
        names = {arg.arg for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
        self._functions.append((node.name, names))
        loops, self._loops = self._loops, 0
        self.generic_visit(node)
        self._loops = loops
        self._functions.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def _visit_loop(self, node: ast.AST) -> None:
        self._loops += 1
        self.generic_visit(node)
        self._loops -= 1

    visit_For = visit_AsyncFor = visit_While = _visit_loop
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_loop

    def visit_Assign(self, node: ast.Assign) -> None:
        self._target = ", ".join(ast.unparse(target) for target in node.targets)
        self.generic_visit(node)
        self._target = ""

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target = ast.unparse(node.target)
        self.generic_visit(node)
        self._target = ""

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "open" and call.args:
                if isinstance(item.optional_vars, ast.Name) and isinstance(call.args[0], ast.Constant):
                    self._opened[item.optional_vars.id] = str(call.args[0].value)
        self.generic_visit(node)

    # -- loads --------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        call = self._loader(node)
        if call is not None:
            self._record(node, call)
        self.generic_visit(node)

    def _loader(self, node: ast.Call) -> str | None:
        func = node.func
        name = self.aliases.qualified(func)
        if name is not None:
            if name in _LOADERS:
                return name
            parts = name.split(".")
            if parts[-1] == "load_model" and parts[0] in ("mlflow", "bentoml", "keras", "tensorflow", "tf_keras", "fasttext"):
                return name
            if parts[-1] == "from_pretrained" and parts[0] in _PRETRAINED_PACKAGES:
                return name
            if parts[-1] == "load" and parts[0] == "mlflow":
                return name
            return None
        # Methods of objects the scan cannot type: ``booster.load_model(path)``, ``net.load_state_dict(state)``.
        if isinstance(func, ast.Attribute) and func.attr in ("load_model", "load_state_dict"):
            return func.attr
        return None

    def _record(self, node: ast.Call, call: str) -> None:
        argument = node.args[0] if node.args else None
        if argument is None:
            for keyword in node.keywords:
                if keyword.arg in ("f", "filename", "path", "model_uri", "model", "model_path", "model_file",
                                   "pretrained_model_name_or_path", "model_name_or_path", "filepath", "fname"):
                    argument = keyword.value
                    break
        source = self._literal(argument)
        parameter = None
        selector = False
        if argument is not None and self._functions:
            function, parameters = self._functions[-1]
            used = {sub.id for sub in ast.walk(argument) if isinstance(sub, ast.Name)} & parameters
            if used:
                parameter = self._classes[-1] if function == "__init__" and self._classes else function
                selector = any(_SELECTOR_PARAMETER.search(name) for name in used)
        self.loads.append(
            ModelLoad(
                path=self.path,
                line=node.lineno,
                call=call,
                target=self._target,
                source=source,
                scope=".".join([*self._classes, *(name for name, _ in self._functions)]) or "<module>",
                companion=self._companion(call, source),
                repeated=self._loops > 0 or selector,
                parameterised_by=parameter,
                receiver=ast.unparse(node.func.value) if call in ("load_state_dict", "load_model") else None,
            )
        )

    def _literal(self, argument: ast.expr | None) -> str | None:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
        if isinstance(argument, ast.Name):
            return self._opened.get(argument.id)
        if isinstance(argument, ast.Call) and isinstance(argument.func, ast.Name) and argument.func.id == "open":
            return self._literal(argument.args[0]) if argument.args else None
        return None

    def _companion(self, call: str, source: str | None) -> bool:
        if call.endswith(".from_pretrained"):
            return bool(_COMPANION_CLASS.search(call.split(".")[-2]))
        words = _identifier_words(self._target)
        if source:
            stem = PurePosixPath(source).stem
            words |= _identifier_words(stem)
            if names_data_file(stem):
                return True
        if words & _MODEL_NAME_WORDS:
            return False
        return bool(words & _COMPANION_WORDS)


#: Text that every model load contains; a module without any of it is not parsed.
_LOAD_HINTS = (
    "load", "from_pretrained", "InferenceSession", "Booster", "Interpreter", "safe_open", "Llama",
    "SentenceTransformer", "pipeline", "YOLO", "models.get",
)


def scan_model_loads(path: str, text: str) -> list[ModelLoad]:
    """Return the model loads of one module. A module that does not parse has none."""
    if not any(hint in text for hint in _LOAD_HINTS):
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    scanner = _LoadScanner(path, _Aliases())
    scanner.visit(tree)
    return scanner.loads


def count_calls(name: str, texts: Iterable[str]) -> int:
    """Count the calls of a function or class in source texts, by name (``load(``, ``obj.load(``)."""
    pattern = re.compile(rf"\b{re.escape(name)}\s*\(")
    definition = re.compile(rf"\b(def|class)\s+{re.escape(name)}\b")
    return sum(len(pattern.findall(text)) - len(definition.findall(text)) for text in texts)


# -- serving apps -----------------------------------------------------------------------

#: Modules whose import makes a file an online serving app. Gradio and Streamlit build
#: demo UIs, and aiohttp is as often an HTTP client, so they do not count.
ONLINE_SERVING_MODULES = (
    "fastapi", "flask", "bentoml", "ray.serve", "kserve", "seldon_core", "mlserver", "ts.torch_handler", "torchserve",
    "litserve", "django", "starlette", "sanic", "tornado.web", "falcon", "quart", "connexion", "cog",
)
#: Serving frameworks and platforms that expose request and latency metrics on their own.
BUILT_IN_METRICS = frozenset({"bentoml", "ray.serve", "kserve", "seldon_core", "mlserver", "ts.torch_handler", "torchserve"})
BUILT_IN_METRICS_PLATFORMS = frozenset({"kserve", "seldon", "triton", "torchserve", "bentoml", "sagemaker", "vertex-ai"})
_CLOSURE_DEPTH = 3


@dataclass(frozen=True)
class ServingApp:
    """An online serving app: its root module, the modules it reaches, and the models they load."""

    root: str
    closure: tuple[str, ...]
    loads: tuple[ModelLoad, ...]
    #: The number of distinct models loaded, or None when a loop, a model selector or a
    #: loader called several times makes the number unknown.
    model_count: int | None
    frameworks: tuple[str, ...]

    @property
    def models(self) -> list[ModelLoad]:
        return [load for load in self.loads if not load.companion]

    def describe(self) -> str:
        models = self.models
        return f"{self.root} ({models[0].describe()})" if models else self.root


#: Folders of examples, documentation snippets and demos: code shown to readers, not run in production.
EXAMPLE_FOLDER = re.compile(r"(^|/)(examples?|docs?|tutorials?|demos?|benchmarks?|notebooks?)/")


def _is_app_root(signals: FileSignals, graph: ModuleGraph, repo: RepoFiles) -> bool:
    if not signals.path.endswith(".py") or is_test_path(signals.path) or EXAMPLE_FOLDER.search(signals.path):
        return False
    if "serving_handler" in signals.signals:
        return True
    # In the repository of a serving framework its own package is local code, not a framework in use.
    frameworks = [
        module for module in ONLINE_SERVING_MODULES
        if graph.imports_module(signals.path, module) and module.split(".")[0] not in graph.local_names
    ]
    if not frameworks:
        return False
    # An app imports its web framework at the top of the module. A library that starts a
    # server as an optional feature (Lightning's servable-module check) imports it inside
    # the function that needs it.
    text = repo.read_text(signals.path) or ""
    return any(re.search(rf"^(?:from|import)\s+{re.escape(module)}\b", text, re.MULTILINE) for module in frameworks)


def _model_count(loads: list[ModelLoad], texts: list[str]) -> int | None:
    models = [load for load in loads if not load.companion]
    if any(load.repeated for load in models):
        return None
    # A loader that takes its path as an argument loads as many models as it has callers.
    if any(load.parameterised_by and count_calls(load.parameterised_by, texts) > 1 for load in models):
        return None
    count = 0
    sources: set[str] = set()
    scopes: dict[tuple[str, str], list[ModelLoad]] = {}
    for load in models:
        scopes.setdefault((load.path, load.scope), []).append(load)
    for group in scopes.values():
        for load in _merge_state_dicts(group):
            if load.source is not None:
                if load.source in sources:
                    continue
                sources.add(load.source)
            count += 1
    return count


#: Loaders that read a state dict rather than a whole model.
_STATE_LOADERS = frozenset({"torch.load", "torch.serialization.load", "safetensors.safe_open"}) | {
    name for name in MODEL_LOADERS if name.startswith("safetensors.")
}


def _merge_state_dicts(group: list[ModelLoad]) -> list[ModelLoad]:
    """Drop the loads of one scope that only fill in another: ``net.load_state_dict(torch.load(path))`` is one model.

    A state dict is counted through the ``load_state_dict`` call that applies it, and that call
    through the load that built its receiver in the same scope (``from_pretrained``), if any.
    """
    applied = [load for load in group if load.call == "load_state_dict"]
    if not applied:
        return group
    targets = {part.strip() for load in group for part in load.target.split(",")}
    kept = [load for load in group if load.call not in _STATE_LOADERS and load.call != "load_state_dict"]
    kept += [load for load in applied if load.receiver not in targets]
    return kept


def _file_backed(loads: list[ModelLoad]) -> list[ModelLoad]:
    """Keep the loads of an imported module that read a model, not a bare ``x.load_state_dict(state)``.

    A library's callbacks and checkpoint helpers call ``load_state_dict`` on whatever they
    are given; Lightning's fine-tuning callback restores optimizer state that way. So in a
    module the app only imports, the call counts only when that module also reads a file.
    """
    if any(load.call in _STATE_LOADERS for load in loads):
        return loads
    return [load for load in loads if load.call != "load_state_dict"]


def build_serving_apps(inventory: Inventory) -> list[ServingApp]:
    graph = module_graph(inventory)
    training = set(inventory.training_files)
    roots = [signals for signals in inventory.code if _is_app_root(signals, graph, inventory.repo)]
    closures = {
        signals.path: graph.closure(
            [signals.path], skip=frozenset(training - {signals.path}), depth=_CLOSURE_DEPTH
        )
        for signals in roots
    }
    # An app module that another app imports (a router included by ``main.py``) belongs to that app.
    reached = {path for root, closure in closures.items() for path in closure if path != root}
    scanned: dict[str, list[ModelLoad]] = {}
    apps = []
    for signals in roots:
        if signals.path in reached:
            continue
        loads: list[ModelLoad] = []
        for path in closures[signals.path]:
            if path not in scanned:
                scanned[path] = scan_model_loads(path, inventory.repo.read_text(path) or "")
            loads.extend(scanned[path] if path == signals.path else _file_backed(scanned[path]))
        if not any(not load.companion for load in loads):
            continue
        texts = [inventory.repo.read_text(path) or "" for path in closures[signals.path]]
        apps.append(
            ServingApp(
                root=signals.path,
                closure=tuple(closures[signals.path]),
                loads=tuple(loads),
                model_count=_model_count(loads, texts),
                frameworks=tuple(module for module in ONLINE_SERVING_MODULES if graph.imports_module(signals.path, module)),
            )
        )
    return apps


def serving_apps(inventory: Inventory) -> list[ServingApp]:
    """Return the online apps that load a model, in path order, computed once per inventory."""
    return inventory.derived("model_serving_apps", build_serving_apps)


def direct_pins(inventory: Inventory, packages: Iterable[str]) -> list[str]:
    """Return the packages that a dependency file other than a lock file requires directly."""
    return [
        package
        for package in packages
        if any("lock" not in pin.source.rsplit("/", 1)[-1] for pin in inventory.pins.get(package, ()))
    ]


def _signals_of(inventory: Inventory, paths: Iterable[str]) -> list[FileSignals]:
    wanted = set(paths)
    return [signals for signals in inventory.code if signals.path in wanted]


def _listing(items: list[str], shown: int = 5) -> str:
    text = ", ".join(items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


# -- AIML402 no-model-monitoring ---------------------------------------------------------

MONITORING_PACKAGES = (
    "prometheus-client", "prometheus-fastapi-instrumentator", "starlette-exporter", "aioprometheus",
    "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation-fastapi", "statsd", "datadog", "ddtrace",
    "evidently", "whylogs", "nannyml", "alibi-detect", "arize", "whylabs-client", "fiddler-client", "deepchecks",
)


def monitoring_evidence(inventory: Inventory) -> list[str]:
    """Return what shows metrics or drift monitoring of served models, for the rule and the report.

    Error trackers (Sentry) do not count: they see exceptions, not predictions.
    """
    found = [label for label in inventory.labels("monitoring") if label != "sentry"]
    found += [f"{path} (managed model monitor)" for path in inventory.files_with("model_monitor")[:1]]
    if inventory.text.metrics_monitoring:
        found.append("a ServiceMonitor, scrape annotation or data capture in the manifests")
    found += direct_pins(inventory, MONITORING_PACKAGES)
    if not found:
        found += _monitoring_configs(inventory)
    return found


#: Monitoring switched on in a deployment configuration: Azure ML Application Insights and
#: data collection, SageMaker data capture, Prometheus scraping.
_MONITORING_CONFIG = re.compile(
    r"appInsightsEnabled\W+true|app_insights_enabled\W+true|collect_model_data|data_collector|DataCaptureConfig|"
    r"EnableCapture\W+true|prometheus\.io/scrape|^kind:\s*(ServiceMonitor|PodMonitor)\b",
    re.IGNORECASE | re.MULTILINE,
)


def _monitoring_configs(inventory: Inventory) -> list[str]:
    found = []
    for path in inventory.repo.paths:
        if path.endswith((".yml", ".yaml", ".json")) and not is_test_path(path):
            text = inventory.repo.read_text(path, limit=200_000) or ""
            if _MONITORING_CONFIG.search(text):
                found.append(path)
    return found


class NoModelMonitoring(RepoRule):
    """Flag model-serving apps in a repository that has no metrics or drift monitoring anywhere."""

    code = "AIML402"
    slug = "no-model-monitoring"
    category = Category.MONITORING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "Missing model monitoring"
    message = "a model is served and nothing records its metrics or watches its inputs for drift"
    impact = (
        "Without request metrics and drift monitoring, a model that degrades (new input distributions, "
        "a broken upstream feature, rising latency) keeps serving wrong predictions until users complain."
    )
    fix = (
        "Export serving metrics (prometheus_client or prometheus-fastapi-instrumentator, OpenTelemetry, "
        "statsd/Datadog) and monitor inputs and predictions for drift (Evidently, whylogs, NannyML, "
        "alibi-detect, or a managed monitor such as SageMaker Model Monitor or Vertex AI model monitoring)."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        apps = serving_apps(inventory)
        if not apps or monitoring_evidence(inventory):
            return
        platforms = set(inventory.text.serving_platforms) & BUILT_IN_METRICS_PLATFORMS
        if platforms:
            return
        for app in apps:
            if set(app.frameworks) & BUILT_IN_METRICS:
                continue
            yield Finding(
                code=self.code,
                path=app.root,
                message=(
                    f"{app.root} serves a model ({app.models[0].describe()}) and the repository has no metrics "
                    "or drift monitoring (Prometheus, OpenTelemetry, statsd/Datadog, Evidently, whylogs, NannyML, "
                    "alibi-detect, a managed model monitor)"
                ),
            )


_FASTAPI_JOBLIB = (
    "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\nmodel = joblib.load('models/churn_v3.joblib')\n\n"
    "@app.post('/predict')\ndef predict(features: list[float]):\n    return {'score': float(model.predict([features])[0])}\n"
)
_FLASK_PICKLE = (
    "import pickle\nfrom flask import Flask, request, jsonify\n\napp = Flask(__name__)\n"
    "with open('model.bin', 'rb') as f_in:\n    dv, model = pickle.load(f_in)\n\n"
    "@app.route('/predict', methods=['POST'])\ndef predict():\n    X = dv.transform([request.get_json()])\n"
    "    return jsonify({'duration': float(model.predict(X)[0])})\n"
)
_SPLIT_APP = {
    "service/main.py": "from fastapi import FastAPI\nfrom service.model import predict_one\n\napp = FastAPI()\n\n"
    "@app.post('/predict')\ndef predict(x: list[float]):\n    return {'y': predict_one(x)}\n",
    "service/model.py": "import torch\n\nnet = torch.jit.load('artifacts/net_v2.pt')\n\n"
    "def predict_one(x):\n    with torch.no_grad():\n        return net(torch.tensor([x])).item()\n",
}
_LLM_ONLY_APP = (
    "from fastapi import FastAPI\nfrom openai import OpenAI\n\napp = FastAPI()\nclient = OpenAI()\n\n"
    "@app.post('/ask')\ndef ask(question: str):\n    reply = client.chat.completions.create(model='gpt-4o', "
    "messages=[{'role': 'user', 'content': question}])\n    return {'answer': reply.choices[0].message.content}\n"
)

NoModelMonitoring.VALID = (
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB + "from prometheus_fastapi_instrumentator import Instrumentator\n"
            "Instrumentator().instrument(app).expose(app)\n"
        }
    ),
    Example(files={"app.py": _FLASK_PICKLE, "monitoring/drift.py": "from evidently.report import Report\n"}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "requirements.txt": "fastapi\nprometheus-client==0.20.0\n"}),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "deploy/monitor.py": "from sagemaker.model_monitor import DefaultModelMonitor\n"
            "monitor = DefaultModelMonitor(role=role, instance_type='ml.m5.xlarge')\n",
        }
    ),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "k8s/servicemonitor.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: churn\n",
        }
    ),
    Example(
        files={
            "service.py": "import bentoml\n\n@bentoml.service\nclass Churn:\n    def __init__(self):\n"
            "        self.model = bentoml.sklearn.load_model('churn:latest')\n"
        }
    ),
    # A web app that loads no model, and an app that only calls an LLM API.
    Example(files={"app.py": "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/health')\ndef health():\n    return 'ok'\n"}),
    Example(files={"app.py": _LLM_ONLY_APP}),
    # A batch script and a Gradio demo are not online serving apps.
    Example(files={"predict.py": "import joblib\nimport pandas as pd\nmodel = joblib.load('model.joblib')\n"
                   "pd.read_csv('in.csv').pipe(model.predict)\n"}),
    Example(files={"demo.py": "import gradio as gr\nimport joblib\nmodel = joblib.load('model.joblib')\n"
                   "gr.Interface(fn=model.predict, inputs='text', outputs='label').launch()\n"}),
    # Monitoring in a test file does not count, but an app under tests/ is no app either.
    Example(files={"tests/test_app.py": _FASTAPI_JOBLIB}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "ops/metrics.py": "from opentelemetry import metrics\n"}),
    # Ray Serve exports request metrics itself, and ``from ray import serve`` imports ``ray.serve``.
    Example(
        files={
            "serve.py": "from ray import serve\nimport torch\n\n@serve.deployment\nclass Model:\n"
            "    def __init__(self):\n        self.net = torch.jit.load('net_v1.pt')\n"
        }
    ),
    # Application Insights switched on in an Azure ML deployment configuration.
    Example(
        files={
            "scoring/score.py": "import joblib\n\ndef init():\n    global model\n    model = joblib.load('m.pkl')\n\n"
            "def run(raw_data):\n    return model.predict(raw_data).tolist()\n",
            "scoring/deployment_config_aks.yml": "computeType: AKS\nappInsightsEnabled: True\n",
        }
    ),
    # An Azure ML batch scoring step (``run(mini_batch)``) is batch inference, not an online app.
    Example(files={"scoring/batch.py": "import joblib\n\ndef init():\n    global model\n    model = joblib.load('m.pkl')\n\n"
                   "def run(mini_batch):\n    return mini_batch\n"}),
    # The repository of a serving framework: its own package is not a framework in use.
    Example(
        files={
            "src/flask/__init__.py": "",
            "src/flask/cli.py": "import flask\nimport joblib\nmodel = joblib.load('model.joblib')\n",
        }
    ),
    Example(files={"docs/snippets/service.py": _FASTAPI_JOBLIB, "examples/quickstart/app.py": _FLASK_PICKLE}),
)
NoModelMonitoring.INVALID = (
    Example(files={"app.py": _FASTAPI_JOBLIB}),
    Example(files={"predict.py": _FLASK_PICKLE, "requirements.txt": "flask\nscikit-learn\n"}),
    Example(files=_SPLIT_APP),
    Example(files={"app.py": _FASTAPI_JOBLIB, "errors.py": "import sentry_sdk\nsentry_sdk.init()\n"}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "tests/test_metrics.py": "import prometheus_client\n"}),
)


# -- AIML403 no-ab-testing --------------------------------------------------------------

FEATURE_FLAG_PACKAGES = (
    "launchdarkly-server-sdk", "unleashclient", "growthbook", "flagsmith", "openfeature-sdk", "statsig",
    "optimizely-sdk", "eppo-server-sdk", "splitio-client",
)


def routing_evidence(inventory: Inventory) -> list[str]:
    """Return what routes traffic between model versions: flags, traffic splits, shadow or canary set-ups."""
    found = list(inventory.labels("feature_flags"))
    found += [f"{path} (traffic routing)" for path in inventory.files_with("model_routing")[:1]]
    if inventory.text.canary_routing:
        found.append("a traffic split, canary or shadow in the manifests")
    found += direct_pins(inventory, FEATURE_FLAG_PACKAGES)
    return found


class NoAbTesting(RepoRule):
    """Flag serving apps that load a single model and have no way to route traffic to another version."""

    code = "AIML403"
    slug = "no-ab-testing"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.HIGH
    anti_pattern = "No A/B testing infrastructure"
    message = "a single model is served with no canary, shadow, traffic split or experiment assignment"
    impact = (
        "A new model version can only replace the old one for all traffic at once: a regression reaches "
        "every user before anyone can compare it with the current model on live data."
    )
    fix = (
        "Route a share of traffic to the candidate model: a KServe canaryTrafficPercent, Seldon traffic, "
        "Istio VirtualService weights, SageMaker production variants or an Argo Rollouts canary, or assign "
        "requests in code through a feature flag (LaunchDarkly, Unleash, GrowthBook, OpenFeature) or a "
        "shadow deployment that scores without answering."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        apps = [app for app in serving_apps(inventory) if app.model_count == 1]
        if not apps or routing_evidence(inventory):
            return
        for app in apps:
            yield Finding(
                code=self.code,
                path=app.root,
                message=(
                    f"{app.root} serves one model ({app.models[0].describe()}) and nothing routes traffic to "
                    "another version: no canary, shadow, traffic split, feature flag or experiment assignment"
                ),
            )


NoAbTesting.VALID = (
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "k8s/inference.yaml": "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
            "metadata:\n  name: churn\nspec:\n  predictor:\n    canaryTrafficPercent: 10\n",
        }
    ),
    Example(
        files={
            "app.py": "import joblib\nimport ldclient\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"
            "current = joblib.load('models/churn_v3.joblib')\ncandidate = joblib.load('models/churn_v4.joblib')\n"
        }
    ),
    Example(
        files={
            "app.py": "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"
            "MODELS = {v: joblib.load(f'models/churn_{v}.joblib') for v in ('v3', 'v4')}\n\n"
            "@app.post('/predict/{version}')\ndef predict(version: str, x: list[float]):\n"
            "    return {'y': MODELS[version].predict([x]).tolist()}\n"
        }
    ),
    Example(
        files={
            "app.py": "import mlflow\nfrom fastapi import FastAPI\n\napp = FastAPI()\n\n"
            "def load(model_version):\n    return mlflow.pyfunc.load_model(f'models:/churn/{model_version}')\n"
        }
    ),
    Example(files={"app.py": _FASTAPI_JOBLIB, "routing.py": "def pick(user_id):\n    return 'challenger' if hash(user_id) % 10 == 0 else 'champion'\n"}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "requirements.txt": "fastapi\ngrowthbook==1.1.0\n"}),
    # Blue/green weights set by the release pipeline.
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            ".pipelines/abtest.yml": "trigger: none\nsteps:\n- task: HelmDeploy@0\n  inputs:\n"
            "    overrideValues: 'weight.blue=50,weight.green=50'\n",
        }
    ),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "deploy/endpoint.py": "import boto3\nsm = boto3.client('sagemaker')\n"
            "sm.create_endpoint_config(EndpointConfigName='c', ProductionVariants=[a, b])\n",
        }
    ),
    Example(files={"app.py": _LLM_ONLY_APP}),
    # Two models served side by side: the count is not one.
    Example(
        files={
            "app.py": "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"
            "churn = joblib.load('models/churn.joblib')\nfraud = joblib.load('models/fraud.joblib')\n"
        }
    ),
    # A loader called twice with different paths loads two models.
    Example(
        files={
            "app.py": "import joblib\nfrom flask import Flask\n\napp = Flask(__name__)\n\n"
            "def load(path):\n    return joblib.load(path)\n\nmodel_a = load('a.joblib')\nmodel_b = load('b.joblib')\n"
        }
    ),
)
NoAbTesting.INVALID = (
    Example(files={"app.py": _FASTAPI_JOBLIB}),
    Example(files={"app.py": _FLASK_PICKLE}),
    Example(files=_SPLIT_APP),
    # A state dict loaded and applied is one model, and the tokenizer is its companion.
    Example(
        files={
            "serve.py": "import torch\nfrom fastapi import FastAPI\nfrom transformers import AutoTokenizer, "
            "AutoModelForSequenceClassification\n\napp = FastAPI()\n"
            "tokenizer = AutoTokenizer.from_pretrained('distilbert-base-uncased')\n"
            "model = AutoModelForSequenceClassification.from_pretrained('distilbert-base-uncased')\n"
            "model.load_state_dict(torch.load('weights/finetuned_v1.pt', weights_only=True))\n"
        }
    ),
    Example(
        files={
            "app.py": "import joblib\nfrom flask import Flask\n\napp = Flask(__name__)\n\n"
            "class Predictor:\n    def __init__(self, model_path):\n        self.model = joblib.load(model_path)\n\n"
            "predictor = Predictor('model_v2.joblib')\n"
        }
    ),
)


# -- AIML405 no-fallback-model -----------------------------------------------------------


def _error_value(node: ast.expr | None) -> bool:
    """Tell whether a returned value is an error response rather than a prediction."""
    if node is None or (isinstance(node, ast.Constant) and node.value is None):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(re.search(r"error|fail|unavailable", node.value, re.IGNORECASE))
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Dict):
        keys = {key.value.lower() for key in node.keys if isinstance(key, ast.Constant) and isinstance(key.value, str)}
        return bool(keys & {"error", "errors", "detail", "message", "msg", "status", "exception"})
    if isinstance(node, ast.Tuple):
        return any(
            (isinstance(element, ast.Constant) and isinstance(element.value, int) and element.value >= 400)
            or _error_value(element)
            for element in node.elts
        )
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func).lower()
        if any(word in name for word in ("error", "abort", "exception", "fail")):
            return True
        if any(keyword.arg in ("status_code", "status") for keyword in node.keywords):
            return True
        return any(_error_value(argument) for argument in node.args)
    return False


def _runs_model(node: ast.AST, model_names: set[str]) -> bool:
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call):
            continue
        func = sub.func
        if isinstance(func, ast.Attribute) and func.attr in MODEL_CALL_METHODS:
            return True
        if ast.unparse(func) in model_names:
            return True
    return False


def fallback_handlers(text: str, model_names: set[str]) -> list[int]:
    """Return the lines of ``except`` blocks around a model call that return a value instead of an error."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try) or not any(_runs_model(statement, model_names) for statement in node.body):
            continue
        for handler in node.handlers:
            if any(isinstance(sub, ast.Raise) for sub in ast.walk(handler)):
                continue
            answers = [
                sub for sub in ast.walk(handler)
                if isinstance(sub, ast.Return) and not _error_value(sub.value)
                or isinstance(sub, ast.Assign) and not _error_value(sub.value)
            ]
            if answers:
                lines.append(handler.lineno)
    return lines


class NoFallbackModel(RepoRule):
    """Flag serving apps that depend on exactly one model with no fallback when it fails."""

    code = "AIML405"
    slug = "no-fallback-model"
    category = Category.SERVING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "No fallback model"
    message = "the served model has no fallback: a failed load or prediction fails every request"
    impact = (
        "When the only model fails to load, times out or raises on an unexpected input, the service "
        "returns errors for every request instead of a degraded but useful answer."
    )
    fix = (
        "Give the prediction path a fallback: catch the model's failure and answer from a secondary model "
        "(the previous version, a simpler baseline), a cached or default prediction, or business rules; "
        "put a circuit breaker (pybreaker, circuitbreaker) in front of a remote model."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        for app in serving_apps(inventory):
            if app.model_count != 1 or self._has_fallback(inventory, app):
                continue
            yield Finding(
                code=self.code,
                path=app.root,
                message=(
                    f"{app.root} serves one model ({app.models[0].describe()}) and no fallback path: no secondary "
                    "model, default prediction, rule-based answer in an except block or circuit breaker"
                ),
            )

    @staticmethod
    def _has_fallback(inventory: Inventory, app: ServingApp) -> bool:
        closure = _signals_of(inventory, app.closure)
        if any("fallback" in signals.signals or group_members(signals, "circuit_breaker") for signals in closure):
            return True
        model_names = {part.strip() for load in app.models for part in load.target.split(",") if part.strip()}
        return any(fallback_handlers(inventory.repo.read_text(path) or "", model_names) for path in app.closure)


NoFallbackModel.VALID = (
    Example(
        files={
            "app.py": "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"
            "model = joblib.load('models/churn_v3.joblib')\nBASELINE_SCORE = 0.12\n\n"
            "@app.post('/predict')\ndef predict(x: list[float]):\n    try:\n"
            "        return {'score': float(model.predict_proba([x])[0, 1])}\n    except ValueError:\n"
            "        return {'score': BASELINE_SCORE, 'degraded': True}\n"
        }
    ),
    Example(
        files={
            "app.py": "import joblib\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"
            "primary = joblib.load('models/churn_v3.joblib')\nbaseline = joblib.load('models/churn_logreg.joblib')\n"
        }
    ),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB.replace("import joblib\n", "import joblib\nfrom rules import fallback_score\n"),
            "rules.py": "def fallback_score(x):\n    return 0.1\n",
        }
    ),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB.replace("import joblib\n", "import joblib\nimport pybreaker\n")
            + "breaker = pybreaker.CircuitBreaker(fail_max=5)\n"
        }
    ),
    Example(files={"app.py": _LLM_ONLY_APP}),
    Example(
        files={
            "app.py": "from fastapi import FastAPI\nfrom openai import OpenAI\n\napp = FastAPI()\nclient = OpenAI()\n\n"
            "@app.post('/summarise')\ndef summarise(text: str):\n    return client.responses.create(model='gpt-4o', input=text)\n"
        }
    ),
    Example(
        files={
            "app.py": "import torch\nfrom flask import Flask\n\napp = Flask(__name__)\n"
            "models = [torch.jit.load(p) for p in ('a.pt', 'b.pt')]\n"
        }
    ),
)
NoFallbackModel.INVALID = (
    Example(files={"app.py": _FASTAPI_JOBLIB}),
    Example(files=_SPLIT_APP),
    # Catching the failure only to return an error is no fallback.
    Example(
        files={
            "app.py": "import joblib\nfrom flask import Flask, jsonify, request\n\napp = Flask(__name__)\n"
            "model = joblib.load('model_v1.joblib')\n\n@app.route('/predict', methods=['POST'])\ndef predict():\n"
            "    try:\n        return jsonify({'y': model.predict([request.json['x']]).tolist()})\n"
            "    except Exception as error:\n        return jsonify({'error': str(error)}), 500\n"
        }
    ),
    Example(
        files={
            "app.py": "import joblib\nfrom fastapi import FastAPI, HTTPException\n\napp = FastAPI()\n"
            "model = joblib.load('model_v1.joblib')\n\n@app.post('/predict')\ndef predict(x: list[float]):\n"
            "    try:\n        return {'y': model.predict([x]).tolist()}\n"
            "    except ValueError as error:\n        raise HTTPException(status_code=422, detail=str(error))\n"
        }
    ),
    # A fallback in another app's modules does not help this app.
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "batch/score.py": "def fallback():\n    return 0.0\n",
        }
    ),
)


# -- AIML410 no-load-testing -------------------------------------------------------------

LOAD_TEST_PACKAGES = ("locust", "molotov")
_LOAD_TEST_SCRIPT = re.compile(
    r"\blocust\b|\bk6\s+run|vegeta\s+attack|\bwrk\s+-|\bhey\s+-|\bab\s+-[nc]|artillery\s+(run|quick)|\bjmeter\b",
    re.IGNORECASE,
)


def load_test_evidence(inventory: Inventory) -> list[str]:
    """Return the load-test definitions or commands of the repository."""
    found = list(inventory.load_test_files)
    found += inventory.labels("load_testing", tests=True)
    if inventory.text.ci_load_tests:
        found.append("a load-test command in CI")
    found += direct_pins(inventory, LOAD_TEST_PACKAGES)
    for path in inventory.repo.paths:
        name = path.rsplit("/", 1)[-1]
        if name in ("Makefile", "justfile", "noxfile.py", "tox.ini") or name.endswith(".sh"):
            text = inventory.repo.read_text(path, limit=200_000) or ""
            if _LOAD_TEST_SCRIPT.search(text):
                found.append(path)
    return found


class NoLoadTesting(RepoRule):
    """Flag a repository that serves models online and never load-tests the service."""

    code = "AIML410"
    slug = "no-load-testing"
    category = Category.SERVING
    priority = Priority.LOW
    effort = Effort.LOW
    anti_pattern = "No load testing"
    message = "a model is served online and no load test exercises the service"
    impact = (
        "Without a load test nobody knows the throughput and tail latency the service sustains, how many "
        "replicas it needs, or where it breaks; the first traffic spike finds out in production."
    )
    fix = (
        "Add a load test of the prediction endpoint (a locustfile.py, a k6 script, Vegeta or wrk targets) "
        "with realistic payloads, run it against a staging deployment in CI, and record p95/p99 latency "
        "and the maximum sustained requests per second."
    )

    def check(self, inventory: Inventory) -> Iterator[Finding]:
        apps = serving_apps(inventory)
        if not apps or load_test_evidence(inventory):
            return
        roots = [app.root for app in apps]
        yield Finding(
            code=self.code,
            path=roots[0],
            message=(
                f"online model serving in {_listing(roots)} and no load test (locustfile, k6, Vegeta, wrk, hey, "
                "Artillery, Gatling or JMeter definitions, or a load-test step in CI)"
            ),
        )


NoLoadTesting.VALID = (
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            "loadtest/locustfile.py": "from locust import HttpUser, task\n\nclass Client(HttpUser):\n"
            "    @task\n    def predict(self):\n        self.client.post('/predict', json=[0.1, 0.2])\n",
        }
    ),
    Example(files={"app.py": _FASTAPI_JOBLIB, "perf/predict.k6.js": "import http from 'k6/http';\n"}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "requirements-dev.txt": "locust==2.29.0\n"}),
    Example(
        files={
            "app.py": _FASTAPI_JOBLIB,
            ".github/workflows/perf.yml": "jobs:\n  perf:\n    runs-on: ubuntu-latest\n    steps:\n"
            "      - run: k6 run perf/script.js\n",
        }
    ),
    Example(files={"app.py": _FASTAPI_JOBLIB, "Makefile": "bench:\n\they -n 1000 -c 20 http://localhost:8000/predict\n"}),
    Example(files={"app.py": _FASTAPI_JOBLIB, "charts/load_test.sh": "#!/bin/sh\nfor i in $(seq 100); do curl -s $URL; done\n"}),
    Example(files={"app.py": _LLM_ONLY_APP}),
    Example(files={"train.py": "from sklearn.linear_model import LogisticRegression\nLogisticRegression().fit(X, y)\n"}),
)
NoLoadTesting.INVALID = (
    Example(files={"app.py": _FASTAPI_JOBLIB}),
    Example(files={**_SPLIT_APP, "tests/test_main.py": "from service.main import app\n"}),
    Example(files={"app.py": _FLASK_PICKLE, "Makefile": "run:\n\tpython app.py\n"}),
)


RULES = (NoModelMonitoring, NoAbTesting, NoFallbackModel, NoLoadTesting)
