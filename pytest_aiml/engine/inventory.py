"""The repository-level inventory: the facts behind the report and the repository rules."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pytest_aiml.engine.constants import LiteralConstant, preprocessing_constants
from pytest_aiml.artifacts.versioning import version_from_name
from pytest_aiml.engine.dependencies import Pin, collect_pins
from pytest_aiml.engine.discovery import FileKind, RepoFiles, is_test_path
from pytest_aiml.engine.notebooks import notebook_source
from pytest_aiml.engine.signals import MODULE_GROUPS, FileSignals, group_members, read_signals

log = logging.getLogger("pytest_aiml.inventory")

_TRAINING_SCRIPT_NAME = re.compile(r"(^|/)(train[\w-]*|[\w-]*_train|[\w-]*trainer[\w-]*)\.py$", re.IGNORECASE)
_SERVING_PATH = re.compile(r"(^|/)(serve|serving|server|api|app|predict|predictor|inference|infer|handler|service)[\w-]*(\.py|/)")
_LOAD_TEST = re.compile(r"(^|/)(locustfile[\w-]*\.py|[\w-]*load[_-]?test[\w-]*\.(py|js|ts|yaml|yml)|[\w-]*\.k6\.js|vegeta[\w-]*|wrk[\w-]*\.lua)$", re.IGNORECASE)
_MODEL_CARD = re.compile(r"(^|/)(MODEL_CARD|model[_-]card|modelcard)[\w.-]*\.(md|ya?ml|json)$", re.IGNORECASE)
_PROMPT_FILE = re.compile(r"(^|/)prompts?/[^/]+\.(txt|md|ya?ml|json|jinja2?|j2|prompt)$", re.IGNORECASE)


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
    #: Preprocessing constants by path, filled on first use, so only the modules a rule looks up are parsed.
    _constants: dict[str, Mapping[str, LiteralConstant]] = field(default_factory=dict, init=False, repr=False, compare=False)

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
        """
        found = []
        for module, label in MODULE_GROUPS[group].items():
            names = {module.split(".")[0].replace("_", "-"), *_DISTRIBUTION_ALIASES.get(module, ())}
            if any(name in self.pins for name in names) and label not in found:
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
            text = self.repo.read_text(path)
            if text is not None and path.endswith(".ipynb"):
                try:
                    text = notebook_source(text).source
                except ValueError as error:
                    log.debug("%s: %s", path, error)
                    text = None
            self._constants[path] = {} if text is None else preprocessing_constants(text, path)
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


def build_inventory(repo: RepoFiles) -> Inventory:
    """Read the text of every source, notebook, CI, deployment and dependency file once."""
    code: list[FileSignals] = []
    for path in repo.of_kind(FileKind.PYTHON, FileKind.NOTEBOOK):
        text = repo.read_text(path)
        if text is None:
            continue
        if path.endswith(".ipynb"):
            try:
                text = notebook_source(text).source
            except ValueError as error:
                log.debug("%s: %s", path, error)
                continue
        code.append(read_signals(path, text))
    return Inventory(
        repo=repo,
        code=tuple(code),
        text=_text_facts(repo),
        models=tuple(_model_files(repo)),
        pins=collect_pins(repo),
    )


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
        try:
            size = (repo.root / path).stat().st_size
        except OSError:
            size = 0
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
_TEST_COMMAND = re.compile(r"\b(pytest|tox|nox|unittest|make\s+test)\b")
_DEPLOY_COMMAND = re.compile(
    r"(docker\s+(build|push)|kubectl\s+apply|helm\s+(upgrade|install)|gcloud\s+(run|ai)|aws\s+sagemaker|"
    r"sam\s+deploy|serverless\s+deploy|mlflow\s+models\s+(serve|build)|bentoml\s+(build|deploy)|"
    r"docker/build-push-action|deploy)",
    re.IGNORECASE,
)


def _text_facts(repo: RepoFiles) -> TextFacts:
    ci_files = repo.of_kind(FileKind.CI)
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
                      r"application-autoscaling|AutoScalingTargetTracking|min_replica_count|autoscaling_policy", deploy_text)
        ),
        serving_platforms=tuple(platforms),
        gpu_types=tuple(gpu_types),
        alerting=bool(re.search(r"PrometheusRule|alertmanager|pagerduty|opsgenie|alert_rules|alerts?\.ya?ml", deploy_text + ci_text, re.IGNORECASE)),
        canary_routing=bool(re.search(r"canaryTrafficPercent|trafficSplit|weight\s*:\s*\d+|shadow\s*:|traffic\s*:", deploy_text)),
        dvc=any(path.endswith(".dvc") or path in ("dvc.yaml", "dvc.lock", ".dvc/config") for path in repo.paths),
        git_lfs="filter=lfs" in gitattributes,
        orchestrators=tuple(orchestrators),
    )
