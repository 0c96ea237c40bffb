"""Validation of report documents against the JSON Schema shipped in the package."""

from __future__ import annotations

from typing import Any

import jsonschema

from pytest_aiml.report.writer import report_schema

#: Every key of the specification's output schema, by section.
SPEC_KEYS = {
    "inventory": {"models", "total_training_scripts", "total_notebooks"},
    "frameworks": {"primary", "secondary"},
    "mlops_maturity": {"level", "experiment_tracking", "model_registry", "version_control", "ci_cd"},
    "training": {"pipeline_orchestrator", "distributed_training", "hyperparameter_tuning", "automated_retraining"},
    "feature_engineering": {"feature_store", "feature_pipelines", "training_serving_skew_risk"},
    "serving": {"infrastructure", "type", "framework", "latency_target", "throughput", "autoscaling", "caching"},
    "monitoring": {"model_performance", "data_drift", "prediction_logging", "alerting"},
    "llm_systems": {"present", "providers", "rag_implementation", "prompt_management", "guardrails", "cost_tracking"},
    "compute": {"gpu_usage", "gpu_type", "utilization_concerns", "cost_optimization"},
}
MODEL_KEYS = {"name", "framework", "type", "location", "size", "version"}
RECOMMENDATION_KEYS = {"priority", "category", "issue", "impact", "fix", "effort"}


def assert_valid_report(document: dict[str, Any]) -> None:
    """Validate against the shipped schema and check every key of the specification is present."""
    jsonschema.validate(document, report_schema())
    analysis = document["aiml_analysis"]
    for section, keys in SPEC_KEYS.items():
        assert keys <= set(analysis[section]), f"{section} lacks {sorted(keys - set(analysis[section]))}"
    for model in analysis["inventory"]["models"]:
        assert set(model) == MODEL_KEYS
    for recommendation in analysis["recommendations"]:
        assert set(recommendation) == RECOMMENDATION_KEYS
