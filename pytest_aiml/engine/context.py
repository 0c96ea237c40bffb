"""The view a file rule has of the module it visits.

Names are resolved from the module's own import statements, collected in the same
traversal as the rules, instead of libcst's scope analysis: on a real ML codebase
the metadata providers cost several times the parse itself, and import-based
resolution is what catches aliases (``import torch as T``) and ``from`` imports.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pytest_aiml.engine.dependencies import Pin
from pytest_aiml.engine.libcst_import import cst

_BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True, slots=True)
class RepoContext:
    """Repository-wide facts a file rule may need, computed once per run."""

    #: Requirements by normalised package name, from the repository's dependency files.
    #: A package that is absent is unpinned, which means any version may run. Each pin
    #: keeps its source file, so a check can use the pins that apply to the file it reads.
    pins: Mapping[str, tuple[Pin, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class PendingFinding:
    """A finding whose position is not known yet: positions are computed only for files that need them."""

    code: str
    node: cst.CSTNode
    message: str
    statement: cst.CSTNode | None = None
    #: Replaces the flagged source line in the finding, for a rule whose line contains a secret.
    snippet: str | None = None


class ModuleContext:
    """Per-file state shared by the import tracker and every rule of one traversal."""

    def __init__(self, path: str, module: cst.Module, repo: RepoContext) -> None:
        self.path = path
        self.module = module
        self.repo = repo
        #: Local name -> qualified name, e.g. ``{"T": "torch", "load": "torch.load"}``.
        self.imports: dict[str, str] = {}
        #: Module-level names bound once to a string literal, e.g. ``{"MODEL_PATH": "/opt/m.pt"}``.
        self.constants: dict[str, str] = {}
        #: Names bound by module-level ``class`` statements.
        self.classes: set[str] = set()
        #: Module-level functions by name. A name defined twice keeps its last definition, as at run time.
        self.functions: dict[str, cst.FunctionDef] = {}
        self.pending: list[PendingFinding] = []
        #: Statements enclosing the node being visited, innermost last.
        self.statements: list[cst.CSTNode] = []
        self._collect_top_level(module.body)

    # -- recording -------------------------------------------------------------------

    def report(self, code: str, node: cst.CSTNode, message: str, snippet: str | None = None) -> None:
        statement = self.statements[-1] if self.statements else None
        self.pending.append(PendingFinding(code, node, message, statement, snippet))

    # -- imports ---------------------------------------------------------------------

    def add_import(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                dotted = dotted_name(alias.name)
                if dotted is None:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.imports[alias.asname.name.value] = dotted
                else:
                    # ``import torch.nn`` binds ``torch``; the submodule stays reachable through it.
                    top = dotted.split(".", 1)[0]
                    self.imports[top] = top
            return
        if isinstance(node.names, cst.ImportStar):
            return
        base = dotted_name(node.module) if node.module is not None else ""
        if base is None:
            return
        prefix = "." * len(node.relative) + base
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.imports[local] = f"{prefix}.{name}" if prefix and not prefix.endswith(".") else prefix + name

    def imported_modules(self) -> Iterator[str]:
        """Yield the top-level module of every absolute import seen so far."""
        for qualified in self.imports.values():
            if not qualified.startswith("."):
                yield qualified.split(".", 1)[0]

    def imports_any(self, *modules: str) -> bool:
        """Tell whether the module imports any of ``modules`` or a submodule of one."""
        wanted = tuple(modules)
        return any(
            qualified == module or qualified.startswith(module + ".")
            for qualified in self.imports.values()
            for module in wanted
        )

    def _collect_top_level(self, body: tuple[cst.BaseStatement, ...] | list[cst.BaseStatement]) -> None:
        # A cheap pass over module-level statements (and the bodies of top-level if/try
        # blocks), so that names used before a nested import are still resolved, and a
        # class or function is known before the traversal reaches its definition.
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self.add_import(small)
                    elif isinstance(small, cst.Assign):
                        self._record_constant(small)
                    elif isinstance(small, cst.AnnAssign) and small.value is not None:
                        if isinstance(small.target, cst.Name):
                            self._record_constant_value(small.target.value, small.value)
            elif isinstance(statement, cst.ClassDef):
                self.classes.add(statement.name.value)
            elif isinstance(statement, cst.FunctionDef):
                self.functions[statement.name.value] = statement
            elif isinstance(statement, cst.If):
                self._collect_top_level(statement.body.body)
                orelse = statement.orelse
                while orelse is not None:
                    self._collect_top_level(orelse.body.body)
                    orelse = orelse.orelse if isinstance(orelse, cst.If) else None
            elif isinstance(statement, cst.Try):
                self._collect_top_level(statement.body.body)
                for handler in statement.handlers:
                    self._collect_top_level(handler.body.body)

    def _record_constant(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self._record_constant_value(node.targets[0].target.value, node.value)

    def _record_constant_value(self, name: str, value: cst.BaseExpression) -> None:
        literal = literal_string(value)
        if literal is None:
            # A name bound twice, once to something else, is not a constant.
            self.constants.pop(name, None)
        else:
            self.constants[name] = literal

    # -- resolution ------------------------------------------------------------------

    def qualified_name(self, expr: cst.BaseExpression) -> str | None:
        """Resolve ``T.load`` to ``torch.load`` through the module's imports.

        Returns None for anything that is not a name or an attribute chain on an
        imported name; an unknown name that is a builtin resolves to ``builtins.NAME``.
        """
        parts: list[str] = []
        while isinstance(expr, cst.Attribute):
            parts.append(expr.attr.value)
            expr = expr.value
        if not isinstance(expr, cst.Name):
            return None
        head = expr.value
        if head in self.imports:
            base = self.imports[head]
        elif head in _BUILTIN_NAMES:
            base = f"builtins.{head}"
        else:
            return None
        return ".".join([base, *reversed(parts)])

    def string_value(self, expr: cst.BaseExpression) -> str | None:
        """Return the string a literal or a module-level string constant holds."""
        literal = literal_string(expr)
        if literal is not None:
            return literal
        if isinstance(expr, cst.Name):
            return self.constants.get(expr.value)
        return None


def literal_string(expr: cst.BaseExpression) -> str | None:
    """Return the value of a plain or implicitly concatenated string literal."""
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(expr, cst.ConcatenatedString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


def call_argument(call: cst.Call, position: int | None, keyword: str | None) -> cst.Arg | None:
    """Find an argument by keyword, or else by position (star arguments end the positions)."""
    if keyword is not None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == keyword:
                return arg
    if position is None:
        return None
    index = 0
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        if index == position:
            return arg
        index += 1
    return None


def keyword_value(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    arg = call_argument(call, None, keyword)
    return None if arg is None else arg.value


def is_true(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def is_false(expr: cst.BaseExpression | None) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def has_star_kwargs(call: cst.Call) -> bool:
    """Tell whether a ``**kwargs`` argument may supply any keyword the rule looks for."""
    return any(arg.star == "**" for arg in call.args)


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """Return ``a.b.c`` for a name or attribute chain as written, without resolving imports."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))
