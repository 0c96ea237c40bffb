"""A repository's own pytest-aiml rule: HTTPS downloads with certificate checks turned off.

Copy this file to the repository root as ``conftest.py``. ``pytest --aiml`` then
runs AIML901 on every Python file and notebook, next to the built-in rules.
"""

from __future__ import annotations

from pytest_aiml.engine.context import is_false, keyword_value
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority

#: The requests functions that take ``verify=``, by qualified name.
REQUESTS_CALLS = frozenset(
    {
        "requests.get", "requests.post", "requests.put", "requests.head", "requests.request",
        "requests.api.get", "requests.api.post", "requests.api.request",
    }
)


class UnverifiedDownload(FileRule):
    """Flag requests calls that pass ``verify=False``."""

    code = "AIML901"
    slug = "unverified-download"
    category = Category.SECURITY
    priority = Priority.HIGH
    effort = Effort.LOW
    message = "HTTPS request with certificate verification turned off"
    impact = (
        "Without certificate checks anyone on the network path can replace the downloaded "
        "weights or data set, and the training or serving code loads what they sent."
    )
    fix = (
        "Remove verify=False; for an internal certificate authority pass its bundle, "
        "verify='/etc/ssl/certs/internal-ca.pem', and pin a checksum of the downloaded file."
    )
    # Files that do not contain this text are not parsed for this rule.
    prefilter = ("verify",)

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name in REQUESTS_CALLS and is_false(keyword_value(node, "verify")):
            self.report(node, f"{name}(verify=False) downloads without checking the server's certificate")


UnverifiedDownload.VALID = (
    Example("import requests\nweights = requests.get(url, timeout=30).content\n"),
    Example("import requests\nweights = requests.get(url, verify='/etc/ssl/certs/internal-ca.pem').content\n"),
    Example("def get(url, verify):\n    return url\n\nget('https://example.org', verify=False)\n"),
)
UnverifiedDownload.INVALID = (
    Example("import requests\nweights = requests.get(url, verify=False).content\n", lines=(2,)),
    Example(
        "from requests import post as send\n\nresponse = send(\n    url,\n    json=payload,\n    verify=False,\n)\n",
        lines=(3,),
    ),
)


def pytest_aiml_register_rules(registry):
    registry.add(UnverifiedDownload)
