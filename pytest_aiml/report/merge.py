"""Merge the reports of sharded runs into the report one run over every path would write.

Each shard of a CI matrix runs ``pytest --aiml-only --aiml-report=shard-N.yaml PATHS``.
Every shard builds the repository-wide sections from the whole repository, so those
are taken from the first report. The per-item results are unioned by node id, and
everything derived from them is computed again from the union: recommendations,
``findings_by_priority``, waivers and the run's completeness.

Rules for what cannot be read off the items:

- ``complete_run`` is true when no shard was interrupted, every shard ran the same
  rule set, and either one shard was complete by itself or the caller states that the
  shards together ran every generated item (``assume_complete``). A report records
  which items ran but not which items a full run would have had, so the union's
  completeness cannot be checked from the reports alone.
- A waiver is stale only when the merged run is complete and no shard used it. A
  complete shard used every waiver it does not list in ``stale_waivers``. A partial
  shard used a waiver when the waiver covers one of its findings or is among its
  expired waivers.
- ``baseline_disappeared`` comes from a complete shard, or is computed from the
  baseline's entries when the caller passes them; otherwise it stays empty.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pytest_aiml import __version__
from pytest_aiml.engine.baseline import finding_fingerprint
from pytest_aiml.report.build import PRIORITIES

log = logging.getLogger("pytest_aiml.report.merge")

#: Sections every shard computes over the whole repository.
REPOSITORY_SECTIONS = (
    "inventory", "frameworks", "mlops_maturity", "training", "feature_engineering", "serving", "monitoring",
    "llm_systems", "compute",
)
#: Details every shard computes over the whole repository. The declared checks
#: (``preprocessing``, ``serving_checks``) run in every shard under ``--aiml-only``.
REPOSITORY_DETAILS = (
    "files_scanned", "experiment_trackers", "training_scripts", "serving_files", "preprocessing", "serving_checks",
)
#: Keys left out when the shards' sections are compared: the models are merged on their
#: own, and a throughput is measured at run time, so it differs between any two runs.
NOT_COMPARED = {"inventory": frozenset({"models"}), "serving": frozenset({"throughput"})}
#: The rule code at the end of a recommendation's issue: ``... at train.py:13 [AIML201]``.
_ISSUE_CODE = re.compile(r"\[([^\[\]]+)\]\Z")


class ReportError(ValueError):
    """A report that cannot be merged: unreadable, not a pytest-aiml report, or of another version."""


def load_report(path: Path) -> dict[str, Any]:
    """Read one shard's YAML report and check that this version of pytest-aiml can merge it.

    Raises ReportError naming the file when it is missing, unreadable or not mergeable.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: report not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot read the report: {error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ReportError(f"{path}: invalid YAML: {error}") from None
    check_report(document, str(path))
    return document


def check_report(document: Any, name: str) -> None:
    """Raise ReportError unless ``document`` is a report written by this version of pytest-aiml."""
    hint = "write each shard's report with pytest --aiml-only --aiml-report=PATH"
    analysis = document.get("aiml_analysis") if isinstance(document, Mapping) else None
    details = analysis.get("x_pytest_aiml") if isinstance(analysis, Mapping) else None
    if not isinstance(details, Mapping) or "version" not in details:
        raise ReportError(f"{name}: not a pytest-aiml report (no aiml_analysis.x_pytest_aiml.version); {hint}")
    if details["version"] != __version__:
        raise ReportError(
            f"{name}: report of pytest-aiml {details['version']}, but this is pytest-aiml {__version__}; "
            "run every shard with the same version as merge-reports"
        )
    for section in (*REPOSITORY_SECTIONS, "recommendations"):
        if section not in analysis:
            raise ReportError(f"{name}: invalid pytest-aiml report: aiml_analysis.{section} is missing")
    _check_list(details.get("items"), ("nodeid", "code", "outcome", "findings"), f"{name}: x_pytest_aiml.items")
    _check_list(analysis["recommendations"], ("priority", "issue"), f"{name}: recommendations")
    _check_list(details.get("waivers", []), ("origin",), f"{name}: x_pytest_aiml.waivers")
    for key in ("complete_run", "interrupted"):
        if not isinstance(details.get(key), bool):
            raise ReportError(f"{name}: invalid pytest-aiml report: x_pytest_aiml.{key} is not true or false")
    try:
        validate_report(document)
    except ReportError as error:
        raise ReportError(f"{name}: {error}") from None


def _check_list(value: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(value, list):
        raise ReportError(f"{where} is missing or not a list")
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping) or any(key not in entry for key in keys):
            raise ReportError(f"{where}[{index}] lacks one of {', '.join(keys)}")


def validate_report(document: Mapping[str, Any]) -> bool:
    """Validate against the shipped JSON Schema; return False when jsonschema is not installed.

    Raises ReportError with the first violation.
    """
    try:
        import jsonschema
    except ImportError:
        return False
    from pytest_aiml.report.writer import report_schema

    try:
        jsonschema.validate(document, report_schema())
    except jsonschema.ValidationError as error:
        where = ".".join(str(part) for part in error.absolute_path) or "the document"
        raise ReportError(f"invalid report at {where}: {error.message}") from None
    return True


def merge_reports(
    documents: Sequence[Mapping[str, Any]],
    *,
    names: Sequence[str] | None = None,
    assume_complete: bool = False,
    baseline_entries: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the report of one run over the union of the shards' items.

    ``names`` label the documents in errors and warnings (default: ``report 1``, ...).
    ``assume_complete`` states that the shards together ran every generated item.
    ``baseline_entries`` are the ``findings`` of the baseline file the shards used.
    Disagreements between shards are logged as warnings. Raises ReportError when a
    document cannot be merged.
    """
    if not documents:
        raise ReportError("no report to merge")
    labels = list(names) if names is not None else [f"report {index + 1}" for index in range(len(documents))]
    for document, label in zip(documents, labels):
        check_report(document, label)
    shards = [document["aiml_analysis"] for document in documents]
    details = [shard["x_pytest_aiml"] for shard in shards]

    items, dropped_suffixes = _merge_items(details, labels)
    rules = _merge_rules(details, labels)
    interrupted = any(detail["interrupted"] for detail in details)
    same_rules = all(detail.get("rules") == details[0].get("rules") for detail in details)
    complete = not interrupted and same_rules and (assume_complete or any(d["complete_run"] for d in details))
    waivers = _merge_waivers(details, labels)

    analysis: dict[str, Any] = {}
    for key, value in shards[0].items():
        if key in REPOSITORY_SECTIONS:
            _warn_on_disagreement(key, [shard[key] for shard in shards], labels)
            analysis[key] = copy.deepcopy(value)
        elif key == "recommendations":
            analysis[key] = _merge_recommendations(shards, dropped_suffixes)
        elif key != "x_pytest_aiml":
            analysis[key] = copy.deepcopy(value)
    analysis["inventory"]["models"] = _merge_models(shards, details, labels)

    merged_details: dict[str, Any] = {}
    for key, value in details[0].items():
        # Serving checks hold latencies measured in each shard, which never agree exactly.
        if key in REPOSITORY_DETAILS and key != "serving_checks":
            _warn_on_disagreement(f"x_pytest_aiml.{key}", [detail.get(key) for detail in details], labels)
        merged_details[key] = copy.deepcopy(value)
    baselined = _union_counted(detail.get("baselined_findings", []) for detail in details)
    baselined.sort(key=lambda finding: (finding["path"], finding["line"], finding["code"]))
    merged_details.update(
        rules=rules,
        findings_by_priority=_findings_by_priority(items, shards),
        items=items,
        parse_errors=_merge_parse_errors(details),
        unread_files=_merge_unread_files(details),
        waivers=waivers,
        waived_findings_by_rule=_waived_by_rule(waivers),
        stale_waivers=_stale_waivers(details, waivers, complete),
        expired_waivers=sorted({origin for detail in details for origin in detail.get("expired_waivers", [])}),
        baselined_findings=baselined,
        baseline_disappeared=_disappeared(details, baselined, complete, baseline_entries),
        complete_run=complete,
        interrupted=interrupted,
    )
    analysis["x_pytest_aiml"] = merged_details
    return {"aiml_analysis": analysis}


def _merge_items(details: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """Union the items by node id; return them with the recommendation suffixes of the versions dropped."""
    merged: dict[str, dict[str, Any]] = {}
    origin: dict[str, str] = {}
    dropped: set[str] = set()
    for detail, label in zip(details, labels):
        for item in detail["items"]:
            nodeid = item["nodeid"]
            kept = merged.get(nodeid)
            if kept is None:
                merged[nodeid] = copy.deepcopy(dict(item))
                origin[nodeid] = label
                continue
            if kept == item:
                continue
            # A failure seen by any shard is real, so it wins; otherwise the first report's version is kept.
            replace = item["outcome"] == "failed" and kept["outcome"] != "failed"
            winner, loser = (item, kept) if replace else (kept, item)
            log.warning(
                "item %s differs between %s (%s, %d findings) and %s (%s, %d findings); keeping the %s result",
                nodeid, origin[nodeid], kept["outcome"], len(kept["findings"]), label, item["outcome"],
                len(item["findings"]), winner["outcome"],
            )
            lost_suffix = recommendation_suffix(loser)
            if lost_suffix is not None and lost_suffix != recommendation_suffix(winner):
                dropped.add(lost_suffix)
            if replace:
                merged[nodeid] = copy.deepcopy(dict(item))
                origin[nodeid] = label
    ordered = sorted(merged.values(), key=lambda item: (item["nodeid"], item["code"]))
    return ordered, dropped


def recommendation_suffix(item: Mapping[str, Any]) -> str | None:
    """Return how the recommendation of an item with findings ends, as the report builder writes it."""
    findings = item["findings"]
    if not findings:
        return None
    first = findings[0]
    location = f"{first['path']}:{first['line']}" if first.get("line") else first["path"]
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    return f" at {location}{more} [{item['code']}]"


def _merge_rules(details: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[str]:
    first = details[0].get("rules", [])
    for detail, label in zip(details[1:], labels[1:]):
        if detail.get("rules") != first:
            log.warning(
                "%s ran other rules than %s, so the merged report lists the union of the rules and is not complete",
                label, labels[0],
            )
            return sorted({code for detail in details for code in detail.get("rules", [])})
    return list(first)


def _merge_recommendations(shards: Sequence[Mapping[str, Any]], dropped_suffixes: set[str]) -> list[dict[str, Any]]:
    """Deduplicate the recommendations and sort them the way the report builder does."""
    found: dict[str, dict[str, Any]] = {}
    for shard in shards:
        for recommendation in shard["recommendations"]:
            if any(recommendation["issue"].endswith(suffix) for suffix in dropped_suffixes):
                continue
            found.setdefault(_identity(recommendation), copy.deepcopy(dict(recommendation)))
    merged = list(found.values())
    merged.sort(key=lambda item: (PRIORITIES.index(item["priority"]), item["issue"]))
    return merged


def _findings_by_priority(items: Sequence[Mapping[str, Any]], shards: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Count the merged items' findings by the priority of their rule.

    An item with findings always has a recommendation ending in its rule code, which
    carries the rule's priority; the built-in registry covers reports edited since.
    """
    priorities: dict[str, str] = {}
    for shard in shards:
        for recommendation in shard["recommendations"]:
            match = _ISSUE_CODE.search(recommendation["issue"])
            if match:
                priorities.setdefault(match.group(1), recommendation["priority"])
    counts = {priority: 0 for priority in PRIORITIES}
    for item in items:
        if not item["findings"]:
            continue
        code = item["code"]
        if code not in priorities:
            priorities[code] = _builtin_priority(code)
        counts[priorities[code]] += len(item["findings"])
    return counts


def _builtin_priority(code: str) -> str:
    from pytest_aiml.engine.registry import builtin_rules

    registry = builtin_rules()
    if code not in registry.codes():
        raise ReportError(
            f"cannot tell the priority of rule {code}: no report has a recommendation for it and it is not a built-in rule"
        )
    return registry.get(code).priority.value


def _merge_models(
    shards: Sequence[Mapping[str, Any]], details: Sequence[Mapping[str, Any]], labels: Sequence[str]
) -> list[dict[str, Any]]:
    """Take each model from a shard that inspected the file, else from the first report.

    A shard describes a model from its inspection only when it ran the file's artifact
    items. The other shards describe it from its file name alone. When the inspection
    finds that the file is no model, the inspecting shard leaves it out.
    """
    by_shard = [{model["location"]: model for model in shard["inventory"]["models"]} for shard in shards]
    ran_paths = [{item["nodeid"].split("::", 1)[0] for item in detail["items"]} for detail in details]
    locations = sorted({location for models in by_shard for location in models})
    merged = []
    for location in locations:
        inspecting = [index for index, paths in enumerate(ran_paths) if location in paths]
        candidates = inspecting or range(len(shards))
        _warn_on_disagreement(
            f"inventory.models[{location}]", [by_shard[index].get(location) for index in candidates],
            [labels[index] for index in candidates],
        )
        model = by_shard[inspecting[0] if inspecting else 0].get(location)
        if model is not None:
            merged.append(copy.deepcopy(dict(model)))
    return merged


def _merge_parse_errors(details: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for detail in details:
        for error in detail.get("parse_errors", []):
            found.setdefault(_identity(error), copy.deepcopy(dict(error)))
    return sorted(found.values(), key=lambda error: (error.get("path", ""), error.get("line", 0), error.get("column", 0)))


def _merge_unread_files(details: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for detail in details:
        for entry in detail.get("unread_files", []):
            found.setdefault(entry["path"], copy.deepcopy(dict(entry)))
    return [found[path] for path in sorted(found)]


def _merge_waivers(details: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Merge the declared waivers by origin, with the findings each covered in any shard."""
    declared: dict[str, dict[str, Any]] = {}
    covered: dict[str, list[list[str]]] = {}
    for detail, label in zip(details, labels):
        for waiver in detail.get("waivers", []):
            origin = waiver["origin"]
            fields = {key: value for key, value in waiver.items() if key != "findings"}
            if origin not in declared:
                declared[origin] = copy.deepcopy(fields)
            elif declared[origin] != fields:
                log.warning("waiver %s reads differently in %s; keeping the first report's version", origin, label)
            covered.setdefault(origin, []).append(list(waiver.get("findings", [])))
    return [
        dict(waiver, findings=sorted(_union_counted(covered[origin])))
        for origin, waiver in sorted(declared.items())
    ]


def _waived_by_rule(waivers: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    # Each covered finding reads "path:line CODE", or "path CODE" for one on a whole file.
    counts: Counter[str] = Counter(
        finding.rsplit(" ", 1)[-1] for waiver in waivers for finding in waiver["findings"]
    )
    return dict(sorted(counts.items()))


def _stale_waivers(
    details: Sequence[Mapping[str, Any]], waivers: Sequence[Mapping[str, Any]], complete: bool
) -> list[str]:
    if not complete:
        return []
    used: set[str] = set()
    for detail in details:
        stale_here = set(detail.get("stale_waivers", []))
        for waiver in detail.get("waivers", []):
            if detail["complete_run"] and waiver["origin"] not in stale_here:
                used.add(waiver["origin"])
            elif waiver.get("findings"):
                used.add(waiver["origin"])
        used.update(detail.get("expired_waivers", []))
    return sorted(waiver["origin"] for waiver in waivers if waiver["origin"] not in used)


def _disappeared(
    details: Sequence[Mapping[str, Any]],
    baselined: Sequence[Mapping[str, Any]],
    complete: bool,
    baseline_entries: Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Return the baseline entries no finding matched, when the merged run is complete."""
    if not complete:
        return []
    if baseline_entries is None:
        for detail in details:
            if detail["complete_run"]:
                return copy.deepcopy(list(detail.get("baseline_disappeared", [])))
        # NOTE: partial shards record no disappeared entries, and without the baseline's
        # entries the merge cannot tell which ones no shard matched.
        return []
    remaining = Counter(finding_fingerprint(finding) for finding in baselined)
    disappeared = []
    for entry in baseline_entries:
        if remaining[entry["fingerprint"]] > 0:
            remaining[entry["fingerprint"]] -= 1
        else:
            disappeared.append(dict(entry))
    return disappeared


def _union_counted(groups: Iterable[Sequence[Any]]) -> list[Any]:
    """Union lists as multisets, each value as often as the list that contains it most often.

    Two shards that ran the same item record its entries once each, so the maximum, not
    the sum, is what one run would have recorded.
    """
    counts: dict[str, int] = {}
    values: dict[str, Any] = {}
    for group in groups:
        here = Counter(_identity(value) for value in group)
        for key, count in here.items():
            counts[key] = max(counts.get(key, 0), count)
        for value in group:
            values.setdefault(_identity(value), value)
    return [copy.deepcopy(values[key]) for key in values for _ in range(counts[key])]


def _identity(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _warn_on_disagreement(where: str, values: Sequence[Any], labels: Sequence[str]) -> None:
    ignored = NOT_COMPARED.get(where, frozenset())
    first = _comparable(values[0], ignored)
    for value, label in zip(values[1:], labels[1:]):
        if _comparable(value, ignored) != first:
            log.warning(
                "%s differs between %s and %s; keeping %s's. Did the shards run on different checkouts or settings?",
                where, labels[0], label, labels[0],
            )


def _comparable(value: Any, ignored: frozenset[str]) -> Any:
    if not ignored or not isinstance(value, Mapping):
        return value
    return {key: item for key, item in value.items() if key not in ignored}
