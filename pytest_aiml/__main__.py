"""Command-line helpers: ``python -m pytest_aiml docs [FOLDER]`` and ``merge-reports OUT IN...``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

#: Exit status for reports that cannot be merged, the same as pytest's usage errors.
EXIT_BAD_INPUT = 2
#: Exit status when the merged report fails the schema: a bug in the merge, not in the input.
EXIT_INVALID_OUTPUT = 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_aiml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="regenerate the rule pages under docs/rules/")
    docs.add_argument("folder", nargs="?", default="docs/rules", type=Path, help="output folder (default: docs/rules)")
    merge = commands.add_parser(
        "merge-reports",
        help="merge the reports of sharded runs into one report",
        description=(
            "Merge the YAML reports that sharded runs of 'pytest --aiml-only --aiml-report=PATH' wrote into the "
            "report one run over all their paths would write. Warnings about shards that disagree go to stderr; "
            "unreadable or foreign reports exit with status 2."
        ),
    )
    merge.add_argument("output", type=Path, help="path of the merged YAML report (replaced if it exists)")
    merge.add_argument("inputs", nargs="+", type=Path, help="the shards' YAML reports")
    merge.add_argument(
        "--complete",
        action="store_true",
        help=(
            "state that the shards together ran every generated item (every path, the repository items, no other "
            "-k or -m filter), so that the merged report is complete and lists stale waivers"
        ),
    )
    merge.add_argument(
        "--baseline",
        type=Path,
        help="the baseline file the shards used (--aiml-baseline), to list the baseline entries no shard matched",
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "docs":
        from pytest_aiml.engine.registry import builtin_rules
        from pytest_aiml.engine.rule_docs import write_pages

        changed = write_pages(builtin_rules(), arguments.folder)
        print(f"{len(changed)} page(s) updated in {arguments.folder}" if changed else "rule pages are up to date")
        return 0
    return merge_reports_command(arguments.output, arguments.inputs, arguments.complete, arguments.baseline)


def merge_reports_command(output: Path, inputs: list[Path], complete: bool, baseline: Path | None) -> int:
    from pytest_aiml.engine.baseline import Baseline
    from pytest_aiml.report.merge import ReportError, load_report, merge_reports, validate_report
    from pytest_aiml.report.writer import write_report

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("merge-reports: warning: %(message)s"))
    logger = logging.getLogger("pytest_aiml.report.merge")
    logger.addHandler(handler)
    try:
        entries = None
        if baseline is not None:
            if not baseline.is_file():
                raise ReportError(f"{baseline}: baseline not found")
            entries = Baseline.load(baseline).entries
        documents = [load_report(path) for path in inputs]
        merged = merge_reports(documents, names=[str(path) for path in inputs], assume_complete=complete, baseline_entries=entries)
    except (ReportError, ValueError) as error:
        print(f"merge-reports: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        logger.removeHandler(handler)
    try:
        validated = validate_report(merged)
    except ReportError as error:
        print(f"merge-reports: error: the merged report is invalid, so it was not written: {error}", file=sys.stderr)
        return EXIT_INVALID_OUTPUT
    if not validated:
        print("merge-reports: note: jsonschema is not installed, so the merged report was not validated", file=sys.stderr)
    write_report(merged, output)
    details = merged["aiml_analysis"]["x_pytest_aiml"]
    findings = sum(details["findings_by_priority"].values())
    print(
        f"merged {len(inputs)} reports into {output}: {len(details['items'])} items, {findings} findings, "
        f"complete_run {str(details['complete_run']).lower()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
