"""Build the ``aiml_analysis`` document of the report from the inventory and the item results.

Every key of the original specification's output schema is present; a value the scan
cannot know is null where the schema allows null. Additions live under keys that
start with ``x_`` (see ``docs/report.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

from pytest_aiml import __version__
from pytest_aiml.engine.discovery import is_test_path
from pytest_aiml.engine.inventory import Inventory
from pytest_aiml.engine.registry import RuleRegistry
from pytest_aiml.engine.rule import Priority
from pytest_aiml.report.summary import RunSummary

#: Trackers the schema's ``experiment_tracking`` enum names; others report as "other".
SCHEMA_TRACKERS = ("mlflow", "wandb", "neptune", "tensorboard")
PRIORITIES = [priority.value for priority in Priority]


def build_report(
    inventory: Inventory,
    results: Sequence[Mapping[str, Any]],
    registry: RuleRegistry,
    summary: RunSummary,
    artifacts: Mapping[str, Mapping[str, Any]] | None = None,
    declared: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the report document.

    ``results`` are the payloads the generated items recorded; ``artifacts`` the
    inspections of the artifacts whose items ran, by path.
    """
    ordered = sorted(results, key=lambda result: (result.get("nodeid", ""), result.get("code", "")))
    declared = declared or declared_section((), (), (), ())
    maturity = mlops_maturity(inventory)
    analysis: dict[str, Any] = {
        "inventory": inventory_section(inventory, artifacts or {}),
        "frameworks": frameworks_section(inventory),
        "mlops_maturity": maturity,
        "training": training_section(inventory),
        "feature_engineering": feature_section(inventory, declared),
        "serving": serving_section(inventory, declared),
        "monitoring": monitoring_section(inventory),
        "llm_systems": llm_section(inventory),
        "compute": compute_section(inventory),
        "recommendations": recommendations(ordered),
        "x_pytest_aiml": {**details_section(inventory, ordered, registry, summary), **declared["details"]},
    }
    return {"aiml_analysis": analysis}


def human_size(size: int) -> str:
    """Format a byte count the way the schema's example does: ``450MB``, ``12.3KB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            text = f"{value:.1f}".rstrip("0").rstrip(".") if unit != "B" else str(int(value))
            return f"{text}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def inventory_section(inventory: Inventory, artifacts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """List the models: from their inspection where an artifact item ran, else from the file name."""
    models = []
    inspected_paths = set(artifacts)
    for location, inspection in sorted(artifacts.items()):
        if inspection["format"] == "not-a-model":
            continue
        models.append(
            {
                "name": PurePosixPath(location).stem,
                "framework": _FRAMEWORK_NAMES.get(inspection["framework"], inspection["framework"]) or "unknown",
                "type": inspection["model_type"],
                "location": location,
                "size": human_size(inspection["size_bytes"]),
                "version": inspection["version"],
            }
        )
    for model in inventory.models:
        if model.location in inspected_paths:
            continue
        models.append(
            {
                "name": model.name,
                "framework": model.framework,
                # A file name alone cannot tell the model's type; the inspection can.
                "type": None,
                "location": model.location,
                "size": human_size(model.size_bytes),
                "version": model.version,
            }
        )
    models.sort(key=lambda model: model["location"])
    return {
        "models": models,
        "total_training_scripts": len(inventory.training_scripts),
        "total_notebooks": len(inventory.notebooks),
    }


#: The inspection's short framework names, spelled as the rest of the report spells them.
_FRAMEWORK_NAMES = {"sklearn": "scikit-learn"}


def frameworks_section(inventory: Inventory) -> dict[str, Any]:
    used = inventory.labels("framework")
    # Code that reaches a framework only through a wrapper still depends on it.
    used += [label for label in inventory.dependency_labels("framework") if label not in used]
    return {"primary": used[0] if used else "none", "secondary": used[1:]}


def _tracker(inventory: Inventory) -> tuple[str, list[str]]:
    found = inventory.labels("tracker")
    if inventory.files_with("tensorboard") and "tensorboard" not in found:
        found.append("tensorboard")
    if inventory.files_with("trainer_report_to") and not found:
        # Hugging Face Trainer(report_to=...) logs to a tracker without importing it.
        found.append("huggingface-report-to")
    for tracker in SCHEMA_TRACKERS:
        if tracker in found:
            return tracker, found
    return ("other" if found or inventory.files_with("lightning_logger") else "none"), found


def _registry(inventory: Inventory) -> str:
    for signal, label in (
        ("mlflow_registry", "mlflow"), ("vertex_registry", "vertex"), ("sagemaker_registry", "sagemaker"),
        ("custom_registry", "custom"),
    ):
        if inventory.files_with(signal):
            return label
    return "none"


def _ci_cd(inventory: Inventory) -> str:
    text = inventory.text
    if not text.ci_files:
        return "none"
    # A pipeline that both tests and deploys (or trains) is complete; one that only does one is partial.
    return "present" if text.ci_tests and (text.ci_deploys or text.ci_trains) else "partial"


def _version_control(inventory: Inventory) -> str:
    if inventory.text.dvc or inventory.files_importing("versioning"):
        return "dvc"
    if inventory.text.git_lfs:
        return "git-lfs"
    return "none"


def _orchestrator(inventory: Inventory) -> str | None:
    found = inventory.labels("orchestrator") + list(inventory.text.orchestrators)
    return found[0] if found else None


#: Orchestrator modules whose scheduled pipelines count as automated retraining.
_SCHEDULING_ORCHESTRATORS = ("airflow", "prefect", "dagster", "kfp", "flytekit", "zenml", "metaflow", "sagemaker.workflow")
#: Drift-detection packages as dependency files name them.
DRIFT_PACKAGES = ("evidently", "whylogs", "nannyml", "alibi-detect", "frouros")


def _automated_retraining(inventory: Inventory) -> bool:
    """Tell whether training runs on a schedule: a scheduled CI job that trains, or a scheduled orchestrated pipeline.

    A pipeline counts when a module that imports an orchestrator sets a schedule (Airflow
    ``schedule_interval=``, a Prefect or Dagster schedule, a Kubeflow recurring run) in a
    repository that has training code.
    """
    if inventory.text.ci_scheduled_training:
        return True
    if not inventory.training_files:
        return False
    return any(
        "scheduled_pipeline" in signals.signals and any(signals.imports(module) for module in _SCHEDULING_ORCHESTRATORS)
        for signals in inventory.code
        if not is_test_path(signals.path)
    )


def _data_drift(inventory: Inventory) -> bool:
    from pytest_aiml.rules.deployment import direct_pins

    return bool(inventory.labels("drift") or direct_pins(inventory, DRIFT_PACKAGES))


def mlops_maturity(inventory: Inventory) -> dict[str, Any]:
    """Place the repository on the specification's maturity table.

    Level 1 (DevOps for ML) needs CI/CD and versioning of models or experiments;
    level 2 (ML pipelines) adds automated training (an orchestrator or CI that trains)
    and a model registry; level 3 (full MLOps) adds automated retraining and drift
    monitoring. Each level requires the one below.
    """
    tracking, _ = _tracker(inventory)
    registry = _registry(inventory)
    ci_cd = _ci_cd(inventory)
    version_control = _version_control(inventory)
    level = 0
    if ci_cd != "none" and (version_control != "none" or tracking != "none" or registry != "none"):
        level = 1
        automated_training = _orchestrator(inventory) is not None or inventory.text.ci_trains
        if automated_training and registry != "none":
            level = 2
            if _automated_retraining(inventory) and _data_drift(inventory):
                level = 3
    return {
        "level": str(level),
        "experiment_tracking": tracking,
        "model_registry": registry,
        "version_control": version_control,
        "ci_cd": ci_cd,
    }


def training_section(inventory: Inventory) -> dict[str, Any]:
    tuning = inventory.labels("tuning")
    if not tuning and inventory.files_with("sklearn_search"):
        tuning = ["scikit-learn-search"]
    return {
        "pipeline_orchestrator": _orchestrator(inventory),
        "distributed_training": bool(inventory.files_with("distributed") or inventory.labels("distributed")),
        "hyperparameter_tuning": tuning[0] if tuning else None,
        "automated_retraining": _automated_retraining(inventory),
    }


def feature_section(inventory: Inventory, declared: Mapping[str, Any]) -> dict[str, Any]:
    stores = inventory.labels("feature_store")
    pipelines = sorted(
        set(inventory.files_with("feature_transform"))
        | {path for path in (f.path for f in inventory.code) if "/features/" in f"/{path}" or "feature" in path.rsplit("/", 1)[-1]}
    )
    pipelines = [path for path in pipelines if not path.endswith(".ipynb") and not is_test_path(path)]
    pipeline_count = len(set(pipelines) | set(declared["pipeline_modules"]))
    serving = set(inventory.serving_files)
    transforms_in_serving = serving & set(inventory.files_with("feature_transform"))
    if not serving:
        risk = "low"
    elif stores:
        risk = "low"
    elif transforms_in_serving or (pipelines and inventory.training_files):
        # Preprocessing written in both the training and the serving code is the usual source of skew.
        risk = "high" if transforms_in_serving else "medium"
    else:
        risk = "medium"
    # What was measured outranks what the code suggests: a failed parity or serving-twin
    # check is skew found; checks that all passed make skew unlikely where they looked.
    if declared["skew_failed"]:
        risk = "high"
    elif declared["skew_checked"] and risk != "high":
        risk = "low"
    return {
        "feature_store": stores[0] if stores else None,
        "feature_pipelines": pipeline_count,
        "training_serving_skew_risk": risk,
    }


def serving_section(inventory: Inventory, declared: Mapping[str, Any]) -> dict[str, Any]:
    frameworks = inventory.labels("serving_framework")
    platforms = list(inventory.text.serving_platforms)
    serving_files = inventory.serving_files
    real_time = bool(frameworks or platforms)
    batch = bool(inventory.files_with("batch_inference"))
    if real_time and batch:
        kind = "both"
    elif real_time:
        kind = "real-time"
    else:
        kind = "batch"
    if frameworks:
        framework = frameworks[0]
    elif serving_files:
        framework = "custom"
    else:
        framework = "none"
    infrastructure = "none"
    if frameworks or platforms:
        base = ", ".join(dict.fromkeys([*platforms, *frameworks]))
        infrastructure = f"{base} on Kubernetes" if inventory.text.kubernetes else base
    return {
        "infrastructure": infrastructure,
        "type": kind,
        "framework": framework,
        "latency_target": "; ".join(declared["latency_targets"]) or None,
        "throughput": "; ".join(declared["throughputs"]) or None,
        "autoscaling": _autoscaling(inventory),
        "caching": bool(set(inventory.files_with("caching")) & _serving_modules(inventory)),
    }


def _serving_modules(inventory: Inventory) -> set[str]:
    """Return the serving files and every module the online serving apps reach."""
    from pytest_aiml.rules.deployment import serving_apps

    return set(inventory.serving_files) | {path for app in serving_apps(inventory) for path in app.closure}


def _autoscaling(inventory: Inventory) -> bool:
    # Cloud Run and Lambda scale with traffic by default. The code may also set scaling itself
    # (Ray Serve autoscaling_config, SageMaker scaling policies, Vertex AI replica counts).
    serverless = {"cloud-run", "aws-lambda"} & set(inventory.text.serving_platforms)
    return inventory.text.autoscaling or bool(serverless) or bool(inventory.files_with("autoscaling_code"))


def monitoring_section(inventory: Inventory) -> dict[str, Any]:
    """Describe monitoring from the evidence AIML402 checks; error trackers such as Sentry do not count."""
    from pytest_aiml.rules.deployment import monitoring_evidence

    evidence = monitoring_evidence(inventory)
    serving = _serving_modules(inventory)
    # SageMaker data capture and the Azure ML data collector log every request and prediction.
    captured = bool(set(inventory.files_with("model_monitor")) & serving) or inventory.text.metrics_monitoring
    return {
        "model_performance": bool(evidence),
        "data_drift": _data_drift(inventory),
        "prediction_logging": bool(set(inventory.files_with("prediction_logging")) & serving) or captured,
        "alerting": inventory.text.alerting or bool(inventory.labels("alerting")),
        "x_evidence": evidence,
    }


def llm_section(inventory: Inventory) -> dict[str, Any]:
    """Describe the LLM system from the same facts the LLM practice rules (AIML304-306) check."""
    from pytest_aiml.rules.llm_practice import cost_tracking_tools, fallback_paths, guardrail_tools, llm_modules

    providers = sorted(set(inventory.labels("llm_provider")) | set(inventory.dependency_labels("llm_provider")))
    frameworks = inventory.labels("llm_framework")
    present = bool(providers or frameworks)
    if not present:
        prompt_management = "none"
    elif inventory.files_with("prompt_hub"):
        prompt_management = "registry"
    elif inventory.prompt_files:
        prompt_management = "files"
    else:
        prompt_management = "inline"
    modules = llm_modules(inventory) if present else []
    guardrails = guardrail_tools(inventory) if present else []
    cost_tracking = cost_tracking_tools(inventory) if present else []
    return {
        "present": present,
        "providers": providers,
        "rag_implementation": bool(inventory.labels("vector_store") or (present and inventory.files_with("rag"))),
        "prompt_management": prompt_management,
        "guardrails": bool(guardrails),
        "cost_tracking": bool(cost_tracking),
        "x_frameworks": frameworks,
        "x_llm_modules": modules,
        "x_guardrails": guardrails,
        "x_cost_tracking": cost_tracking,
        "x_fallbacks": fallback_paths(inventory, modules) if modules else [],
    }


_INFERENCE_RUNTIMES = ("onnxruntime", "tensorrt", "torch_tensorrt", "openvino")


def compute_section(inventory: Inventory) -> dict[str, Any]:
    gpu = bool(inventory.files_with("gpu_usage") or inventory.text.gpu_types)
    concerns = []
    if gpu and not inventory.files_with("mixed_precision") and inventory.training_files:
        concerns.append("GPU training without mixed precision (autocast / GradScaler)")
    # Only the modules of apps that serve a model online: a library's own serving helpers run no requests.
    from pytest_aiml.rules.deployment import serving_apps

    serving = {path for app in serving_apps(inventory) for path in app.closure}
    if set(inventory.files_with("gpu_usage")) & serving and not set(inventory.files_with("request_batching")) & serving:
        concerns.append("GPU serving without request batching (one request per forward pass)")
    optimizations = []
    for signal, label in (
        ("mixed_precision", "mixed precision"), ("torch_compile", "torch.compile"), ("quantization", "quantization"),
        ("caching", "caching"), ("request_batching", "request batching"), ("spot_instances", "spot instances"),
    ):
        if inventory.files_with(signal):
            optimizations.append(label)
    if any(
        signals.imports(module)
        for signals in inventory.code if not is_test_path(signals.path)
        for module in _INFERENCE_RUNTIMES
    ):
        optimizations.append("optimized inference runtime (ONNX Runtime, TensorRT, OpenVINO)")
    if _autoscaling(inventory):
        optimizations.append("autoscaling")
    return {
        "gpu_usage": gpu,
        "gpu_type": inventory.text.gpu_types[0] if inventory.text.gpu_types else None,
        "utilization_concerns": concerns,
        "cost_optimization": optimizations,
    }


def recommendations(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return one recommendation per item with active findings, most severe first.

    Waived and baselined findings are not active, so they raise no recommendation;
    findings below the ``fail-on`` threshold are active and do.
    """
    found = []
    for result in results:
        findings = result.get("findings") or []
        if not findings or "code" not in result:
            continue
        first = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        subject = result.get("anti_pattern") or result["message"]
        location = f"{first['path']}:{first['line']}" if first.get("line") else first["path"]
        detail = first["message"]
        issue = f"{detail} at {location}" if detail.lower().startswith(subject.lower()) else f"{subject}: {detail} at {location}"
        found.append(
            {
                "priority": result["priority"],
                "category": result["category"],
                "issue": f"{issue}{more} [{result['code']}]",
                "impact": result["impact"],
                "fix": result["fix"],
                "effort": result["effort"],
            }
        )
    found.sort(key=lambda item: (PRIORITIES.index(item["priority"]), item["issue"]))
    return found


def details_section(
    inventory: Inventory, results: Sequence[Mapping[str, Any]], registry: RuleRegistry, summary: RunSummary
) -> dict[str, Any]:
    items = [
        {
            "nodeid": result.get("nodeid", ""),
            "code": result["code"],
            "outcome": result.get("outcome", ""),
            "findings": [dict(finding) for finding in result.get("findings") or []],
        }
        for result in results
        if "code" in result
    ]
    _, trackers = _tracker(inventory)
    return {
        "version": __version__,
        "rules": registry.codes(),
        "files_scanned": len(inventory.code),
        "findings_by_priority": summary.findings_by_priority,
        "items": items,
        "parse_errors": summary.parse_errors,
        "unread_files": sorted(summary.unread_files, key=lambda entry: entry["path"]),
        "waivers": summary.waivers,
        "waived_findings_by_rule": summary.waived_by_rule,
        "stale_waivers": summary.stale_waivers,
        "expired_waivers": summary.expired_waivers,
        "baselined_findings": summary.baselined,
        "baseline_disappeared": [dict(entry) for entry in summary.disappeared],
        "complete_run": summary.complete,
        "interrupted": summary.interrupted,
        "experiment_trackers": trackers,
        "training_scripts": inventory.training_scripts,
        "serving_files": inventory.serving_files,
    }


def declared_section(
    preprocessing_specs: Sequence[Any],
    preprocessing_results: Sequence[Mapping[str, Any]],
    serving_results: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Summarise the declared checks: what feeds the schema fields, and the details for ``x_pytest_aiml``."""
    preprocessing: dict[str, dict[str, str]] = {}
    for result in sorted(preprocessing_results, key=lambda r: (r["function"], r["property"])):
        preprocessing.setdefault(result["function"], {})[result["property"]] = "passed" if result["passed"] else "failed"
    serving: dict[str, dict[str, Any]] = {}
    latency_targets: list[str] = []
    throughputs: list[str] = []
    for record in sorted(serving_results, key=lambda r: (r["model"], r["check"], str(r.get("latency", {}).get("device")))):
        entry = serving.setdefault(record["model"], {})
        if "latency" in record:
            latency = record["latency"]
            entry.setdefault("latency", []).append(latency)
            setup = f"{latency['device']}, batch {latency['batch']}"
            targets = ", ".join(f"{name} {value:g}ms" for name, value in sorted(latency["budget_ms"].items()))
            latency_targets.append(f"{record['model']}: {targets} ({setup})")
            if latency.get("throughput_per_s"):
                throughputs.append(f"{record['model']}: {latency['throughput_per_s']:.0f}/s ({setup})")
        else:
            entry[record["check"]] = record.get(record["check"])
    skew_codes = {"AIML802", "AIML811"}
    skew_results = [result for result in results if result.get("code") in skew_codes]
    pipeline_modules = sorted({spec.function.split(":", 1)[0].replace(".", "/") + ".py" for spec in preprocessing_specs})
    return {
        "pipeline_modules": pipeline_modules,
        "skew_checked": bool(skew_results),
        "skew_failed": any(result.get("findings") for result in skew_results),
        "latency_targets": latency_targets,
        "throughputs": throughputs,
        "details": {"preprocessing": preprocessing, "serving_checks": serving},
    }
