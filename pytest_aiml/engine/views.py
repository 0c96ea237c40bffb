"""Views of one file that repository computations read instead of the file's whole text.

A view is a pure function of a file's path and text: its inventory signals, the names
its import statements import, the names it writes between quotes, its module-level
preprocessing constants. A computation that
reads a file through a view depends on the view's value, not on every byte. Appending a
comment to a module changes its text but none of these values, so the repository rules'
results computed from them stay valid. The read log keeps a digest of the bytes and one
of the value, and a later run computes the view again only for a file whose bytes
changed. Build systems call this an early cutoff.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pytest_aiml.engine.constants import LiteralConstant, preprocessing_constants
from pytest_aiml.engine.notebooks import python_code
from pytest_aiml.engine.signals import FileSignals, file_signals

_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w. \t,]+)", re.MULTILINE)
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE)
#: The characters around a quoted name; see :func:`quoted_names`.
QUOTE_DELIMITERS = "\"'/"
_QUOTED_RUN = re.compile(r"(?<=[\"'/])([^\"'/]*)(?=[\"'])")


@dataclass(frozen=True)
class View:
    """A view: how to compute it from a file, and how to turn its value into builtins for its digest."""

    compute: Callable[[str, str], Any]
    encode: Callable[[Any], Any]


def imported_names(path: str, text: str) -> frozenset[str]:
    """Return the dotted names the import statements of ``text`` may refer to, relative ones made absolute.

    ``from ray import serve`` gives ``ray`` and ``ray.serve``; in ``pkg/app.py``,
    ``from .model import load`` gives ``pkg.model`` and ``pkg.model.load``.
    """
    return frozenset(_imported_names(path, text))


def _imported_names(path: str, text: str) -> Iterator[str]:
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            words = part.split()
            if words:
                yield words[0]
    package = path.split("/")[:-1]
    for match in _FROM_IMPORT.finditer(text):
        dots, module, names = match.group(1), match.group(2), match.group(3)
        if dots:
            base = package[: len(package) - (len(dots) - 1)] if len(dots) > 1 else package
            module = ".".join([*base, module] if module else base)
        if not module:
            continue
        yield module
        for name in names.strip("()").replace("\n", " ").split(","):
            words = name.split()
            if words and words[0] != "*":
                yield f"{module}.{words[0]}"


@dataclass(frozen=True)
class QuotedNames:
    """The runs of text between two delimiters of a file, as the search for a named script needs them.

    ``after_any``: runs after a quote or a slash and before a quote (``'train.py'``,
    ``"scripts/train.py"``); ``after_quote``: those after a quote (``"pkg.train"``).
    A name without a delimiter in it matches ``[\"'/]name[\"']`` somewhere in the text
    exactly when it is one of ``after_any``, and ``[\"']name[\"']`` exactly when it is
    one of ``after_quote``.
    """

    after_any: frozenset[str]
    after_quote: frozenset[str]

    def contains(self, name: str, *, after_quote: bool = False) -> bool:
        """Tell whether ``name`` is a run after any delimiter, or after a quote with ``after_quote``."""
        return name in (self.after_quote if after_quote else self.after_any)


def quoted_names(path: str, text: str) -> QuotedNames:
    after_any, after_quote = set(), set()
    for match in _QUOTED_RUN.finditer(text):
        after_any.add(match.group(1))
        if text[match.start() - 1] != "/":
            after_quote.add(match.group(1))
    return QuotedNames(frozenset(after_any), frozenset(after_quote))


def literal_constants(path: str, text: str) -> dict[str, LiteralConstant]:
    """Return the module-level preprocessing constants of a Python file or notebook (``engine.constants``).

    Line numbers of a notebook count lines of its code cells joined together. A notebook
    that cannot be read has no constants.
    """
    code = python_code(path, text)
    return {} if code is None else preprocessing_constants(code, path)


def _encode_constants(constants: dict[str, LiteralConstant]) -> Any:
    return [[name, _canonical(c.value), c.line, c.column] for name, c in sorted(constants.items())]


def _canonical(value: Any) -> Any:
    """Encode a literal so that equal values, and only those, encode alike.

    Sets come out in a fixed order, and a tuple encodes differently from a list.
    """
    if isinstance(value, dict):
        return ["dict", sorted(([_canonical(key), _canonical(item)] for key, item in value.items()), key=json.dumps)]
    if isinstance(value, (set, frozenset)):
        return ["set", sorted((_canonical(item) for item in value), key=json.dumps)]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [_canonical(item) for item in value]]
    return [type(value).__name__, repr(value)]


def _encode_signals(signals: FileSignals | None) -> Any:
    return None if signals is None else [sorted(signals.modules), sorted(signals.signals)]


VIEWS: dict[str, View] = {
    "signals": View(file_signals, _encode_signals),
    "imports": View(imported_names, sorted),
    "quoted-names": View(quoted_names, lambda names: [sorted(names.after_any), sorted(names.after_quote)]),
    "preprocessing-constants": View(literal_constants, _encode_constants),
}


def view_digest(name: str, value: Any) -> str:
    """Digest a view's value; None stands for a file that is missing, too large or binary."""
    encoded = None if value is None else VIEWS[name].encode(value)
    return hashlib.blake2b(json.dumps(encoded, sort_keys=True, separators=(",", ":")).encode(), digest_size=20).hexdigest()


def view_of(name: str, path: str, data: bytes | None) -> Any:
    """Compute a view of a file's bytes; None for a file that could not be read as text."""
    if data is None:
        return None
    return VIEWS[name].compute(path, data.decode("utf-8-sig", errors="replace"))


class ComputedViews:
    """Views computed ahead, during a cold scan, each with the bytes it was computed from.

    ``RepoFiles.read_view`` takes a view from here when the file's bytes are those the
    view was computed from, and computes it otherwise. A pickled copy (in an inventory
    shared with pytest-xdist workers) is empty, because carrying every file's bytes would
    cost more than computing the views again.
    """

    def __init__(self) -> None:
        self._views: dict[tuple[str, str], tuple[bytes, Any]] = {}

    def add(self, path: str, content: bytes, views: dict[str, Any]) -> None:
        for name, value in views.items():
            self._views[(path, name)] = (content, value)

    def get(self, path: str, name: str, content: bytes | None) -> tuple[bool, Any]:
        """Return ``(True, value)`` for a view computed from exactly ``content``, else ``(False, None)``."""
        known = self._views.get((path, name))
        if known is None or content is None or known[0] != content:
            return False, None
        return True, known[1]

    def __reduce__(self) -> tuple[type[ComputedViews], tuple[()]]:
        return ComputedViews, ()
