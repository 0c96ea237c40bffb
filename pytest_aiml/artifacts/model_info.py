"""Infer an artifact's framework and model type for the report's inventory.

Framework comes from the format, or for pickles from the globals they import
(sklearn, xgboost, lightgbm, torch, numpy). Model type is one of classification,
regression, generation or embedding, inferred by the rules below in order. When no
rule applies, the type is None (reported as null) rather than a guess:

- scikit-learn, xgboost, lightgbm: the last estimator class imported by the pickle
  (the final step of a pipeline): ``*Classifier``, ``LogisticRegression``, ``SVC``,
  naive Bayes and nearest-neighbour classifiers are classification; ``*Regressor``,
  ``*Regression``, ``Ridge``, ``Lasso``, ``ElasticNet``, ``SVR`` are regression;
  ``PCA``, ``TruncatedSVD`` and other decompositions are embedding.
- ONNX: a ``ZipMap``, ``Softmax``, ``ArgMax`` or ``TopK`` op, or an output named
  like probabilities, labels or logits, is classification, except rank-3 logits
  (batch x sequence x vocabulary), which are generation; outputs named like
  embeddings or hidden states are embedding; a single float output of rank 1 or 2
  that none of the above explains is regression.
- Tensor names (torch state dicts, safetensors): ``lm_head`` is generation;
  ``classifier``, ``cls`` or ``score`` heads are classification; ``regressor`` or
  ``regression`` heads are regression; ``pooler`` without a head is embedding.
- Keras: a final layer with softmax or sigmoid activation is classification; a
  final Dense layer with linear activation is regression.
"""

from __future__ import annotations

import re

from pytest_aiml.artifacts import sniff
from pytest_aiml.artifacts.findings import ArtifactFindings

_FRAMEWORK_BY_FORMAT = {
    sniff.TORCH_ZIP: "pytorch",
    sniff.TORCHSCRIPT: "pytorch",
    sniff.TORCH_LEGACY: "pytorch",
    sniff.SAFETENSORS: "safetensors",
    sniff.ONNX: "onnx",
    sniff.KERAS_ZIP: "keras",
    sniff.NPY: "numpy",
    sniff.NPZ: "numpy",
    sniff.GGUF: "gguf",
    sniff.TFLITE: "tensorflow",
    sniff.TENSORFLOW_PB: "tensorflow",
}
_FRAMEWORK_BY_MODULE_ROOT = (
    ("sklearn", "sklearn"),
    ("xgboost", "xgboost"),
    ("lightgbm", "lightgbm"),
    ("catboost", "catboost"),
    ("torch", "pytorch"),
    ("keras", "keras"),
    ("numpy", "numpy"),
)
_CLASSIFIER_NAMES = re.compile(
    r"(Classifier|^LogisticRegression(CV)?$|^SVC$|^LinearSVC$|^NuSVC$|NB$|^Perceptron$|^LabelPropagation$)"
)
_REGRESSOR_NAMES = re.compile(r"(Regressor|Regression(CV)?$|^Ridge(CV)?$|^Lasso(CV)?$|^ElasticNet(CV)?$|^SVR$|^LinearSVR$|^NuSVR$|^Lars$|^BayesianRidge$)")
_EMBEDDING_NAMES = re.compile(r"^(PCA|IncrementalPCA|KernelPCA|TruncatedSVD|NMF|FactorAnalysis|FastICA|Isomap|TSNE|LocallyLinearEmbedding|Word2Vec)$")
_CLASSIFICATION_OUTPUT = re.compile(r"prob|label|logit|class|score", re.IGNORECASE)
_EMBEDDING_OUTPUT = re.compile(r"embed|hidden_state|pooler|sentence_embedding|features", re.IGNORECASE)


def infer_framework(format_name: str, findings: ArtifactFindings) -> str | None:
    """Return the framework name, or None when neither format nor globals tell."""
    if format_name in (sniff.HDF5,) and "keras" in findings.globals_seen:
        return "keras"
    if format_name in _FRAMEWORK_BY_FORMAT:
        return _FRAMEWORK_BY_FORMAT[format_name]
    roots = {name.split(".", 1)[0] for name in findings.globals_seen}
    for root, framework in _FRAMEWORK_BY_MODULE_ROOT:
        if root in roots:
            return framework
    return None


def _estimator_type(findings: ArtifactFindings) -> str | None:
    verdict = None
    for qualified in findings.globals_seen:
        if not qualified.startswith(("sklearn.", "xgboost.", "lightgbm.", "catboost.")):
            continue
        class_name = qualified.rsplit(".", 1)[-1]
        if _CLASSIFIER_NAMES.search(class_name):
            verdict = "classification"
        elif _REGRESSOR_NAMES.search(class_name) and class_name != "LogisticRegression":
            verdict = "regression"
        elif _EMBEDDING_NAMES.match(class_name):
            verdict = "embedding"
    return verdict


def _onnx_type(findings: ArtifactFindings) -> str | None:
    outputs = [hint.split("|") for hint in findings.output_hints if not hint.startswith(("op|", "keras|"))]
    if any(hint.startswith("op|") for hint in findings.output_hints):
        return "classification"
    for name, _dtype, rank, _producer in outputs:
        if "logit" in name.lower() and rank == "3":
            return "generation"
        if _EMBEDDING_OUTPUT.search(name):
            return "embedding"
    for name, _dtype, _rank, _producer in outputs:
        if _CLASSIFICATION_OUTPUT.search(name):
            return "classification"
    if len(outputs) == 1 and outputs[0][1] in ("float", "double", "float16") and outputs[0][2] in ("1", "2"):
        return "regression"
    return None


def _tensor_name_type(findings: ArtifactFindings) -> str | None:
    names = [text.lower() for text in findings.strings if "." in text or text.endswith(("weight", "bias"))]
    if any(name.startswith("lm_head") or ".lm_head." in name for name in names):
        return "generation"
    if any(re.search(r"(^|\.)(classifier|cls|score)(\.|$)", name) for name in names):
        return "classification"
    if any(re.search(r"(^|\.)(regressor|regression_head|regression)(\.|$)", name) for name in names):
        return "regression"
    if any(re.search(r"(^|\.)pooler(\.|$)", name) for name in names):
        return "embedding"
    return None


def _keras_type(findings: ArtifactFindings) -> str | None:
    for hint in findings.output_hints:
        if not hint.startswith("keras|"):
            continue
        _, class_name, activation = hint.split("|", 2)
        if activation in ("softmax", "sigmoid"):
            return "classification"
        if class_name == "Dense" and activation in ("linear", "None"):
            return "regression"
    return None


def infer_model_type(format_name: str, findings: ArtifactFindings) -> str | None:
    """Return classification, regression, generation, embedding, or None when unknown."""
    if format_name == sniff.ONNX:
        return _onnx_type(findings)
    if format_name in (sniff.KERAS_ZIP, sniff.HDF5):
        return _keras_type(findings)
    return _estimator_type(findings) or _tensor_name_type(findings)
