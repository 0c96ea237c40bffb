"""Adding and removing call arguments and imported names without disturbing the layout.

In libcst the whitespace that closes a list (a newline and the indentation of the
closing parenthesis, or a trailing comment) belongs to its last element: to the
element's trailing comma, or, without one, to the element itself. So a new last
element takes over that closing whitespace, and the old last element gets the
separator the list already uses between its elements. A comment stays on the line
of the element it was written after.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.walk import Visitor, walk


def append_argument(call: cst.Call, new: cst.Arg) -> cst.Call:
    """Return ``call`` with ``new`` as its last argument, laid out like the others."""
    args = list(call.args)
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    separator = _separator([arg.comma for arg in args[:-1]], call.whitespace_before_args)
    if isinstance(last.comma, cst.Comma):
        kept, moved = _split_closing(last.comma.whitespace_after, separator)
        args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=kept))
        args.append(new.with_changes(comma=cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=moved)))
    else:
        kept, moved = _split_closing(last.whitespace_after_arg, separator)
        comma = cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=kept)
        args[-1] = last.with_changes(comma=comma, whitespace_after_arg=cst.SimpleWhitespace(""))
        args.append(new.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=moved))
    return call.with_changes(args=args)


def remove_argument(call: cst.Call, index: int) -> cst.Call | None:
    """Return ``call`` without its argument at ``index``; None when that would drop a comment."""
    args = list(call.args)
    removed = args.pop(index)
    if has_comment(removed):
        return None
    if index < len(args):
        # A later argument follows: the separator before the removed one now leads to it.
        return call.with_changes(args=args)
    if not args:
        if has_comment(call.whitespace_before_args):
            return None
        return call.with_changes(args=[], whitespace_before_args=cst.SimpleWhitespace(""))
    previous = args[-1]
    before = previous.comma.whitespace_after if isinstance(previous.comma, cst.Comma) else cst.SimpleWhitespace("")
    if isinstance(removed.comma, cst.Comma):
        closing = _merge_closing(before, removed.comma.whitespace_after)
        args[-1] = previous.with_changes(comma=removed.comma.with_changes(whitespace_after=closing))
    else:
        closing = _merge_closing(before, removed.whitespace_after_arg)
        args[-1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=closing)
    return call.with_changes(args=args)


def append_import_alias(statement: cst.ImportFrom, name: str) -> cst.ImportFrom:
    """Return ``from m import a`` as ``from m import a, name``, in its own layout."""
    assert not isinstance(statement.names, cst.ImportStar)
    names = list(statement.names)
    new = cst.ImportAlias(name=cst.Name(name))
    last = names[-1]
    opening = statement.lpar.whitespace_after if statement.lpar is not None else cst.SimpleWhitespace(" ")
    separator = _separator([alias.comma for alias in names[:-1]], opening)
    if isinstance(last.comma, cst.Comma):
        kept, moved = _split_closing(last.comma.whitespace_after, separator)
        names[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=kept))
        names.append(new.with_changes(comma=cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=moved)))
    else:
        names[-1] = last.with_changes(comma=cst.Comma(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=separator))
        names.append(new)
    return statement.with_changes(names=names)


def has_comment(node: cst.CSTNode) -> bool:
    """Tell whether a comment sits anywhere inside ``node``."""
    finder = _CommentFinder()
    walk(node, finder)
    return finder.found


class _CommentFinder(Visitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Comment(self, node: cst.Comment) -> None:
        self.found = True


def _separator(commas: Sequence[cst.Comma | cst.MaybeSentinel], opening: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    """Return the whitespace the list puts after a comma: one element per line, or a space."""
    for comma in reversed(commas):
        if isinstance(comma, cst.Comma):
            return _without_comment(comma.whitespace_after)
    # A single element: a list opened with a line break puts each element on its own line.
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return _without_comment(opening)
    return cst.SimpleWhitespace(" ")


def _without_comment(whitespace: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return whitespace


def _split_closing(
    closing: cst.BaseParenthesizableWhitespace, separator: cst.BaseParenthesizableWhitespace
) -> tuple[cst.BaseParenthesizableWhitespace, cst.BaseParenthesizableWhitespace]:
    """Split the old closing whitespace into what the old last element keeps and what the new one gets.

    The old element keeps its trailing comment and takes the separator's indentation;
    the new element gets a fresh line break and the closing parenthesis's indentation.
    """
    if not isinstance(closing, cst.ParenthesizedWhitespace):
        return separator, closing
    indentation = separator.last_line if isinstance(separator, cst.ParenthesizedWhitespace) else closing.last_line
    kept = closing.with_changes(last_line=indentation)
    moved = closing.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return kept, moved


def _merge_closing(
    before: cst.BaseParenthesizableWhitespace, closing: cst.BaseParenthesizableWhitespace
) -> cst.BaseParenthesizableWhitespace:
    """Join the whitespace before a removed last element with the whitespace that closed the list.

    A comment after the previous element stays on its line.
    """
    if not isinstance(closing, cst.ParenthesizedWhitespace):
        return closing
    if isinstance(before, cst.ParenthesizedWhitespace):
        return closing.with_changes(first_line=before.first_line, empty_lines=before.empty_lines)
    return closing
