"""Route handlers and the flow of request data through them, shared by the serving and LLM rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pytest_aiml.engine.context import ModuleContext, call_argument, dotted_name
from pytest_aiml.engine.libcst_import import cst

#: Decorator methods that register a FastAPI or Flask route (``@app.post``, ``@bp.route``).
ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "options", "head", "route", "api_route"})
FLASK_REQUEST_DATA = frozenset(
    {f"flask.request.{name}" for name in ("json", "form", "args", "values", "data", "files")}
)
FLASK_REQUEST_READERS = frozenset({"flask.request.get_json", "flask.request.get_data"})
#: Methods of a FastAPI/Starlette ``Request`` that return the raw body.
REQUEST_BODY_READERS = frozenset({"json", "form", "body"})
REQUEST_TYPES = frozenset({"fastapi.Request", "starlette.requests.Request", "fastapi.requests.Request"})
DEPENDENCY_MARKERS = frozenset({"fastapi.Depends", "fastapi.Security", "fastapi.params.Depends"})
UNVALIDATED_TYPES = frozenset(
    {"builtins.dict", "typing.Dict", "typing.Any", "typing.Mapping", "collections.abc.Mapping", "typing.MutableMapping"}
)
#: Calls that copy their argument into another container, so the data keeps its origin.
DATA_CONTAINERS = frozenset(
    {
        "numpy.array", "numpy.asarray", "numpy.asanyarray", "numpy.stack", "numpy.concatenate", "pandas.DataFrame",
        "pandas.Series", "pandas.json_normalize", "torch.tensor", "torch.as_tensor", "torch.from_numpy",
        "torch.Tensor", "builtins.list", "builtins.dict", "builtins.tuple", "builtins.str", "json.loads",
        "json.dumps", "ray.data.from_items", "ray.data.from_pandas",
    }
)


#: Path parts of serving modules: ``serve.py``, ``api/``, ``inference_utils.py``, ``serve_bert/``.
#: A name that only ends in one of these words, such as ``parameter_server.py`` of
#: distributed training, does not count.
SERVING_PATH_PART = re.compile(
    r"^(serve|serving|server|api|app|inference|predict|predictor|handler)(\.py)?$"
    r"|^(serve|serving|predict|inference|infer)[_-]",
    re.IGNORECASE,
)
#: Names of functions that serve predictions wherever they are defined.
SERVING_FUNCTION = re.compile(r"^(predict|infer|serve|handle)", re.IGNORECASE)


def dotted_text(expr: cst.BaseExpression) -> str | None:
    """Return ``a.b.c`` for a name or attribute chain as written, without resolving imports."""
    return dotted_name(expr)


def attribute_text(func: cst.Attribute) -> str:
    """Return an attribute chain as written, leaving out a base that is not a name: ``chat.completions.create``."""
    parts: list[str] = []
    expr: cst.BaseExpression = func
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if isinstance(expr, cst.Name):
        parts.append(expr.value)
    return ".".join(reversed(parts))


def callee_name(call: cst.Call) -> str | None:
    """Return the last identifier of the called name: ``predict`` for ``self.model.predict(x)``."""
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def route_path(function: cst.FunctionDef, context: ModuleContext) -> str | None:
    """Return the URL rule of a FastAPI or Flask route handler, or None for other functions.

    A route decorator is a call of a route method (``app.post``, ``router.get``,
    ``bp.route``) whose first argument is a string, in a module that imports FastAPI or
    Flask. A rule that is not a plain string (an f-string, say) returns ``""``.
    """
    if not context.imports_any("fastapi", "flask"):
        return None
    for decorator in function.decorators:
        call = decorator.decorator
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value not in ROUTE_METHODS:
            continue
        rule = call_argument(call, 0, "path") or call_argument(call, None, "rule")
        if rule is None:
            continue
        text = context.string_value(rule.value)
        if text is not None:
            return text
        if isinstance(rule.value, cst.FormattedString):
            return ""
    return None


def all_parameters(function: cst.FunctionDef) -> Iterator[cst.Param]:
    params = function.params
    yield from params.posonly_params
    yield from params.params
    if isinstance(params.star_arg, cst.Param):
        yield params.star_arg
    yield from params.kwonly_params
    if params.star_kwarg is not None:
        yield params.star_kwarg


def is_dependency(param: cst.Param, context: ModuleContext) -> bool:
    """Tell whether FastAPI injects the parameter (``= Depends(...)``) rather than reading it from the request."""
    default = param.default
    return isinstance(default, cst.Call) and context.qualified_name(default.func) in DEPENDENCY_MARKERS


def is_request_object(param: cst.Param, context: ModuleContext) -> bool:
    annotation = param.annotation
    return annotation is not None and context.qualified_name(annotation.annotation) in REQUEST_TYPES


def flask_request_data(expr: cst.BaseExpression, context: ModuleContext) -> str | None:
    """Describe ``request.json``, ``request.form``, ``request.get_json()`` and the like, or return None."""
    if isinstance(expr, cst.Attribute):
        name = context.qualified_name(expr)
        if name in FLASK_REQUEST_DATA:
            return "request." + name.rsplit(".", 1)[-1]
    elif isinstance(expr, cst.Call):
        name = context.qualified_name(expr.func)
        if name in FLASK_REQUEST_READERS:
            return f"request.{name.rsplit('.', 1)[-1]}()"
    return None


def request_body_read(expr: cst.BaseExpression, request_names: set[str]) -> str | None:
    """Describe ``request.json()`` (awaited or not) on a FastAPI ``Request`` parameter, or return None."""
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in REQUEST_BODY_READERS
        and isinstance(expr.func.value, cst.Name)
        and expr.func.value.value in request_names
    ):
        return f"await {expr.func.value.value}.{expr.func.attr.value}()"
    return None


def block_statements(block: cst.BaseSuite) -> Iterator[cst.BaseSmallStatement]:
    """Yield the simple statements directly in a block, not those of nested blocks."""
    if isinstance(block, cst.SimpleStatementSuite):
        yield from block.body
        return
    for statement in block.body:
        if isinstance(statement, cst.SimpleStatementLine):
            yield from statement.body


@dataclass(frozen=True, slots=True)
class Origin:
    """The source of a value, named for the message, and whether it was formatted into a larger string."""

    description: str
    interpolated: bool = False

    def formatted(self) -> Origin:
        return Origin(self.description, interpolated=True)

    def passed_through(self, helper: str) -> Origin:
        return Origin(f"{self.description} through {helper}()", self.interpolated)


class ValueFlow:
    """Track which local names hold values derived from a source, in traversal order.

    ``source`` recognises the rule's own sources (request data, LLM output). Values
    flow through assignment, attribute and subscript access, ``await``, method calls on
    the value (``data.get("x")``, ``text.strip()``), container literals, the copying
    calls of :data:`DATA_CONTAINERS` and string formatting. They also flow through a
    call for which the rule's optional ``carries`` returns True, such as a helper that
    prepares features. Any other call ends the flow: its result is unknown, and unknown
    is not reported.
    """

    def __init__(
        self,
        context: ModuleContext,
        source: Callable[[cst.BaseExpression], str | None],
        carries: Callable[[cst.Call], bool] | None = None,
    ) -> None:
        self.context = context
        self.source = source
        self.carries = carries
        self._frames: list[dict[str, Origin | None]] = [{}]

    def enter_scope(self) -> None:
        self._frames.append({})

    def leave_scope(self) -> None:
        self._frames.pop()

    def bind(self, target: cst.BaseExpression, origin: Origin | None) -> None:
        if isinstance(target, cst.Name):
            self._frames[-1][target.value] = origin
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind(element.value, origin)

    def bind_assignment(self, node: cst.Assign | cst.AnnAssign) -> None:
        if node.value is None:
            return
        origin = self.origin(node.value)
        targets = [target.target for target in node.targets] if isinstance(node, cst.Assign) else [node.target]
        for target in targets:
            self.bind(target, origin)

    def lookup(self, name: str) -> Origin | None:
        for frame in reversed(self._frames):
            if name in frame:
                return frame[name]
        return None

    def origin(self, expr: cst.BaseExpression) -> Origin | None:
        """Return the origin of ``expr`` if it carries data from a source."""
        described = self.source(expr)
        if described is not None:
            return Origin(described)
        if isinstance(expr, cst.Name):
            return self.lookup(expr.value)
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            return self.origin(expr.value)
        if isinstance(expr, cst.Await):
            return self.origin(expr.expression)
        if isinstance(expr, cst.FormattedString):
            parts = (part.expression for part in expr.parts if isinstance(part, cst.FormattedStringExpression))
            found = self._first(parts)
            return found.formatted() if found else None
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, (cst.Add, cst.Modulo)):
                found = self.origin(expr.left) or self.origin(expr.right)
                return found.formatted() if found else None
            return None
        if isinstance(expr, (cst.List, cst.Tuple, cst.Set)):
            return self._first(element.value for element in expr.elements)
        if isinstance(expr, cst.Dict):
            return self._first(element.value for element in expr.elements)
        if isinstance(expr, cst.Call):
            return self._call_origin(expr)
        return None

    def _call_origin(self, call: cst.Call) -> Origin | None:
        func = call.func
        if isinstance(func, cst.Attribute):
            if func.attr.value in ("format", "join"):
                found = self._first(arg.value for arg in call.args) or self.origin(func.value)
                return found.formatted() if found else None
            if VALIDATING_NAME.search(func.attr.value):
                return None
            receiver = self.origin(func.value)
            if receiver is not None:
                return receiver
        if self.context.qualified_name(func) in DATA_CONTAINERS:
            return self._first(arg.value for arg in call.args)
        if self.carries is not None and self.carries(call):
            found = self._first(arg.value for arg in call.args)
            helper = dotted_text(func)
            return found.passed_through(helper) if found is not None and helper is not None else found
        return None

    def _first(self, expressions: Iterator[cst.BaseExpression]) -> Origin | None:
        for expr in expressions:
            found = self.origin(expr)
            if found is not None:
                return found
        return None


#: Called names that check their input: ``validate_payload``, ``model_validate``, ``check_input``.
VALIDATING_NAME = re.compile(
    r"valid|verify|sanitiz|sanitis|parse_obj|parse_raw|(^|_)(check|checks|ensure)(_|$)|^check[A-Z]", re.IGNORECASE
)
