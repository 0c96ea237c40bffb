"""The repository-level inventory: the facts behind the report and the repository rules."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, TypeVar

from pytest_aiml.engine.cache import SignalsCache
from pytest_aiml.engine.constants import LiteralConstant
from pytest_aiml.artifacts.versioning import version_from_name
from pytest_aiml.engine.dependencies import Pin, collect_pins, is_development_pin
from pytest_aiml.engine.discovery import FileKind, RepoFiles, classify, is_test_path
from pytest_aiml.engine.reads import ReadLog
from pytest_aiml.engine.signals import MODULE_GROUPS, FileSignals, file_signals, group_members
from pytest_aiml.engine.views import imported_names, literal_constants

T = TypeVar("T")

_TRAINING_SCRIPT_NAME = re.compile(r"(^|/)(train[\w-]*|[\w-]*_train|[\w-]*trainer[\w-]*)\.py$", re.IGNORECASE)
_SERVING_PATH = re.compile(r"(^|/)(serve|serving|server|api|app|predict|predictor|inference|infer|handler|service)[\w-]*(\.py|/)")
_LOAD_TEST = re.compile(
    r"(^|/)(locustfile[\w-]*\.py|[\w-]*load[_-]?test[\w-]*\.(py|js|ts|yaml|yml|sh)|[\w-]*\.k6\.js|vegeta[\w-]*|wrk[\w-]*\.lua"
    r"|[\w-]*\.jmx|artillery[\w-]*\.ya?ml|[\w-]*Simulation\.scala|(locust|k6|loadtests?|load[_-]tests?|perf[_-]tests?)/[^/]+)$",
    re.IGNORECASE,
)
#: CI configurations that discovery does not classify: nested Jenkinsfiles, Azure and GitLab
#: includes, AWS CodeBuild, Tekton, Woodpecker.
_MORE_CI_FILES = re.compile(
    r"(^|/)Jenkinsfile[\w.-]*$|^\.azure-pipelines/[^/]+\.ya?ml$|^azure-pipelines[\w.-]*\.ya?ml$|^\.gitlab/ci/[^/]+\.ya?ml$"
    r"|^buildspec[\w.-]*\.ya?ml$|^cloudbuild[\w.-]*\.ya?ml$|^\.tekton/[^/]+\.ya?ml$|^\.woodpecker(\.ya?ml|/[^/]+\.ya?ml)$"
    r"|^\.pipelines/[^/]+\.ya?ml$"
)
#: An Azure DevOps pipeline, which may live under any name: a trigger plus stages, jobs or steps.
_AZURE_PIPELINE = re.compile(r"^(trigger|pr):(?s:.*)^(stages|jobs|steps|pool):", re.MULTILINE)
_MODEL_CARD = re.compile(r"(^|/)(MODEL_CARD|model[_-]card|modelcard)[\w.-]*\.(md|ya?ml|json)$", re.IGNORECASE)
_PROMPT_FILE = re.compile(r"(^|/)prompts?/[^/]+\.(txt|md|ya?ml|json|jinja2?|j2|prompt)$", re.IGNORECASE)
_DATA_FOLDER = re.compile(r"(^|/)(data|datasets?|raw|corpus|corpora|samples)/", re.IGNORECASE)
_PROJECT_TEXT_FILE = re.compile(
    r"(^|/)(licen[cs]e|copying|notice|authors|contributors|maintainers|codeowners|readme|changelog|changes|history|"
    r"citation|security|credits|thanks|patents|cmakelists|robots)[\w.-]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ModelFile:
    """A model artifact found by name; the artifact inspection refines these fields."""

    location: str
    name: str
    framework: str
    size_bytes: int
    version: str | None


@dataclass(frozen=True)
class TextFacts:
    """Signals of CI, deployment and dependency files, found in their text."""

    ci_files: tuple[str, ...] = ()
    ci_tests: bool = False
    ci_deploys: bool = False
    ci_trains: bool = False
    ci_scheduled_training: bool = False
    deployment_files: tuple[str, ...] = ()
    kubernetes: bool = False
    autoscaling: bool = False
    serving_platforms: tuple[str, ...] = ()
    gpu_types: tuple[str, ...] = ()
    alerting: bool = False
    canary_routing: bool = False
    #: CI builds a package or an image: ``docker build``, ``python -m build``, ``bentoml build``...
    ci_builds: bool = False
    #: Manifests that scrape or capture the service: a ServiceMonitor, Prometheus scrape
    #: annotations, SageMaker data capture or a monitoring schedule.
    metrics_monitoring: bool = False
    #: CI runs a load-testing tool: Locust, k6, Vegeta, wrk, hey, ab, Artillery, Gatling, JMeter.
    ci_load_tests: bool = False
    dvc: bool = False
    git_lfs: bool = False
    orchestrators: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """Everything the repository rules and the report need, computed once per run."""

    repo: RepoFiles
    code: tuple[FileSignals, ...]
    text: TextFacts
    models: tuple[ModelFile, ...]
    pins: Mapping[str, tuple[Pin, ...]] = field(default_factory=dict)
    #: What building the inventory read, so that results computed from it can be cached by those reads.
    reads: ReadLog = field(default_factory=ReadLog, compare=False, repr=False)
    #: Preprocessing constants by path, filled on first use, so only the modules a rule looks up are parsed.
    _constants: dict[str, Mapping[str, LiteralConstant]] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: Facts that rules derive from the inventory, computed once per run by the first rule that needs them.
    _derived: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def derived(self, key: str, compute: Callable[[Inventory], T]) -> T:
        """Return ``compute(self)``, computed once per inventory and ``key``, for facts several rules share."""
        if key not in self._derived:
            self._derived[key] = compute(self)
        return self._derived[key]  # type: ignore[return-value]

    # -- helpers ---------------------------------------------------------------------

    def files_with(self, signal: str, *, tests: bool = False) -> list[str]:
        return [f.path for f in self.code if signal in f.signals and (tests or not is_test_path(f.path))]

    def labels(self, group: str, *, tests: bool = False) -> list[str]:
        """Return the labels of a module group used anywhere, most used first, ties by name."""
        counts: Counter[str] = Counter()
        for signals in self.code:
            if not tests and is_test_path(signals.path):
                continue
            counts.update(set(group_members(signals, group)))
        return [label for label, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]

    def dependency_labels(self, group: str) -> list[str]:
        """Return the labels of a module group that the dependency files name, in table order.

        A package's distribution name usually matches its module (``scikit-learn`` is the
        exception the table's aliases cover), so this finds libraries the scanned code
        reaches only indirectly, like providers loaded by ``init_chat_model("anthropic:...")``.
        Files for tests, docs or linters (``requirements/test.txt``) do not count: a
        library the tests need is not one the code runs on.
        """
        named = {
            package for package, pins in self.pins.items() if any(not is_development_pin(pin) for pin in pins)
        }
        found = []
        for module, label in MODULE_GROUPS[group].items():
            names = {module.split(".")[0].replace("_", "-"), *_DISTRIBUTION_ALIASES.get(module, ())}
            if not named.isdisjoint(names) and label not in found:
                found.append(label)
        return found

    def files_importing(self, group: str) -> list[str]:
        return [f.path for f in self.code if group_members(f, group)]

    @property
    def training_files(self) -> list[str]:
        """Return the non-test files that contain training code."""
        found = []
        for signals in self.code:
            if is_test_path(signals.path):
                continue
            names = signals.signals
            loop = "backward_call" in names and "optimizer_step" in names
            if loop or "fit_call" in names or ("lightning_trainer" in names and "fit_call" in names):
                found.append(signals.path)
        return found

    @property
    def training_scripts(self) -> list[str]:
        """Return training entry points: ``train*.py``-style names, or training code under a main guard."""
        scripts = {
            path for path in self.repo.of_kind(FileKind.PYTHON)
            if _TRAINING_SCRIPT_NAME.search(path) and not is_test_path(path)
        }
        main_modules = {f.path for f in self.code if "main_guard" in f.signals}
        scripts.update(path for path in self.training_files if path in main_modules and path.endswith(".py"))
        return sorted(scripts)

    @property
    def notebooks(self) -> tuple[str, ...]:
        return self.repo.of_kind(FileKind.NOTEBOOK)

    @property
    def serving_files(self) -> list[str]:
        """Return non-test modules that import a serving framework or sit on a serving path."""
        found = set(self.files_importing("serving_framework"))
        found.update(f.path for f in self.code if _SERVING_PATH.search(f.path) and "predict" in self._text_hint(f))
        return sorted(path for path in found if not is_test_path(path) and not path.endswith(".ipynb"))

    def _text_hint(self, signals: FileSignals) -> str:
        # Serving-path modules count only when they load or call a model.
        return "predict" if signals.modules & {"torch", "onnxruntime", "joblib", "tensorflow", "sklearn", "transformers"} else ""

    def literal_constants(self, path: str) -> Mapping[str, LiteralConstant]:
        """Return the module-level preprocessing constants that a Python file or notebook writes as literals.

        Line numbers of a notebook count lines of its code cells joined together.
        """
        if path not in self._constants:
            # Read through a view, so that an edit leaving the constants as they are (a comment,
            # a change inside a function) keeps the repository rules' cached results valid.
            self._constants[path] = self.repo.read_view(path, "preprocessing-constants") or {}
        return self._constants[path]

    @property
    def load_test_files(self) -> list[str]:
        return [path for path in self.repo.paths if _LOAD_TEST.search(path)]

    @property
    def model_cards(self) -> list[str]:
        return [path for path in self.repo.paths if _MODEL_CARD.search(path)]

    @property
    def prompt_files(self) -> list[str]:
        return [path for path in self.repo.paths if _PROMPT_FILE.search(path)]

    @property
    def data_files(self) -> list[str]:
        """Return the non-test data files: data suffixes, plus suffix-less files inside a data folder.

        Test data is left out because fixtures are usually synthetic, and project files
        such as ``LICENSE.txt`` or ``AUTHORS`` are left out because they are not data.
        """
        return [
            path for path in self.repo.paths
            if not is_test_path(path) and not _PROJECT_TEXT_FILE.search(path)
            and (classify(path) is FileKind.DATA or _is_plain_data_file(path))
        ]


def _is_plain_data_file(path: str) -> bool:
    """Tell whether a file without a suffix (and not a dotfile) sits in a data folder: ``data/raw/emails``."""
    pure = PurePosixPath(path)
    return not pure.suffix and not pure.name.startswith(".") and bool(_DATA_FOLDER.search(path))


def build_inventory(repo: RepoFiles, signals_cache: SignalsCache | None = None) -> Inventory:
    """Read the text of every source, notebook, CI, deployment and dependency file once.

    With ``signals_cache``, the signals of a file whose bytes are unchanged come from
    the cache instead of another search of its text.
    """
    with repo.reads.recording() as reads:
        # Each file is read as its "signals" view, so results computed from the inventory
        # stay valid after an edit that leaves the signals as they were.
        code = []
        for path in repo.of_kind(FileKind.PYTHON, FileKind.NOTEBOOK):
            signals = repo.read_view(path, "signals", lambda content, path=path: _signals(path, content, signals_cache))
            if signals is not None:
                code.append(signals)
        if signals_cache is not None:
            signals_cache.save()
        text, models, pins = _text_facts(repo), tuple(_model_files(repo)), collect_pins(repo)
    return Inventory(repo=repo, code=tuple(code), text=text, models=models, pins=pins, reads=reads)


def _signals(path: str, content: bytes | None, signals_cache: SignalsCache | None) -> FileSignals | None:
    """Return a file's signals: from the cache when its bytes are known, otherwise searched and then cached."""
    if content is None:
        return None
    key = signals_cache.key(path, content) if signals_cache is not None else ""
    cached = signals_cache.get(key) if signals_cache is not None else None
    if cached is not None:
        return FileSignals(path=path, modules=cached[0], signals=cached[1])
    signals = file_signals(path, content.decode("utf-8-sig", errors="replace"))
    if signals is not None and signals_cache is not None:
        signals_cache.put(key, signals.modules, signals.signals)
    return signals


#: Names of training scripts in any letter case: those of ``_TRAINING_SCRIPT_NAME`` and more.
_TRAINING_NAME = re.compile(r"(^|/)[\w-]*train[\w-]*\.py$", re.IGNORECASE)
_TRAINING_SIGNALS = frozenset({"backward_call", "optimizer_step", "fit_call"})


def views_ahead(path: str, text: str, signals: FileSignals | None) -> dict[str, Any]:
    """Compute the views of a file that the repository rules will likely read, during a cold scan.

    The repository rules wait for the end of the scan and then run on one core, so views
    computed in the scan's pool, beside the signals, spare them that time. Which views is
    a guess, and never changes a result: a view left out is computed when it is read, and
    one added costs only time. The module graph reads the imports of every Python module.
    AIML804 reads the constants of training modules (``training_files`` and
    ``training_scripts``, found here with a wider net) when the repository also has serving
    modules. Those of serving modules are left to be read: they are few and short, and a
    library with serving code but no training would compute them for nothing.
    """
    if signals is None:
        return {}
    views: dict[str, Any] = {}
    if path.endswith(".py"):
        views["imports"] = imported_names(path, text)
    if not is_test_path(path) and (_TRAINING_NAME.search(path) or not _TRAINING_SIGNALS.isdisjoint(signals.signals)):
        views["preprocessing-constants"] = literal_constants(path, text)
    return views


def is_training_script_name(path: str) -> bool:
    """Tell whether a file name marks a training entry point: ``train.py``, ``train_bert.py``, ``model_train.py``, ``trainer.py``."""
    return bool(_TRAINING_SCRIPT_NAME.search(path))


#: Distribution names that differ from the module they install.
_DISTRIBUTION_ALIASES = {
    "sklearn": ("scikit-learn",), "langchain_openai": ("langchain-openai",),
    "langchain_anthropic": ("langchain-anthropic",), "langchain_google_genai": ("langchain-google-genai",),
    "google.generativeai": ("google-generativeai", "google-genai"), "llama_index": ("llama-index",),
    "qdrant_client": ("qdrant-client",), "pinecone": ("pinecone-client", "pinecone"),
    "alibi_detect": ("alibi-detect",), "prometheus_client": ("prometheus-client",),
    "great_expectations": ("great-expectations",), "nemoguardrails": ("nemoguardrails",),
    "guardrails": ("guardrails-ai",), "llm_guard": ("llm-guard",), "comet_ml": ("comet-ml",),
    "opentelemetry": ("opentelemetry-api", "opentelemetry-sdk"), "sentry_sdk": ("sentry-sdk",),
}

_FRAMEWORK_BY_SUFFIX = {
    ".pt": "pytorch", ".pth": "pytorch", ".pt2": "pytorch", ".ckpt": "pytorch", ".bin": "unknown",
    ".onnx": "onnx", ".safetensors": "safetensors", ".h5": "keras", ".hdf5": "keras", ".keras": "keras",
    ".pb": "tensorflow", ".tflite": "tensorflow-lite", ".pkl": "pickle", ".pickle": "pickle",
    ".joblib": "scikit-learn", ".gguf": "gguf", ".mar": "torchserve", ".npy": "numpy", ".npz": "numpy",
    ".ubj": "xgboost", ".mlmodel": "coreml", ".msgpack": "flax",
}


def _model_files(repo: RepoFiles) -> list[ModelFile]:
    models = []
    for path in repo.of_kind(FileKind.MODEL):
        pure = PurePosixPath(path)
        size = repo.size(path) or 0
        models.append(
            ModelFile(
                location=path,
                name=pure.stem,
                framework=_FRAMEWORK_BY_SUFFIX.get(pure.suffix.lower(), "unknown"),
                size_bytes=size,
                version=version_from_name(path),
            )
        )
    return models


_GPU_TYPE = re.compile(
    r"\b(A100|H100|H200|A10G?|L4|L40S?|T4|V100|P100|K80|RTX ?\d{4}|MI\d{3}X?|TPU v\d\w*)\b"
    r"|nvidia-tesla-(\w+)|nvidia-(a100|h100|l4|t4)\w*|\b(ml\.)?(p3|p4d|p5|g4dn|g5|g6)\.\w+",
    re.IGNORECASE,
)
_TRAIN_COMMAND = re.compile(r"(python\s+(-m\s+)?[\w./-]*train[\w./-]*|dvc\s+repro|train\.py|\btrain\b[\w-]*:)", re.IGNORECASE)
_TEST_COMMAND = re.compile(
    r"\b(pytest|tox|nox|unittest|make\s+(test|check|ci)\w*|(hatch|npm|just|poe|invoke)\s+(run\s+)?test\w*)\b|\btest[\w-]*\.sh\b"
)
_DEPLOY_COMMAND = re.compile(
    r"(docker\s+(build|push)|kubectl\s+apply|helm\s+(upgrade|install)|gcloud\s+(run|ai)|aws\s+sagemaker|"
    r"sam\s+deploy|serverless\s+deploy|mlflow\s+models\s+(serve|build)|bentoml\s+(build|deploy)|"
    r"docker/build-push-action|deploy)",
    re.IGNORECASE,
)
_BUILD_COMMAND = re.compile(
    r"(docker\s+(build|buildx|compose\s+build)|docker/build-push-action|python\s+-m\s+build|(poetry|uv|hatch|pdm)\s+build|"
    r"pip\s+wheel|bentoml\s+build|mlflow\s+models\s+build|gcloud\s+builds\s+submit|sam\s+build|make\s+build|"
    r"kaniko|buildah\s+bud|torch-model-archiver)",
    re.IGNORECASE,
)
_LOAD_TEST_COMMAND = re.compile(
    r"\blocust\b|\bk6\s+run|grafana/k6|vegeta\s+attack|\bwrk\s+-|\bhey\s+-|\bab\s+-[nc]|artillery\s+(run|quick)|"
    r"\bgatling\b|\bjmeter\b",
    re.IGNORECASE,
)


def _more_ci_files(repo: RepoFiles) -> Iterator[str]:
    for path in repo.paths:
        if _MORE_CI_FILES.search(path):
            yield path
        elif (path.endswith((".yml", ".yaml")) and classify(path) is not FileKind.CI
              and any(word in path.lower() for word in ("azure", "pipeline", "ci/"))):
            text = repo.read_text(path, limit=200_000)
            if text is not None and _AZURE_PIPELINE.search(text):
                yield path


def _text_facts(repo: RepoFiles) -> TextFacts:
    ci_files = tuple(sorted({*repo.of_kind(FileKind.CI), *_more_ci_files(repo)}))
    ci_text = "\n".join(text for path in ci_files if (text := repo.read_text(path)) is not None)
    deployment_files = repo.of_kind(FileKind.DEPLOYMENT)
    # Only deployment manifests and Kubernetes-style YAML count: an arbitrary YAML file
    # (a config, or an earlier report of this tool) saying "autoscaling" proves nothing.
    manifests = set(deployment_files)
    for path in repo.paths:
        if path.endswith((".yaml", ".yml", ".json", ".tf")) and path not in manifests:
            text = repo.read_text(path, limit=500_000)
            if text is not None and re.search(r"^(apiVersion|kind|resource|AWSTemplateFormatVersion)\b", text, re.MULTILINE):
                manifests.add(path)
    deploy_text = "\n".join(
        text for path in sorted(manifests) if (text := repo.read_text(path, limit=500_000)) is not None
    )
    gitattributes = repo.read_text(".gitattributes") or ""
    platforms = []
    for label, pattern in (
        ("kserve", r"serving\.kserve\.io|InferenceService"),
        ("seldon", r"machinelearning\.seldon\.io|SeldonDeployment"),
        ("triton", r"tritonserver|nvcr\.io/nvidia/tritonserver|config\.pbtxt"),
        ("torchserve", r"torchserve|torch-model-archiver"),
        ("sagemaker", r"sagemaker"),
        ("vertex-ai", r"aiplatform|vertex"),
        ("bentoml", r"bentoml|bentofile"),
        ("cloud-run", r"gcloud\s+run|run\.googleapis"),
        ("aws-lambda", r"AWS::Serverless|aws_lambda|lambda_handler"),
    ):
        if re.search(pattern, deploy_text + "\n" + ci_text, re.IGNORECASE):
            platforms.append(label)
    orchestrators = []
    if "dvc.yaml" in repo.paths:
        orchestrators.append("dvc")
    if re.search(r"argoproj\.io", deploy_text):
        orchestrators.append("argo")
    scheduled = bool(re.search(r"^\s*schedule\s*:|cron\s*:", ci_text, re.MULTILINE))
    trains_in_ci = bool(_TRAIN_COMMAND.search(ci_text))
    gpu_types = sorted({match.group(0) for match in _GPU_TYPE.finditer(deploy_text + ci_text)})
    return TextFacts(
        ci_files=ci_files,
        ci_tests=bool(_TEST_COMMAND.search(ci_text)),
        ci_deploys=bool(_DEPLOY_COMMAND.search(ci_text)),
        ci_trains=trains_in_ci,
        ci_scheduled_training=scheduled and trains_in_ci,
        deployment_files=deployment_files,
        kubernetes=bool(re.search(r"^kind:\s*(Deployment|Service|InferenceService|StatefulSet)", deploy_text, re.MULTILINE)),
        autoscaling=bool(
            re.search(r"HorizontalPodAutoscaler|ScaledObject|minReplicas|maxReplicas|autoscaling:\s*\n\s+enabled:\s*true|"
                      r"application-autoscaling|AutoScalingTargetTracking|min_replica_count|autoscaling_policy|"
                      r"autoscaling_config|max_replicas|autoscaling\.knative\.dev/max[Ss]cale|--max-instances", deploy_text + ci_text)
        ),
        serving_platforms=tuple(platforms),
        gpu_types=tuple(gpu_types),
        alerting=bool(re.search(r"PrometheusRule|alertmanager|pagerduty|opsgenie|alert_rules|alerts?\.ya?ml", deploy_text + ci_text, re.IGNORECASE)),
        canary_routing=bool(
            re.search(r"canaryTrafficPercent|trafficSplit|weight\s*:\s*\d+|shadow\s*:|traffic\s*:|InitialVariantWeight|"
                      r"ProductionVariants|^kind:\s*(Rollout|Canary)\b|^\s+canary\s*:|mirror\s*:", deploy_text, re.MULTILINE)
            # Traffic shifted by the pipeline: Cloud Run revisions, blue/green weights in Helm values.
            or re.search(r"update-traffic|--traffic[ =]|--to-revisions|traffic[-_]split|weight\.\w+=\d+|canaryTrafficPercent", ci_text)
        ),
        ci_builds=bool(_BUILD_COMMAND.search(ci_text)),
        metrics_monitoring=bool(
            re.search(r"^kind:\s*(ServiceMonitor|PodMonitor)\b|prometheus\.io/scrape|DataCaptureConfig|MonitoringSchedule|"
                      r"ModelDeploymentMonitoringJob|model_monitoring|data_collector", deploy_text, re.MULTILINE)
        ),
        ci_load_tests=bool(_LOAD_TEST_COMMAND.search(ci_text)),
        dvc=any(path.endswith(".dvc") or path in ("dvc.yaml", "dvc.lock", ".dvc/config") for path in repo.paths),
        git_lfs="filter=lfs" in gitattributes,
        orchestrators=tuple(orchestrators),
    )
