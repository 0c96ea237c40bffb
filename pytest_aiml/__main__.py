"""Command-line helpers: ``python -m pytest_aiml docs [FOLDER]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_aiml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    docs = commands.add_parser("docs", help="regenerate the rule pages under docs/rules/")
    docs.add_argument("folder", nargs="?", default="docs/rules", type=Path, help="output folder (default: docs/rules)")
    arguments = parser.parse_args(argv)
    if arguments.command == "docs":
        from pytest_aiml.engine.registry import builtin_rules
        from pytest_aiml.engine.rule_docs import write_pages

        changed = write_pages(builtin_rules(), arguments.folder)
        print(f"{len(changed)} page(s) updated in {arguments.folder}" if changed else "rule pages are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
