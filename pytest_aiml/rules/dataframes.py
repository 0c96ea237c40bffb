"""Numerics and data-handling rules for pandas and NumPy code.

Most of these rules only apply to a pandas DataFrame or Series, and a static scan
cannot know types. :class:`FrameTypes` therefore infers them from what the module
shows: a name bound to ``pd.read_csv(...)``, ``pd.DataFrame(...)``, ``pd.concat``, a
parameter annotated ``pd.DataFrame``, or a value derived from one of those by
indexing or by a pandas method. Inference is flow-insensitive and conservative: a
name is a DataFrame in a scope only when every binding of it in that scope is one,
so ``X = df.values`` or a reused name makes it unknown, and an unknown receiver
is never reported.
"""

from __future__ import annotations

import ast
import re

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

from pytest_aiml.engine.ast_facts import AstFacts, callee_name, keyword_constant
from pytest_aiml.engine.context import (
    ModuleContext,
    PendingFinding,
    call_argument,
    dotted_name,
    has_star_kwargs,
    is_true,
    keyword_value,
    literal_string,
)
from pytest_aiml.engine.libcst_import import cst, node_types
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import Visitor, walk

# -- what the module shows about names: bindings per scope -------------------------

#: A scope is the module, a function or a class body.
ScopeNode = Union["cst.Module", "cst.FunctionDef", "cst.ClassDef"]


@dataclass(frozen=True, slots=True)
class Binding:
    """One place that binds a name: ``value`` is None when the bound value cannot be known.

    ``element`` is the position of the name in a tuple target (``a, b = value``);
    ``annotation`` is the annotation of a parameter or an annotated assignment.
    """

    value: cst.BaseExpression | None = None
    element: int | None = None
    annotation: cst.BaseExpression | None = None


_UNKNOWN = Binding()


class _BindingCollector(Visitor):
    """Record every binding of every name, per scope, in one traversal of the module.

    ``self.x = ...`` inside a method is recorded in the class scope under ``"self.x"``.
    Lambda parameters and comprehension variables are recorded as unknown bindings
    of the enclosing scope, because the rules look names up by the enclosing
    statement's scope: that makes such a name unknown there rather than wrong.
    """

    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.bindings: dict[ScopeNode, dict[str, list[Binding]]] = {module: {}}
        self.parents: dict[ScopeNode, ScopeNode | None] = {module: None}
        self._stack: list[ScopeNode] = [module]

    # -- scopes ------------------------------------------------------------------------

    def _enter(self, node: cst.FunctionDef | cst.ClassDef) -> None:
        self._add(node.name.value, _UNKNOWN)
        self.parents[node] = self._stack[-1]
        self.bindings[node] = {}
        self._stack.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._enter(node)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            self._add(param.name.value, Binding(annotation=param.annotation.annotation if param.annotation else None))
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                self._add(star.name.value, _UNKNOWN)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._stack.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._enter(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._stack.pop()

    # -- bindings ----------------------------------------------------------------------

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value, annotation=node.annotation.annotation)
        elif isinstance(node.target, cst.Name):
            self._add(node.target.value, Binding(annotation=node.annotation.annotation))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target, node.value)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target, None)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target, None)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        for param in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params):
            self._add(param.name.value, _UNKNOWN)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind(node.asname.name, None)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._bind(node.name.name, None)

    def visit_Global(self, node: cst.Global) -> None:
        for item in node.names:
            self._add(item.name.value, _UNKNOWN)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        for item in node.names:
            self._add(item.name.value, _UNKNOWN)

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            name = dotted_name(bound)
            if name is not None:
                self._add(name.split(".", 1)[0], _UNKNOWN)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            bound = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(bound, cst.Name):
                self._add(bound.value, _UNKNOWN)

    def _bind(
        self,
        target: cst.BaseExpression,
        value: cst.BaseExpression | None,
        element: int | None = None,
        annotation: cst.BaseExpression | None = None,
    ) -> None:
        if isinstance(target, cst.Name):
            self._add(target.value, Binding(value, element, annotation) if value is not None else _UNKNOWN)
        elif isinstance(target, cst.Attribute):
            key = dotted_name(target)
            owner = self._class_scope()
            if key is not None and key.count(".") == 1 and key.startswith("self.") and owner is not None:
                self.bindings[owner].setdefault(key, []).append(
                    Binding(value, element, annotation) if value is not None else _UNKNOWN
                )
        elif isinstance(target, (cst.Tuple, cst.List)):
            for index, item in enumerate(target.elements):
                if isinstance(item, cst.StarredElement) or element is not None:
                    self._bind(item.value, None)
                else:
                    self._bind(item.value, value, element=index)

    def _add(self, name: str, binding: Binding) -> None:
        self.bindings[self._stack[-1]].setdefault(name, []).append(binding)

    def _class_scope(self) -> cst.ClassDef | None:
        # ``self.x = ...`` in a method of a class: the method is the current scope, its parent the class.
        if len(self._stack) >= 2 and isinstance(self._stack[-1], cst.FunctionDef):
            parent = self._stack[-2]
            if isinstance(parent, cst.ClassDef):
                return parent
        return None


class ScopedBindings:
    """Bindings per scope, with the lookup rules of Python: a class body is not visible from its methods."""

    def __init__(self, module: cst.Module) -> None:
        collector = _BindingCollector(module)
        walk(module, collector)
        self.module = module
        self.bindings = collector.bindings
        self.parents = collector.parents

    def lookup(self, key: str, scope: ScopeNode) -> tuple[list[Binding], ScopeNode] | None:
        """Return the bindings ``key`` (a name or ``self.attr``) resolves to from ``scope``, and their scope."""
        if key.startswith("self."):
            current: ScopeNode | None = scope
            while current is not None and not isinstance(current, cst.ClassDef):
                current = self.parents.get(current)
            if current is None or key not in self.bindings[current]:
                return None
            return self.bindings[current][key], current
        current = scope
        first = True
        while current is not None:
            names = self.bindings.get(current, {})
            if key in names and (first or not isinstance(current, cst.ClassDef)):
                return names[key], current
            first = False
            current = self.parents.get(current)
        return None


def current_scope(context: ModuleContext) -> ScopeNode:
    """Return the innermost function or class around the node being visited, or the module."""
    for statement in reversed(context.statements):
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            return statement
    return context.module


# -- what is a pandas DataFrame or Series ---------------------------------------------

DATAFRAME = "DataFrame"
SERIES = "Series"
#: A pandas object that may be a DataFrame or a Series.
PANDAS = "pandas"
_PANDAS_KINDS = (DATAFRAME, SERIES, PANDAS)
#: Stands for the name being resolved while it is resolved (``df = df.dropna()``): it
#: neither confirms nor contradicts the other bindings.
_PENDING = "pending"

#: pandas readers that return one DataFrame (or, for ``read_json``, a Series).
PANDAS_READERS = frozenset(
    f"pandas.{name}"
    for name in (
        "read_csv", "read_table", "read_fwf", "read_excel", "read_parquet", "read_feather", "read_orc", "read_json",
        "read_sql", "read_sql_query", "read_sql_table", "read_stata", "read_sas", "read_spss", "read_xml",
        "read_clipboard", "read_hdf",
    )
)
#: Reader arguments that make it return an iterator of chunks instead of a DataFrame.
_CHUNKING_ARGUMENTS = ("chunksize", "iterator")
_FRAME_FUNCTIONS: dict[str, str] = {
    "pandas.DataFrame": DATAFRAME,
    "pandas.DataFrame.from_dict": DATAFRAME,
    "pandas.DataFrame.from_records": DATAFRAME,
    "pandas.Series": SERIES,
    "pandas.concat": PANDAS,
    "pandas.merge": DATAFRAME,
    "pandas.merge_asof": DATAFRAME,
    "pandas.merge_ordered": DATAFRAME,
    "pandas.get_dummies": DATAFRAME,
    "pandas.pivot_table": DATAFRAME,
    "pandas.pivot": DATAFRAME,
    "pandas.crosstab": DATAFRAME,
    "pandas.json_normalize": DATAFRAME,
    "pandas.melt": DATAFRAME,
    "pandas.wide_to_long": DATAFRAME,
}
_ANNOTATIONS = {
    "pandas.DataFrame": DATAFRAME,
    "pandas.core.frame.DataFrame": DATAFRAME,
    "pandas.Series": SERIES,
    "pandas.core.series.Series": SERIES,
}
#: Methods whose result is the same kind of object as the receiver (None with ``inplace=True``).
SAME_KIND_METHODS = frozenset(
    {
        "copy", "dropna", "fillna", "ffill", "bfill", "drop", "drop_duplicates", "rename", "sort_values",
        "sort_index", "replace", "astype", "head", "tail", "sample", "filter", "clip", "abs", "round", "shift",
        "diff", "pct_change", "cumsum", "cumprod", "cummax", "cummin", "where", "mask", "isna", "isnull", "notna",
        "notnull", "isin", "interpolate", "reindex", "convert_dtypes", "infer_objects", "rank", "truncate",
        "transform", "map", "add_prefix", "add_suffix", "rename_axis", "apply", "combine_first",
    }
)
#: DataFrame methods that return a DataFrame.
FRAME_METHODS = frozenset(
    {
        "merge", "join", "pivot", "pivot_table", "melt", "set_index", "corr", "cov", "explode", "nlargest",
        "nsmallest", "transpose", "query", "assign", "select_dtypes", "applymap", "describe", "get_dummies",
    }
)
#: Methods of pandas objects that return a Series whatever the receiver.
SERIES_METHODS = frozenset({"value_counts"})
_KNOWN_METHODS = SAME_KIND_METHODS | FRAME_METHODS | SERIES_METHODS | {"reset_index", "to_frame"}
#: Methods that group rows, whose aggregations return pandas objects again.
GROUPING_METHODS = frozenset({"groupby", "resample", "rolling", "expanding", "ewm"})
AGGREGATIONS = frozenset(
    {
        "mean", "sum", "count", "size", "agg", "aggregate", "median", "min", "max", "std", "var", "first", "last",
        "nunique", "transform", "cumsum", "cumcount", "prod", "quantile", "apply",
    }
)
#: Index expressions that select several rows at once: boolean masks, slices, lists. By
#: name, for ``node_types``, because the rules import libcst on first use.
_SELECTION_NODES = ("Comparison", "BooleanOperation", "List", "Slice")


def _join(kinds: Iterator[str | None]) -> str | None:
    """Combine the kinds of several bindings: known only when every binding agrees on pandas."""
    result: str | None = _PENDING
    for kind in kinds:
        if kind is None:
            return None
        if kind == _PENDING:
            continue
        if result == _PENDING or result == kind:
            result = kind
        else:
            result = PANDAS
    return result


def is_selection(expr: cst.BaseExpression) -> bool:
    """Tell whether an index expression selects several rows: ``df[df.a > 0]``, ``df[~mask]``, ``df[2:5]``."""
    if isinstance(expr, node_types(*_SELECTION_NODES)):
        return True
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.BitInvert):
        return True
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.BitAnd, cst.BitOr)):
        return True
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in (
        "isin", "isna", "notna", "isnull", "notnull", "between", "duplicated",
    )


def index_elements(node: cst.Subscript) -> list[cst.BaseExpression]:
    """Return the index expressions of ``x[a]`` or ``x[a, b]`` (slices included)."""
    elements = []
    for element in node.slice:
        index = element.slice
        elements.append(index.value if isinstance(index, cst.Index) else index)
    if len(elements) == 1 and isinstance(elements[0], cst.Tuple):
        return [item.value for item in elements[0].elements]
    return elements


class FrameTypes:
    """Infer which expressions of a module are pandas DataFrames or Series."""

    _MAX_DEPTH = 24

    def __init__(self, context: ModuleContext) -> None:
        self.context = context
        self.scopes = ScopedBindings(context.module)
        self._cache: dict[tuple[str, int], str | None] = {}

    def kind(self, expr: cst.BaseExpression, scope: ScopeNode) -> str | None:
        """Return DATAFRAME, SERIES or PANDAS for an expression known to be one, else None."""
        found = self._kind(expr, scope, set(), 0)
        return found if found in _PANDAS_KINDS else None

    def is_pandas(self, expr: cst.BaseExpression, scope: ScopeNode) -> bool:
        return self.kind(expr, scope) is not None

    # -- the inference -----------------------------------------------------------------

    def _kind(self, expr: cst.BaseExpression, scope: ScopeNode, active: set, depth: int) -> str | None:
        if depth > self._MAX_DEPTH:
            return None
        if isinstance(expr, cst.Name):
            return self._name_kind(expr.value, scope, active, depth)
        if isinstance(expr, cst.Attribute):
            key = dotted_name(expr)
            if key is not None and key.startswith("self.") and key.count(".") == 1:
                return self._name_kind(key, scope, active, depth)
            if expr.attr.value == "T":
                receiver = self._kind(expr.value, scope, active, depth + 1)
                return receiver if receiver in (DATAFRAME, _PENDING) else None
            if expr.attr.value == "dt" or (isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "dt"):
                base = expr.value if expr.attr.value == "dt" else expr.value.value
                return PANDAS if expr.attr.value != "dt" and self._is_series_like(base, scope, active, depth) else None
            return None
        if isinstance(expr, cst.Call):
            return self._call_kind(expr, scope, active, depth)
        if isinstance(expr, cst.Subscript):
            return self._subscript_kind(expr, scope, active, depth)
        if isinstance(expr, cst.BinaryOperation):
            return self._arithmetic_kind(expr, scope, active, depth)
        if isinstance(expr, cst.IfExp):
            return _join(iter([self._kind(expr.body, scope, active, depth + 1), self._kind(expr.orelse, scope, active, depth + 1)]))
        return None

    def _name_kind(self, key: str, scope: ScopeNode, active: set, depth: int) -> str | None:
        found = self.scopes.lookup(key, scope)
        if found is None:
            return None
        bindings, owner = found
        marker = (key, id(owner))
        if marker in active:
            return _PENDING
        if not active and marker in self._cache:
            return self._cache[marker]
        active.add(marker)
        try:
            # Names are looked up from the scope that binds them, not the one that uses them.
            result = _join(self._binding_kind(binding, owner, active, depth + 1) for binding in bindings)
        finally:
            active.discard(marker)
        result = None if result == _PENDING else result
        if not active:
            self._cache[marker] = result
        return result

    def _binding_kind(self, binding: Binding, scope: ScopeNode, active: set, depth: int) -> str | None:
        if binding.annotation is not None:
            annotated = self._annotation_kind(binding.annotation)
            if annotated is not None:
                return annotated
        if binding.value is None:
            return None
        if binding.element is None:
            return self._kind(binding.value, scope, active, depth)
        value = binding.value
        if isinstance(value, (cst.Tuple, cst.List)):
            items = value.elements
            if binding.element < len(items) and not isinstance(items[binding.element], cst.StarredElement):
                return self._kind(items[binding.element].value, scope, active, depth)
            return None
        if isinstance(value, cst.Call) and self.context.qualified_name(value.func) == "sklearn.model_selection.train_test_split":
            # ``a_train, a_test, b_train, b_test = train_test_split(a, b)``: each output has its input's type.
            arrays = [arg for arg in value.args if arg.keyword is None]
            if any(arg.star for arg in arrays) or binding.element >= 2 * len(arrays):
                return None
            return self._kind(arrays[binding.element // 2].value, scope, active, depth)
        return None

    def _annotation_kind(self, annotation: cst.BaseExpression) -> str | None:
        if isinstance(annotation, cst.SimpleString):
            text = literal_string(annotation)
            if text is None:
                return None
            try:
                annotation = cst.parse_expression(text)
            except cst.ParserSyntaxError:
                return None
        return _ANNOTATIONS.get(self.context.qualified_name(annotation) or "")

    def _call_kind(self, call: cst.Call, scope: ScopeNode, active: set, depth: int) -> str | None:
        name = self.context.qualified_name(call.func)
        if name is not None:
            if name in PANDAS_READERS:
                if any(keyword_value(call, argument) is not None for argument in _CHUNKING_ARGUMENTS):
                    return None
                sheet = keyword_value(call, "sheet_name")
                if sheet is not None and not isinstance(sheet, (cst.SimpleString, cst.Integer)):
                    return None
                return DATAFRAME if name != "pandas.read_json" else PANDAS
            return _FRAME_FUNCTIONS.get(name)

        func = call.func
        if not isinstance(func, cst.Attribute):
            return None
        method = func.attr.value
        receiver = func.value

        if method in AGGREGATIONS and self._is_grouping(receiver, scope, active, depth):
            return PANDAS
        if isinstance(receiver, cst.Attribute) and receiver.attr.value in ("str", "dt"):
            return PANDAS if self._is_series_like(receiver.value, scope, active, depth) else None
        if method not in _KNOWN_METHODS:
            return None
        if is_true(keyword_value(call, "inplace")):
            return None

        kind = self._kind(receiver, scope, active, depth + 1)
        if kind is None:
            return None
        if method in SAME_KIND_METHODS:
            return kind
        if method in SERIES_METHODS:
            return SERIES
        if method == "reset_index":
            return DATAFRAME if kind in (DATAFRAME, _PENDING) else PANDAS
        if method == "to_frame":
            return DATAFRAME if kind in (SERIES, _PENDING) else None
        return DATAFRAME if kind in (DATAFRAME, _PENDING) else None

    def _is_grouping(self, expr: cst.BaseExpression, scope: ScopeNode, active: set, depth: int) -> bool:
        # ``df.groupby("a")`` or ``df.groupby("a")["b"]``
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)):
            return False
        if expr.func.attr.value not in GROUPING_METHODS:
            return False
        return self._kind(expr.func.value, scope, active, depth + 1) is not None

    def _is_series_like(self, expr: cst.BaseExpression, scope: ScopeNode, active: set, depth: int) -> bool:
        return self._kind(expr, scope, active, depth + 1) in (SERIES, PANDAS, _PENDING)

    def _subscript_kind(self, node: cst.Subscript, scope: ScopeNode, active: set, depth: int) -> str | None:
        value = node.value
        elements = index_elements(node)
        if not elements:
            return None
        if isinstance(value, cst.Attribute) and value.attr.value in ("loc", "iloc"):
            owner = self._kind(value.value, scope, active, depth + 1)
            if owner is None:
                return None
            if any(is_selection(element) for element in elements):
                return owner if owner == SERIES else PANDAS
            # ``df.loc[label]`` is a row (a Series, or a DataFrame for a repeated label);
            # ``df.loc[i, "a"]`` and ``series.loc[label]`` may be single values.
            return PANDAS if len(elements) == 1 and owner in (DATAFRAME, _PENDING) else None
        owner = self._kind(value, scope, active, depth + 1)
        if owner is None or len(elements) != 1:
            return None
        key = elements[0]
        if owner == SERIES:
            return SERIES if is_selection(key) else None
        if owner == PANDAS:
            return PANDAS if is_selection(key) else None
        # A DataFrame's ``[]`` returns a Series for a column label, a DataFrame for anything else.
        if literal_string(key) is not None:
            return SERIES
        if isinstance(key, (cst.List, cst.Slice)) or is_selection(key):
            return DATAFRAME
        return PANDAS

    def _arithmetic_kind(self, node: cst.BinaryOperation, scope: ScopeNode, active: set, depth: int) -> str | None:
        if isinstance(node.operator, cst.MatrixMultiply):
            return None
        sides = []
        for side in (node.left, node.right):
            if isinstance(side, (cst.Integer, cst.Float)):
                continue
            sides.append(self._kind(side, scope, active, depth + 1))
        if not sides or any(side is None for side in sides):
            return None
        return _join(iter(sides))


_FRAME_TYPES: weakref.WeakKeyDictionary[ModuleContext, FrameTypes] = weakref.WeakKeyDictionary()


def frame_types(context: ModuleContext) -> FrameTypes:
    """Return the module's type inference, built on first use and shared by every rule of the traversal."""
    types = _FRAME_TYPES.get(context)
    if types is None:
        types = FrameTypes(context)
        _FRAME_TYPES[context] = types
    return types


class PandasRule(FileRule):
    """A rule that needs to know whether expressions are DataFrames or Series."""

    def is_pandas(self, expr: cst.BaseExpression) -> bool:
        return frame_types(self.context).is_pandas(expr, current_scope(self.context))

    def pandas_kind(self, expr: cst.BaseExpression) -> str | None:
        return frame_types(self.context).kind(expr, current_scope(self.context))


def code_text(node: cst.CSTNode, limit: int = 60) -> str:
    """Return the source of a node on one line, shortened for a message."""
    text = " ".join(cst.Module(body=[]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def imports_module(context: ModuleContext, expr: cst.BaseExpression) -> bool:
    """Tell whether an expression resolves to an imported name (a module or a function, not a value)."""
    name = context.qualified_name(expr)
    return name is not None and not name.startswith("builtins.")


# -- AIML561 nan-equality-comparison --------------------------------------------------

#: Values that no comparison with ``==`` can match.
NAN_VALUES = {
    "numpy.nan": "np.nan",
    "numpy.NaN": "np.nan",
    "numpy.NAN": "np.nan",
    "math.nan": "math.nan",
    "torch.nan": "torch.nan",
    "pandas.NA": "pd.NA",
    "pandas.NaT": "pd.NaT",
}


_NAN_COMPARISON_TEXT = re.compile(
    r"[=!]=\s*(?:[\w.]+\.)?(?:nan|na|nat)\b|\b(?:nan|na|nat)\s*[=!]="
    r"|[=!]=\s*[\w.]*\(\s*['\"][+-]?nan['\"]|\(\s*['\"][+-]?nan['\"]\s*\)\s*[=!]=",
    re.IGNORECASE,
)


class NanEqualityComparison(FileRule):
    """Flag ``==`` and ``!=`` comparisons with NaN, NA or NaT."""

    code = "AIML561"
    slug = "nan-equality-comparison"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    smells = ("NaN Equivalence Comparison Misused",)
    message = "a value is compared with NaN using == or !="
    impact = (
        "NaN is not equal to anything, itself included, so 'x == np.nan' is always False and 'x != np.nan' "
        "always True; pd.NA compares to pd.NA and raises in an if. A filter or a missing-value check "
        "written this way silently matches nothing (or everything), and missing values reach the model."
    )
    fix = (
        "Test for missing values with pd.isna(x) / df['col'].isna() / notna() for pandas data, "
        "np.isnan(x) for NumPy arrays, math.isnan(x) for floats and torch.isnan(t) for tensors."
    )
    prefilter = ("nan", "NaN", "NA", "NaT")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        # "NA" is in every upper-case name; the rule needs a comparison operator beside the value.
        return cls.matches_text(text) and _NAN_COMPARISON_TEXT.search(text) is not None

    def visit_Comparison(self, node: cst.Comparison) -> None:
        left = node.left
        for target in node.comparisons:
            operator = target.operator
            if isinstance(operator, (cst.Equal, cst.NotEqual)):
                symbol = "==" if isinstance(operator, cst.Equal) else "!="
                for side, other in ((target.comparator, left), (left, target.comparator)):
                    nan = self._nan_value(side)
                    if nan is not None:
                        self._report(node, other, symbol, nan)
                        break
            left = target.comparator

    def _report(self, node: cst.Comparison, other: cst.BaseExpression, symbol: str, nan: str) -> None:
        subject = code_text(other, 40)
        if nan == "pd.NA":
            outcome = "returns pd.NA, never True or False"
        elif symbol == "==":
            outcome = "is always False"
        else:
            outcome = "is always True"
        self.report(node, f"'{subject} {symbol} {nan}' {outcome}: NaN is equal to nothing, itself included")

    def _nan_value(self, expr: cst.BaseExpression) -> str | None:
        if isinstance(expr, cst.Call):
            name = self.context.qualified_name(expr.func)
            if name in ("builtins.float", "numpy.float64", "numpy.float32") and len(expr.args) == 1:
                text = literal_string(expr.args[0].value)
                if text is not None and text.strip().lstrip("+-").lower() == "nan":
                    return f"{code_text(expr.func)}('nan')"
            return None
        if isinstance(expr, (cst.Name, cst.Attribute)):
            return NAN_VALUES.get(self.context.qualified_name(expr) or "")
        return None


NanEqualityComparison.VALID = (
    Example("import numpy as np\n\nmissing = np.isnan(x)\nclean = x[~np.isnan(x)]\n"),
    Example("import pandas as pd\n\nrows = df[df['age'].isna()]\nkept = df[pd.notna(df['age'])]\n"),
    Example("import math\n\nif math.isnan(value):\n    value = 0.0\n"),
    Example("nan = 0\nif count == nan:\n    pass\n"),
    Example("import numpy as np\n\n# an 'is' test is a different question\nif value is np.nan:\n    pass\n"),
    Example("import numpy as np\n\nsame = np.array_equal(a, b, equal_nan=True)\nlabel = 'nan' == text\n"),
    Example("from mylib import nan\n\nif x == nan:\n    pass\n"),
    Example("import numpy as np\n\nfilled = np.where(np.isnan(x), 0.0, x)\nif x == float('inf'):\n    pass\n"),
)
NanEqualityComparison.INVALID = (
    Example("import numpy as np\n\nmissing = df[df['age'] == np.nan]\n", lines=(3,)),
    Example("import numpy\n\nif value != numpy.nan:\n    total += value\n", lines=(3,)),
    Example("import math\n\nif score == math.nan:\n    score = 0\n", lines=(3,)),
    Example("x = float('nan')\nif y == float('NaN'):\n    pass\n", lines=(2,)),
    Example("import pandas as pd\n\nmask = frame['city'] == pd.NA\n", lines=(3,)),
    Example("from numpy import nan as NAN\n\nflags = [v for v in values if v == NAN]\n", lines=(3,)),
    Example("import numpy as np\n\nif np.nan == x:\n    pass\n", lines=(3,)),
    Example("import pandas as pd\n\nvalid = dates != pd.NaT\n", lines=(3,)),
)


# -- AIML562 chain-indexing ----------------------------------------------------------

_ACCESSORS = ("loc", "iloc", "at", "iat")


def _indexed_object(target: cst.Subscript) -> cst.BaseExpression:
    """Return the object a subscript writes into: ``x`` for ``x[k]`` and for ``x.loc[k]``."""
    value = target.value
    if isinstance(value, cst.Attribute) and value.attr.value in _ACCESSORS:
        return value.value
    return value


def _is_indexing(expr: cst.BaseExpression) -> bool:
    """Tell whether an expression is itself the result of indexing: ``df[m]``, ``df.loc[r]``."""
    return isinstance(expr, cst.Subscript)


class ChainIndexing(PandasRule):
    """Flag pandas chained indexing: writes through ``df[a][b] = v`` and row-then-column reads ``df[mask]['col']``."""

    code = "AIML562"
    slug = "chain-indexing"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Chain Indexing",)
    message = "a DataFrame is indexed twice in a row (chained indexing)"
    impact = (
        "The first indexing may return a copy, so an assignment through the chain may change only that "
        "temporary copy: pandas warns with SettingWithCopyWarning, and under copy-on-write (the default "
        "from pandas 3.0) the frame is never changed. Chained reads also build an intermediate frame "
        "for nothing."
    )
    fix = (
        "Index once with .loc or .iloc: df.loc[mask, 'col'] = value instead of df[mask]['col'] = value, "
        "df.loc[row, 'col'] instead of df['col'][row] or df.loc[row]['col']."
    )
    prefilter = ("][", "].loc[", "].iloc[", "].at[", "].iat[")

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._targets: set[int] = set()

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "pandas" in text and cls.matches_text(text)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._check_target(target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check_target(node.target)

    def _check_target(self, target: cst.BaseExpression) -> None:
        if not isinstance(target, cst.Subscript):
            return
        written = _indexed_object(target)
        if not _is_indexing(written):
            return
        self._mark_target(target)
        if self.is_pandas(written):
            self.report(
                target,
                f"'{code_text(target)} = ...' assigns through chained indexing: it may write to a temporary copy "
                "and leave the DataFrame unchanged",
            )

    def _mark_target(self, node: cst.BaseExpression) -> None:
        while isinstance(node, (cst.Subscript, cst.Attribute)):
            self._targets.add(id(node))
            node = node.value

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if id(node) in self._targets:
            return
        # A row selection followed by a column: ``df[df.a > 0]['b']`` or ``df.loc[rows]['b']``.
        elements = index_elements(node)
        if len(elements) != 1 or not self._is_column_key(elements[0]):
            return
        inner = node.value
        if not isinstance(inner, cst.Subscript):
            return
        rows = index_elements(inner)
        if len(rows) != 1:
            return
        accessor = inner.value
        if isinstance(accessor, cst.Attribute) and accessor.attr.value in ("loc", "iloc"):
            frame = accessor.value
        elif is_selection(rows[0]) and not isinstance(rows[0], cst.List):
            frame = accessor
        else:
            return
        if self.pandas_kind(frame) != DATAFRAME:
            return
        self._mark_target(node)
        self.report(
            node,
            f"'{code_text(node)}' selects rows and then a column in two indexing steps; use one .loc[rows, column]",
        )

    @staticmethod
    def _is_column_key(key: cst.BaseExpression) -> bool:
        if literal_string(key) is not None:
            return True
        return isinstance(key, cst.List) and bool(key.elements) and all(
            literal_string(item.value) is not None for item in key.elements
        )


ChainIndexing.VALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv')\ndf.loc[df['age'] > 60, 'senior'] = True\n"),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv')\nages = df.loc[df['age'] > 60, 'age']\n"),
    Example(
        "import pandas as pd\n\nconfig = {'train': {}}\nconfig['train']['lr'] = 0.1\n"
        "# a nested dict, not a DataFrame\nvalue = config['train']['lr']\n"
    ),
    Example("import numpy as np\n\ngrid = np.zeros((3, 3))\ngrid[0][1] = 5\nrow = grid[grid > 0][0]\n"),
    Example(
        "import pandas as pd\n\ndef fill(frames: dict):\n    frames['train']['label'] = 0\n"
    ),
    Example(
        "import polars as pl\nimport pandas as pd\n\ndf = pl.read_csv('d.csv')\ndf[0]['a'] = 1\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv')\n# a column, then rows of that Series: one Series, no copy of the frame\n"
        "adults = df['age'][df['age'] > 18]\n"
    ),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv')\nfirst = df.iloc[0, 2]\ndf.at[3, 'a'] = 1\n"),
)
ChainIndexing.INVALID = (
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv')\ndf[df['age'] > 60]['senior'] = True\n", lines=(4,)
    ),
    Example("import pandas as pd\n\ndf = pd.DataFrame({'a': [1, 2]})\ndf['a'][0] = 10\n", lines=(4,)),
    Example(
        "import pandas as pd\n\ndef clean(frame: pd.DataFrame):\n    frame.loc[0]['a'] = 1\n"
        "    frame['b'].iloc[0] += 1\n",
        lines=(4, 5),
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv')\nseniors = df[df['age'] > 60]['name']\n"
        "first = df.loc[df.index[:5]]['name']\n",
        lines=(4, 5),
    ),
)


# -- AIML563 read-without-dtype --------------------------------------------------------

TEXT_READERS = frozenset({"pandas.read_csv", "pandas.read_table", "pandas.read_fwf"})


class ReadWithoutDtype(FileRule):
    """Flag text-file readers that let pandas guess every column's type."""

    code = "AIML563"
    slug = "read-without-dtype"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Columns and DataType Not Explicitly Set",)
    message = "a CSV file is read without explicit column types"
    impact = (
        "Without dtype, pandas guesses each column's type from the data: IDs with leading zeros become "
        "integers, a column with one stray string becomes object, an all-empty chunk becomes float, and "
        "the guess changes when the data does, so training and serving may see different types."
    )
    fix = (
        "Pass dtype={'col': 'int64', ...} (and usecols=[...] for the columns you need) to read_csv, or "
        "convert them explicitly with converters= or .astype({...}) right after reading."
    )
    prefilter = ("read_csv", "read_table", "read_fwf")
    applies_to_tests = False

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._typed: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "astype" and isinstance(func.value, cst.Call):
            # ``pd.read_csv(p).astype({...})`` sets the types explicitly.
            self._typed.add(id(func.value))
            return
        name = self.context.qualified_name(func)
        if name not in TEXT_READERS or id(node) in self._typed:
            return
        if has_star_kwargs(node) or any(keyword_value(node, key) is not None for key in ("dtype", "converters")):
            return
        reader = name.rsplit(".", 1)[-1]
        source = call_argument(node, 0, "filepath_or_buffer")
        shown = f"({code_text(source.value, 40)})" if source is not None else "(...)"
        self.report(node, f"{reader}{shown} reads without dtype=, so pandas guesses every column's type")


ReadWithoutDtype.VALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype={'id': 'string', 'age': 'int64'})\n"),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', usecols=['id'], converters={'id': str})\n"),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv').astype({'id': 'string'})\n"),
    Example("import pandas as pd\n\nOPTIONS = {'dtype': str}\ndf = pd.read_csv('d.csv', **OPTIONS)\n"),
    Example("import polars as pl\n\ndf = pl.read_csv('d.csv')\n"),
    Example("import pandas as pd\n\ndef test_load():\n    assert len(pd.read_csv('d.csv')) == 3\n", path="tests/test_load.py"),
    Example("from pyspark.sql import SparkSession\n\ndf = spark.read.csv('d.csv', header=True)\n"),
    Example("import pandas as pd\n\ndf = pd.read_parquet('d.parquet')\n"),
)
ReadWithoutDtype.INVALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('data/train.csv')\n", lines=(3,)),
    Example("from pandas import read_csv\n\nframe = read_csv(path, sep=';', usecols=['a', 'b'])\n", lines=(3,)),
    Example("import pandas\n\nraw = pandas.read_table('d.tsv')\nfixed = pandas.read_fwf('d.txt', widths=[3, 5])\n", lines=(3, 4)),
)


# -- AIML564 merge-parameters-not-set --------------------------------------------------

_KEY_ARGUMENTS = ("on", "left_on", "right_on", "left_index", "right_index")


class MergeParametersNotSet(PandasRule):
    """Flag ``merge`` calls that leave the join type, the keys or the cardinality check to defaults."""

    code = "AIML564"
    slug = "merge-parameters-not-set"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Merge API Parameter Not Explicitly Set",)
    message = "a merge leaves how, on or validate to their defaults"
    impact = (
        "With the defaults, merge does an inner join on every column the two frames share: a column added "
        "later silently joins too, rows without a match vanish, and a duplicated key multiplies rows "
        "without an error. The feature table then differs from what the code seems to build."
    )
    fix = (
        "Pass how= ('left', 'inner', ...), the key columns with on= (or left_on/right_on, left_index/"
        "right_index), and validate= ('one_to_one', 'many_to_one', ...) so pandas raises on unexpected "
        "duplicate keys."
    )
    prefilter = ("merge(",)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "pandas" in text and cls.matches_text(text)

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name == "pandas.merge":
            offset = 2
            shown = "pd.merge(...)"
        elif name is None and isinstance(node.func, cst.Attribute) and node.func.attr.value == "merge":
            if self.pandas_kind(node.func.value) != DATAFRAME:
                return
            offset = 1
            shown = f"{code_text(node.func.value, 30)}.merge(...)"
        else:
            return
        if has_star_kwargs(node) or any(arg.star for arg in node.args):
            return
        how = call_argument(node, offset, "how")
        missing = []
        if how is None:
            missing.append("how")
        cross = how is not None and literal_string(how.value) == "cross"
        if not cross and call_argument(node, offset + 1, "on") is None and not any(
            keyword_value(node, key) is not None for key in _KEY_ARGUMENTS
        ):
            missing.append("on")
        if not cross and keyword_value(node, "validate") is None:
            missing.append("validate")
        if missing:
            self.report(node, f"{shown} does not set {', '.join(missing)}")


MergeParametersNotSet.VALID = (
    Example(
        "import pandas as pd\n\nfeatures = pd.merge(users, orders, how='left', on='user_id', validate='one_to_many')\n"
    ),
    Example(
        "import pandas as pd\n\nusers = pd.read_csv('u.csv', dtype=str)\n"
        "joined = users.merge(orders, 'left', left_on='id', right_on='user_id', validate='one_to_many')\n"
    ),
    Example("import pandas as pd\n\npairs = pd.merge(a, b, how='cross')\n"),
    Example("import pandas as pd\n\nopts = dict(how='left', on='id', validate='1:1')\nout = pd.merge(a, b, **opts)\n"),
    Example(
        "import pandas as pd\n\n# a receiver that is not known to be a DataFrame\nresult = left.merge(right)\n"
    ),
    Example("import polars as pl\nimport pandas as pd\n\ndf = pl.read_csv('a.csv')\nout = df.merge(other)\n"),
    Example(
        "import pandas as pd\n\nusers = pd.read_csv('u.csv', dtype=str)\n"
        "both = users.merge(orders, how='inner', left_index=True, right_index=True, validate='1:1')\n"
    ),
)
MergeParametersNotSet.INVALID = (
    Example("import pandas as pd\n\nfeatures = pd.merge(users, orders)\n", lines=(3,)),
    Example(
        "import pandas as pd\n\nusers = pd.read_csv('u.csv', dtype=str)\njoined = users.merge(orders, on='user_id')\n",
        lines=(4,),
    ),
    Example(
        "import pandas as pd\n\ndef join(left: pd.DataFrame, right):\n    return left.merge(right, how='left', on='id')\n",
        lines=(4,),
    ),
)


# -- AIML565 discarded-dataframe-result --------------------------------------------------

#: DataFrame and Series methods that return a new object instead of changing the receiver.
COPYING_METHODS = frozenset(
    {
        "dropna", "fillna", "drop", "rename", "sort_values", "sort_index", "reset_index", "set_index", "replace",
        "astype", "drop_duplicates", "ffill", "bfill", "interpolate", "clip", "where", "mask", "query", "eval",
        "rename_axis", "round", "abs", "convert_dtypes", "infer_objects", "reindex", "transpose", "add_prefix",
        "add_suffix", "assign", "merge", "join",
    }
)
#: Module functions whose only effect is their result, unless given ``out=``.
PURE_ARRAY_FUNCTIONS = frozenset(
    {f"numpy.{name}" for name in (
        "append", "insert", "delete", "concatenate", "stack", "vstack", "hstack", "sort", "reshape", "transpose",
        "squeeze", "expand_dims", "flip", "roll", "clip", "round", "around", "abs", "absolute", "unique",
    )}
    | {f"torch.{name}" for name in (
        "cat", "concat", "stack", "clamp", "clip", "reshape", "flatten", "squeeze", "unsqueeze", "transpose",
        "permute", "sort", "flip", "roll",
    )}
    | {"pandas.concat", "pandas.merge"}
)


_NOUNS = {DATAFRAME: "DataFrame", SERIES: "Series"}
#: A statement (or notebook line) that starts with a name and calls a copying method on its first line.
_BARE_METHOD_CALL = re.compile(
    rf"(?:^|;|\")[ \t]*[A-Za-z_][\w.]*(?:[(\[][^\n]*)?\.(?:{'|'.join(sorted(COPYING_METHODS))})\(", re.MULTILINE
)
_ARRAY_NAMES = "|".join(sorted({qualified.rsplit(".", 1)[-1] for qualified in PURE_ARRAY_FUNCTIONS}))
#: ``import numpy as np`` and ``import torch as T``: the names a module's array functions are called on.
_MODULE_ALIAS = re.compile(r"(?:^|\")[ \t]*import[ \t]+(?:numpy|torch|pandas)[ \t]+as[ \t]+(\w+)", re.MULTILINE)


class DiscardedDataFrameResult(PandasRule):
    """Flag statements that call a copying DataFrame method or array function and drop its result."""

    code = "AIML565"
    slug = "discarded-dataframe-result"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    smells = ("In-Place APIs Misused",)
    message = "the result of a method that returns a new DataFrame or array is discarded"
    impact = (
        "df.dropna(), df.fillna(0), np.append(a, x) and their kind return a new object and leave the "
        "receiver unchanged. Called as a statement, they do nothing: the missing values, the dropped "
        "columns or the appended rows the code relies on are still there (or still missing) when the "
        "model trains."
    )
    fix = (
        "Assign the result (df = df.dropna(); a = np.append(a, x)), or for pandas methods that accept it "
        "pass inplace=True. Prefer assignment: pandas plans to remove inplace from most methods."
    )
    prefilter = tuple(
        f"{name}(" for name in sorted({qualified.rsplit(".", 1)[-1] for qualified in PURE_ARRAY_FUNCTIONS} | COPYING_METHODS)
    )

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        # Only a statement that starts with the call can discard it. ``items.append(x)`` and
        # ``thread.join()`` statements are everywhere, so array functions count only on a NumPy
        # or torch alias (or imported by name), and frame methods only where pandas is imported.
        # A notebook's lines start after the quote of its JSON string.
        if not cls.matches_text(text):
            return False
        if "pandas" in text and _BARE_METHOD_CALL.search(text):
            return True
        aliases = {"numpy", "torch", "pandas", *_MODULE_ALIAS.findall(text)}
        receivers = "|".join(sorted(re.escape(alias) for alias in aliases))
        return re.search(rf"(?:^|;|\")[ \t]*(?:(?:{receivers})\.)?(?:{_ARRAY_NAMES})\(", text, re.MULTILINE) is not None

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: Module-level statements of a notebook that may end a cell, where Jupyter displays the value.
        self._displayed: set[int] = set()

    def visit_Module(self, node: cst.Module) -> None:
        if not self.context.path.endswith(".ipynb"):
            return
        # Cells are joined with one empty line. So a statement followed directly by the next
        # one, with no empty or comment line between them, cannot be the last of its cell.
        body = node.body
        for index, statement in enumerate(body):
            following = body[index + 1] if index + 1 < len(body) else None
            if following is None or following.leading_lines:
                self._displayed.add(id(statement))

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        if self._probes_for_error(node):
            return
        if id(node) in self._displayed:
            # Only the last expression of a cell is displayed.
            expressions = [small for small in node.body if isinstance(small, cst.Expr)]
            last = node.body[-1]
            candidates = [small for small in expressions if small is not last]
        else:
            candidates = [small for small in node.body if isinstance(small, cst.Expr)]
        for small in candidates:
            if isinstance(small.value, cst.Call):
                self._check(small.value)

    def _probes_for_error(self, node: cst.SimpleStatementLine) -> bool:
        # ``try: s.astype(float) except ValueError: ...`` calls the method for its exception.
        statements = self.context.statements
        enclosing = statements[-2] if len(statements) >= 2 else None
        return isinstance(enclosing, cst.Try) and any(statement is node for statement in enclosing.body.body)

    def _check(self, call: cst.Call) -> None:
        if keyword_value(call, "out") is not None or has_star_kwargs(call):
            return
        name = self.context.qualified_name(call.func)
        if name in PURE_ARRAY_FUNCTIONS:
            self.report(call, f"{code_text(call.func)}() returns a new object and its result is discarded, so nothing changes")
            return
        func = call.func
        if name is not None or not isinstance(func, cst.Attribute) or func.attr.value not in COPYING_METHODS:
            return
        if is_true(keyword_value(call, "inplace")):
            return
        kind = self.pandas_kind(func.value)
        if kind is None:
            return
        receiver = code_text(func.value, 40)
        noun = _NOUNS.get(kind, "object")
        unchanged = "the receiver" if len(receiver) >= 40 else receiver
        self.report(
            call,
            f"{receiver}.{func.attr.value}() returns a new {noun} and the result is discarded, so {unchanged} is unchanged",
        )


DiscardedDataFrameResult.VALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf = df.dropna()\ndf.fillna(0, inplace=True)\n"),
    Example("import numpy as np\n\nvalues = np.append(values, 3)\nnp.clip(x, 0, 1, out=x)\n"),
    Example("items = {}\nitems.update(a=1)\nnames = []\nnames.sort()\ntext = 'a b'\ntext.replace('a', 'b')\n"),
    Example(
        "import pandas as pd\n\n# a receiver that is not known to be pandas\nrecord.drop('id')\nquery.replace('x', 'y')\n"
    ),
    Example("import polars as pl\n\ndf = pl.read_csv('d.csv')\ndf.drop('id')\n"),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf.to_csv('out.csv')\ndf.info()\ndf.head()\n"
    ),
    Example(
        "import torch\n\nx = torch.zeros(3)\nx.clamp_(0, 1)\ntorch.cat([a, b], out=buffer)\n"
    ),
    Example(
        # In a notebook the last expression of a cell is displayed, not discarded.
        source='{"cells": [{"cell_type": "code", "source": ["import pandas as pd\\n", '
        '"df = pd.read_csv(\'d.csv\', dtype=str)\\n", "df.dropna()"], "metadata": {}, "outputs": [], '
        '"execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        path="explore.ipynb",
    ),
)
DiscardedDataFrameResult.VALID += (
    Example(
        "import pandas as pd\n\ndef is_numeric(column: pd.Series) -> bool:\n    try:\n        column.astype(float)\n"
        "    except ValueError:\n        return False\n    return True\n"
    ),
)
DiscardedDataFrameResult.INVALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf.dropna()\n", lines=(4,)),
    Example(
        "import pandas as pd\n\ndef clean(frame: pd.DataFrame) -> pd.DataFrame:\n"
        "    frame.drop(columns=['id'])\n    frame['age'].fillna(0)\n    return frame\n",
        lines=(4, 5),
    ),
    Example("import numpy as np\n\nfor row in rows:\n    np.append(values, row)\n", lines=(4,)),
    Example("import torch\n\ntorch.cat([a, b])\n", lines=(3,)),
    Example(
        "import pandas as pd\n\ndf = pd.DataFrame(rows)\ndf.rename(columns={'a': 'b'})\ndf.sort_values('b', inplace=False)\n",
        lines=(4, 5),
    ),
    Example(
        source='{"cells": [{"cell_type": "code", "source": ["import pandas as pd\\n", '
        '"df = pd.read_csv(\'d.csv\', dtype=str)\\n", "df.dropna()\\n", "df.describe()"], "metadata": {}, '
        '"outputs": [], "execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
        path="explore.ipynb",
        lines=(3,),
    ),
)


# -- AIML566 values-instead-of-to-numpy -------------------------------------------------


class ValuesInsteadOfToNumpy(PandasRule):
    """Flag ``.values`` on a DataFrame or Series."""

    code = "AIML566"
    slug = "values-instead-of-to-numpy"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Dataframe Conversion API Misused",)
    message = ".values is read on a DataFrame or Series"
    impact = (
        ".values returns a NumPy array for some dtypes and a pandas extension array for others "
        "(categoricals, nullable integers, timezone-aware dates), and whether it copies is unspecified. "
        "Code that expects an ndarray breaks or silently mutates the frame depending on the column types."
    )
    fix = (
        "Use .to_numpy() (with dtype= and na_value= when needed) to get an ndarray, or .array for the "
        "pandas extension array."
    )
    prefilter = (".values",)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._called: set[int] = set()

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "pandas" in text and cls.matches_text(text)

    def visit_Call(self, node: cst.Call) -> None:
        # ``mapping.values()`` is a method call, not the attribute.
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "values":
            self._called.add(id(node.func))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value != "values" or id(node) in self._called:
            return
        kind = self.pandas_kind(node.value)
        if kind is None:
            return
        receiver = code_text(node.value, 40)
        if len(receiver) >= 40:
            # A long chain reads better without being repeated twice in one line.
            self.report(node, f".values on the {_NOUNS.get(kind, 'pandas object')} {receiver}: use .to_numpy() for a NumPy array")
            return
        self.report(node, f"{receiver}.values: use {receiver}.to_numpy() for a NumPy array")


ValuesInsteadOfToNumpy.VALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nX = df.to_numpy()\ny = df['y'].to_numpy()\n"),
    Example("import pandas as pd\n\nscores = {'a': 1}\ntotal = sum(scores.values())\n"),
    Example("import numpy as np\nimport pandas as pd\n\narr = np.zeros(3)\nvalues = arr.values if hasattr(arr, 'values') else arr\n"),
    Example("import pandas as pd\n\n# the receiver is not known to be pandas\nX = features.values\n"),
    Example("import polars as pl\nimport pandas as pd\n\ndf = pl.read_csv('d.csv')\nX = df.values\n"),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf = df.to_numpy()\n"
        "# df is an ndarray at one point, so its type is not known\nX = df.values\n"
    ),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nnames = df.columns.values\n"),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n\ndef f(df):\n    # a parameter shadows the module's df\n"
        "    return df.values\n"
    ),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', chunksize=100)\nfirst = df.values\n"),
)
ValuesInsteadOfToNumpy.INVALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nX = df.values\n", lines=(4,)),
    Example(
        "import pandas as pd\n\ndef features(frame: pd.DataFrame):\n    clean = frame.dropna()\n"
        "    return clean[['a', 'b']].values, clean['y'].values\n",
        lines=(5,),
    ),
    Example(
        "import pandas as pd\nfrom sklearn.model_selection import train_test_split\n\n"
        "data = pd.read_parquet('d.parquet')\ntrain, test = train_test_split(data, test_size=0.2)\n"
        "X_train = train.drop(columns=['y']).values\n",
        lines=(6,),
    ),
    Example(
        "import pandas as pd\n\nclass Dataset:\n    def __init__(self, path):\n        self.frame = pd.read_csv(path, dtype=str)\n\n"
        "    def labels(self):\n        return self.frame['label'].values\n",
        lines=(8,),
    ),
    Example("import pandas as pd\n\nX = pd.concat([a, b]).values\n", lines=(3,)),
)


# -- AIML567 dataframe-row-iteration / AIML568 frame-modified-while-iterating -------------

ROW_ITERATORS = frozenset({"iterrows", "itertuples"})
_ROW_ACCESSORS = ("iloc", "loc", "at", "iat")


def row_iterator(iterable: cst.BaseExpression) -> tuple[str, cst.BaseExpression] | None:
    """Return the method and the frame of ``df.iterrows()`` / ``df.itertuples()``, or None."""
    if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
        if iterable.func.attr.value in ROW_ITERATORS:
            return iterable.func.attr.value, iterable.func.value
    return None


def _range_over_length(iterable: cst.BaseExpression, context: ModuleContext) -> str | None:
    """Return the written frame of ``range(len(df))`` (or ``range(0, len(df))``), or None."""
    if not isinstance(iterable, cst.Call) or context.qualified_name(iterable.func) != "builtins.range":
        return None
    args = [arg.value for arg in iterable.args]
    if len(args) == 2 and isinstance(args[0], cst.Integer) and args[0].value == "0":
        args = args[1:]
    if len(args) != 1 or not isinstance(args[0], cst.Call):
        return None
    length = args[0]
    if context.qualified_name(length.func) != "builtins.len" or len(length.args) != 1:
        return None
    return dotted_name(length.args[0].value)


class _BodyScan(Visitor):
    """Collect what a loop body does: assignment targets, whole uses of a name, and per-index row reads."""

    def __init__(self, context: ModuleContext, row: str | None, frame: str | None, index: str | None) -> None:
        super().__init__()
        self.context = context
        self.row = row
        self.frame = frame
        self.index = index
        self.targets: list[cst.BaseExpression] = []
        #: The row variable used as a whole value: passed on, appended, returned.
        self.row_used_whole = False
        #: ``df.iloc[i]`` and the like, with ``i`` the loop's index.
        self.indexed_reads: list[cst.Subscript] = []
        #: The body prints, writes, sends, logs, plots, yields or awaits once per row.
        self.side_effects = False
        self._field_bases: set[int] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        self.targets.extend(target.target for target in node.targets)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.targets.append(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.targets.append(node.target)

    def visit_Yield(self, node: cst.Yield) -> None:
        self.side_effects = True

    def visit_Await(self, node: cst.Await) -> None:
        self.side_effects = True

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name is not None:
            if name in ("builtins.print", "builtins.open") or name.split(".", 1)[0] in _SIDE_EFFECT_MODULES:
                self.side_effects = True
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _SIDE_EFFECT_METHODS:
            self.side_effects = True

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self._field_bases.add(id(node.value))
        value = node.value
        if (
            self.index is not None
            and isinstance(value, cst.Attribute)
            and value.attr.value in _ROW_ACCESSORS
            and dotted_name(value.value) == self.frame
        ):
            elements = index_elements(node)
            if elements and isinstance(elements[0], cst.Name) and elements[0].value == self.index:
                self.indexed_reads.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._field_bases.add(id(node.value))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.row and id(node) not in self._field_bases:
            self.row_used_whole = True


#: Modules whose calls act on the outside world (files, network, logs, plots) once per row.
_SIDE_EFFECT_MODULES = frozenset(
    {"requests", "httpx", "urllib", "logging", "matplotlib", "seaborn", "os", "shutil", "subprocess", "time", "boto3"}
)
#: Methods that write, send, log or draw: a loop calling them does per-row work that is not a column computation.
_SIDE_EFFECT_METHODS = frozenset(
    {
        "write", "writelines", "writerow", "writerows", "save", "savefig", "to_csv", "to_json", "send", "post",
        "put", "upload", "download", "annotate", "text", "plot", "scatter", "imshow", "info", "debug", "warning",
        "error", "log", "execute", "insert_one", "add_document",
    }
)


def _scan_body(
    node: cst.For, context: ModuleContext, row: str | None = None, frame: str | None = None, index: str | None = None
) -> _BodyScan:
    scan = _BodyScan(context, row, frame, index)
    walk(node.body, scan)
    if node.orelse is not None:
        walk(node.orelse, scan)
    return scan


def _loop_names(target: cst.BaseExpression) -> tuple[str | None, str | None]:
    """Return the index and row names of ``for i, row in df.iterrows()`` (None where not a plain name)."""
    if isinstance(target, cst.Tuple) and len(target.elements) == 2:
        first, second = (element.value for element in target.elements)
        return (
            first.value if isinstance(first, cst.Name) else None,
            second.value if isinstance(second, cst.Name) else None,
        )
    if isinstance(target, cst.Name):
        return None, target.value
    return None, None


#: Calls in a lambda body that work on whole columns as well as on single values.
_VECTORISED_FUNCTIONS = frozenset({"builtins.abs", "builtins.round"})


def _is_ast_row_apply(call: ast.Call) -> bool:
    """Tell whether an ``ast`` call is ``x.apply(lambda ..., axis=1)`` (or ``axis="columns"``), whatever ``x`` is."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr != "apply":
        return False
    if keyword_constant(call, "axis") not in (1, "columns"):
        return False
    function = next((keyword.value for keyword in call.keywords if keyword.arg == "func"), None)
    if function is None and call.args and not isinstance(call.args[0], ast.Starred):
        function = call.args[0]
    return isinstance(function, ast.Lambda)


def _reads_rows_ast(loop: ast.For | ast.AsyncFor) -> bool:
    """Tell whether a loop's body or else block subscripts an ``.iloc``, ``.loc``, ``.at`` or ``.iat`` accessor."""
    return any(
        isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr in _ROW_ACCESSORS
        for statement in (*loop.body, *loop.orelse)
        for node in ast.walk(statement)
    )


class DataFrameRowIteration(PandasRule):
    """Flag loops over the rows of a DataFrame where column operations would do."""

    code = "AIML567"
    slug = "dataframe-row-iteration"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.MEDIUM
    smells = ("Unnecessary Iteration",)
    message = "the rows of a DataFrame are processed one at a time in Python"
    impact = (
        "iterrows() builds a Series for every row (and converts its dtypes), and row-wise apply and "
        "per-row .iloc calls run Python code per row: on a real dataset these loops are orders of "
        "magnitude slower than the same computation on whole columns."
    )
    fix = (
        "Compute on whole columns: arithmetic and comparisons on df['a'] and df['b'], np.where / "
        "np.select for conditions, .map for lookups, groupby for aggregates. Where a loop is needed, "
        "itertuples() is far faster than iterrows()."
    )
    prefilter = ("iterrows", "itertuples", "axis=1", 'axis="columns"', "axis='columns'", "range(len(")
    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report is one of three shapes: a call of ``.iterrows()`` or ``.itertuples()``
        # (a loop or comprehension over it), ``.apply(lambda ..., axis=1)``, or a loop over
        # ``range(...)`` whose body subscripts ``x.iloc`` (``loc``, ``at``, ``iat``). "axis=1" and
        # "range(len(" alone are in most numerical code.
        if not facts.callee_names.isdisjoint(ROW_ITERATORS):
            return True
        if "apply" in facts.callee_names and any(_is_ast_row_apply(call) for call in facts.nodes(ast.Call)):
            return True
        return any(
            isinstance(loop.iter, ast.Call)
            and (callee_name(loop.iter.func) == "range" or facts.resolves_to(loop.iter.func, frozenset({"builtins.range"})))
            and isinstance(loop.target, ast.Name)
            and _reads_rows_ast(loop)
            for loop in facts.nodes(ast.For, ast.AsyncFor)
        )

    def visit_For(self, node: cst.For) -> None:
        found = row_iterator(node.iter)
        if found is not None:
            method, frame = found
            if self._frame_like(frame) and not _scan_body(node, self.context).side_effects:
                self.report(node.iter, f"'for ... in {code_text(node.iter, 50)}' processes the rows one by one in Python")
            return
        frame_name = _range_over_length(node.iter, self.context)
        if frame_name is None or not isinstance(node.target, cst.Name):
            return
        scan = _scan_body(node, self.context, frame=frame_name, index=node.target.value)
        if scan.indexed_reads and not scan.side_effects:
            first = scan.indexed_reads[0]
            self.report(
                node.iter,
                f"'for {node.target.value} in {code_text(node.iter, 40)}' reads {code_text(first, 40)} row by row",
            )

    def visit_CompFor(self, node: cst.CompFor) -> None:
        found = row_iterator(node.iter)
        if found is not None and self._frame_like(found[1]):
            self.report(node.iter, f"a comprehension over {code_text(node.iter, 50)} processes the rows one by one in Python")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "apply":
            return
        axis = keyword_value(node, "axis")
        if axis is None or not (
            (isinstance(axis, cst.Integer) and axis.value == "1") or literal_string(axis) == "columns"
        ):
            return
        function = call_argument(node, 0, "func")
        if function is None or not isinstance(function.value, cst.Lambda) or not self._frame_like(func.value):
            return
        if self._vectorisable(function.value):
            self.report(
                node,
                f"{code_text(func.value, 30)}.apply(lambda ..., axis=1) computes per row what column arithmetic computes at once",
            )

    def _frame_like(self, frame: cst.BaseExpression) -> bool:
        # ``iterrows``, ``itertuples`` and ``apply(axis=1)`` are pandas (or pandas-like) API,
        # so a receiver that is not imported code counts even when its type is unknown.
        kind = self.pandas_kind(frame)
        if kind is not None:
            return kind != SERIES
        return not imports_module(self.context, frame)

    def _vectorisable(self, function: cst.Lambda) -> bool:
        """Tell whether a lambda only combines fields of its row with arithmetic, comparisons and conditions."""
        params = function.params.params
        if len(params) != 1 or isinstance(function.params.star_arg, cst.Param) or function.params.kwonly_params:
            return False
        row = params[0].name.value
        return self._vectorisable_expression(function.body, row) and _mentions(function.body, row)

    def _vectorisable_expression(self, expr: cst.BaseExpression, row: str) -> bool:
        if isinstance(expr, (cst.Integer, cst.Float, cst.SimpleString)):
            return True
        if isinstance(expr, cst.Subscript):
            return isinstance(expr.value, cst.Name) and expr.value.value == row and literal_string(index_elements(expr)[0]) is not None
        if isinstance(expr, cst.Attribute):
            return isinstance(expr.value, cst.Name) and expr.value.value == row
        if isinstance(expr, cst.BinaryOperation):
            return self._vectorisable_expression(expr.left, row) and self._vectorisable_expression(expr.right, row)
        if isinstance(expr, cst.IfExp):
            # ``a if cond else b`` is np.where(cond, a, b) on columns.
            return all(self._vectorisable_expression(part, row) for part in (expr.test, expr.body, expr.orelse))
        if isinstance(expr, cst.BooleanOperation):
            return self._vectorisable_expression(expr.left, row) and self._vectorisable_expression(expr.right, row)
        if isinstance(expr, cst.UnaryOperation):
            return isinstance(expr.operator, cst.Minus) and self._vectorisable_expression(expr.expression, row)
        if isinstance(expr, cst.Comparison):
            return self._vectorisable_expression(expr.left, row) and all(
                isinstance(target.operator, (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual, cst.Equal, cst.NotEqual))
                and self._vectorisable_expression(target.comparator, row)
                for target in expr.comparisons
            )
        if isinstance(expr, cst.Call):
            return self.context.qualified_name(expr.func) in _VECTORISED_FUNCTIONS and all(
                arg.keyword is None and not arg.star and self._vectorisable_expression(arg.value, row) for arg in expr.args
            )
        return False


def _mentions(expr: cst.CSTNode, name: str) -> bool:
    class _Finder(Visitor):
        found = False

        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                self.found = True

    finder = _Finder()
    walk(expr, finder)
    return finder.found


DataFrameRowIteration.VALID = (
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf['total'] = df['price'] * df['qty']\n"),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nfor name, column in df.items():\n    print(name)\n"),
    Example("import pandas as pd\n\nfor i in range(len(batches)):\n    train(batches[i])\n"),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n"
        "# a named function may need the whole row: not reported\ndf['label'] = df.apply(classify, axis=1)\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n"
        "df['text'] = df.apply(lambda row: tokenizer(row['title'] + row['body']), axis=1)\n"
    ),
    Example("import numpy as np\n\nout = np.apply_along_axis(np.sum, 1, grid)\nscaled = grid.apply(f, axis=0)\n"),
    Example("import polars as pl\n\ndf = pl.read_csv('d.csv')\nfor row in df.iter_rows():\n    print(row)\n"),
    Example("import pandas as pd\n\ns = pd.Series([1, 2])\nfor item in s.items():\n    print(item)\n"),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('lessons.csv', dtype=str)\n# one printed page per row: not a column computation\n"
        "for i in range(len(df)):\n    row = df.loc[i]\n    print(row['title'])\n"
    ),
    Example(
        "import requests\nimport pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nfor _, row in df.iterrows():\n"
        "    requests.post(URL, json=row.to_dict())\n"
    ),
    Example(
        "import pandas as pd\n\ndef rows(df: pd.DataFrame):\n    for _, row in df.iterrows():\n        yield row.to_dict()\n"
    ),
)
DataFrameRowIteration.INVALID = (
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ntotals = []\n"
        "for _, row in df.iterrows():\n    totals.append(row['price'] * row['qty'])\n",
        lines=(5,),
    ),
    Example(
        "def ratios(frame):\n    return [r.a / r.b for r in frame.itertuples()]\n", lines=(2,)
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n"
        "df['margin'] = df.apply(lambda row: row['price'] - row['cost'] if row['price'] > 0 else 0, axis=1)\n",
        lines=(4,),
    ),
    Example(
        "import pandas as pd\n\ndef score(df: pd.DataFrame):\n    out = []\n    for i in range(len(df)):\n"
        "        out.append(df.iloc[i]['a'] * 2)\n    return out\n",
        lines=(5,),
    ),
)


class FrameModifiedWhileIterating(PandasRule):
    """Flag writes to a DataFrame, or to its row copies, inside ``for ... in df.iterrows()``."""

    code = "AIML568"
    slug = "frame-modified-while-iterating"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    smells = ("In-Place APIs Misused", "Unnecessary Iteration")
    message = "a DataFrame is modified while iterating over its rows"
    impact = (
        "iterrows() yields copies of the rows: assigning to row['col'] changes the copy and never reaches "
        "the DataFrame. Writing into the frame being iterated (df.loc[i, 'col'] = ...) is not guaranteed "
        "to work by pandas, is slow, and a new column written cell by cell starts as NaN and object dtype."
    )
    fix = (
        "Compute the new column on whole columns (df['col'] = np.where(...), df['a'] * df['b'], .map) or "
        "collect the values in a list during the loop and assign the column once after it."
    )
    prefilter = ("iterrows", "itertuples")

    def visit_For(self, node: cst.For) -> None:
        found = row_iterator(node.iter)
        if found is None:
            return
        method, frame = found
        frame_name = dotted_name(frame)
        if frame_name is None:
            return
        kind = self.pandas_kind(frame)
        if kind == SERIES or (kind is None and imports_module(self.context, frame)):
            return
        _, row = _loop_names(node.target)
        if method != "iterrows":
            row = None
        scan = _scan_body(node, self.context, row=row, frame=frame_name)
        for target in scan.targets:
            written = self._written_frame(target)
            if written == frame_name:
                self.report(
                    target,
                    f"'{code_text(target, 40)} = ...' writes to {frame_name} while iterating over {frame_name}.{method}()",
                )
            elif row is not None and written == row and not scan.row_used_whole:
                self.report(
                    target,
                    f"'{code_text(target, 40)} = ...' changes a copy of the row: iterrows() rows are not written back to {frame_name}",
                )

    @staticmethod
    def _written_frame(target: cst.BaseExpression) -> str | None:
        """Return the written name of the object an assignment target writes into."""
        if isinstance(target, cst.Subscript):
            return dotted_name(_indexed_object(target))
        if isinstance(target, cst.Attribute):
            return dotted_name(target.value)
        return None


FrameModifiedWhileIterating.VALID = (
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nvalues = []\n"
        "for _, row in df.iterrows():\n    values.append(row['a'] * 2)\ndf['double'] = values\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nrecords = []\n"
        "for _, row in df.iterrows():\n    row['seen'] = True\n    records.append(row)\nout = pd.DataFrame(records)\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\nother = df.copy()\n"
        "for i, row in df.iterrows():\n    # a different frame\n    result.loc[i, 'a'] = row['a']\n"
    ),
    Example("import pandas as pd\n\nfor key, value in config.items():\n    config[key] = value\n"),
    Example(
        "import pandas as pd\n\ndef rows(df):\n    for _, row in df.iterrows():\n        row['id'] = str(row['id'])\n"
        "        yield row\n"
    ),
)
FrameModifiedWhileIterating.INVALID = (
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n"
        "for i, row in df.iterrows():\n    df.loc[i, 'double'] = row['a'] * 2\n",
        lines=(5,),
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n"
        "for _, row in df.iterrows():\n    if row['a'] > 0:\n        row['label'] = 'pos'\n",
        lines=(6,),
    ),
    Example(
        "def mark(frame):\n    for row in frame.itertuples():\n        frame.at[row.Index, 'seen'] = True\n", lines=(3,)
    ),
)


# -- AIML569 empty-column-initialisation ----------------------------------------------------


def _empty_placeholder(expr: cst.BaseExpression) -> str | None:
    """Return how a value reads in a message when it is a ``0`` or ``""`` placeholder, else None."""
    if isinstance(expr, cst.Integer) and expr.value == "0":
        return "0"
    if isinstance(expr, cst.Float) and float(expr.value) == 0.0:
        return expr.value
    if literal_string(expr) == "":
        return '""'
    return None


@dataclass(slots=True)
class _ColumnInit:
    node: cst.Subscript
    statement: cst.CSTNode | None
    placeholder: str
    reported: bool = False


class EmptyColumnInitialisation(FileRule):
    """Flag a new column set to 0 or "" and then filled only where a condition holds."""

    code = "AIML569"
    slug = "empty-column-initialisation"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Empty Column Misinitialization",)
    message = "a new column is initialised with 0 or an empty string and then filled conditionally"
    impact = (
        "Rows the later .loc assignments do not reach keep the 0 or '' placeholder, which reads as a real "
        "value: isna() does not see them, imputation skips them, and the model learns from a value no "
        "one measured."
    )
    fix = (
        "Initialise the column as missing, df['new'] = np.nan (or pd.NA with a nullable dtype), so that "
        "unfilled rows stay visible to isna(); or compute it in one step with np.where / np.select."
    )
    prefilter = (".loc[", ".at[")

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: (scope, frame, column) -> the placeholder assignment.
        self._inits: dict[tuple[int, str, str], _ColumnInit] = {}

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "pandas" in text and cls.matches_text(text)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Subscript):
            return
        target = node.targets[0].target
        scope = id(current_scope(self.context))
        placeholder = _empty_placeholder(node.value)

        if placeholder is not None:
            key = self._column_init_key(target)
            if key is not None:
                statement = self.context.statements[-1] if self.context.statements else None
                self._inits[(scope, *key)] = _ColumnInit(target, statement, placeholder)
            return
        fill = self._conditional_fill_key(target)
        if fill is None:
            return
        init = self._inits.get((scope, *fill))
        if init is None or init.reported:
            return

        # A flag column (0, then 1 where a condition holds) has 0 as its real default.
        if init.placeholder != '""' and isinstance(node.value, (cst.Integer, cst.Float, cst.Name)) and (
            not isinstance(node.value, cst.Name) or node.value.value in ("True", "False")
        ):
            return

        init.reported = True
        frame, column = fill
        self.context.pending.append(
            PendingFinding(
                self.code,
                init.node,
                f"{frame}[{column!r}] starts as {init.placeholder} and is then filled only where "
                f"{frame}.loc[...] selects; unfilled rows keep {init.placeholder} as if it were data",
                init.statement,
            )
        )

    @staticmethod
    def _column_init_key(target: cst.Subscript) -> tuple[str, str] | None:
        frame = dotted_name(target.value)
        elements = index_elements(target)
        if frame is None or len(elements) != 1:
            return None
        column = literal_string(elements[0])
        return None if column is None else (frame, column)

    @staticmethod
    def _conditional_fill_key(target: cst.Subscript) -> tuple[str, str] | None:
        accessor = target.value
        if not isinstance(accessor, cst.Attribute) or accessor.attr.value not in ("loc", "at"):
            return None
        frame = dotted_name(accessor.value)
        elements = index_elements(target)
        if frame is None or len(elements) != 2:
            return None
        column = literal_string(elements[1])
        return None if column is None else (frame, column)


EmptyColumnInitialisation.VALID = (
    Example(
        "import numpy as np\nimport pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf['score'] = np.nan\n"
        "df.loc[df['age'] > 18, 'score'] = df['points'] * 2\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\n# a flag: 0 is the real default\n"
        "df['is_adult'] = 0\ndf.loc[df['age'] >= 18, 'is_adult'] = 1\n"
    ),
    Example("import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf['count'] = 0\ndf['count'] += df['visits']\n"),
    Example(
        "import pandas as pd\n\ndef a(df):\n    df['score'] = 0\n\ndef b(df):\n    df.loc[df['x'] > 1, 'score'] = df['x']\n"
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf.loc[df['x'] > 1, 'score'] = df['x']\ndf['score'] = 0\n"
    ),
)
EmptyColumnInitialisation.INVALID = (
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf['score'] = 0\n"
        "df.loc[df['age'] > 18, 'score'] = df['points'] * 2\n",
        lines=(4,),
    ),
    Example(
        "import pandas as pd\n\ndef label(frame):\n    frame['kind'] = ''\n    frame.loc[frame['x'] > 0, 'kind'] = 'pos'\n"
        "    frame.loc[frame['x'] < 0, 'kind'] = 'neg'\n    return frame\n",
        lines=(4,),
    ),
    Example(
        "import pandas as pd\n\ndf = pd.read_csv('d.csv', dtype=str)\ndf['ratio'] = 0.0\nfor i in df.index:\n"
        "    if df.at[i, 'b']:\n        df.at[i, 'ratio'] = df.at[i, 'a'] / df.at[i, 'b']\n",
        lines=(4,),
    ),
)


# -- AIML570 np-dot-matrix-product ----------------------------------------------------------

_SHAPED_CONSTRUCTORS = frozenset({"numpy.zeros", "numpy.ones", "numpy.empty", "numpy.full"})
_RANDOM_MATRICES = frozenset({"numpy.random.rand", "numpy.random.randn"})
_RANDOM_GENERATORS = frozenset({"numpy.random.RandomState", "numpy.random.default_rng", "numpy.random.Generator"})
_SIZED_RANDOM = frozenset(
    {
        "numpy.random.random", "numpy.random.uniform", "numpy.random.normal", "numpy.random.randint",
        "numpy.random.standard_normal", "numpy.random.random_sample",
    }
)


class _Dimensions:
    """Infer which names of a module hold arrays of a known number of dimensions."""

    _MAX_DEPTH = 16

    def __init__(self, context: ModuleContext, scopes: ScopedBindings) -> None:
        self.context = context
        self.scopes = scopes

    def ndim(self, expr: cst.BaseExpression, scope: ScopeNode, active: frozenset = frozenset(), depth: int = 0) -> int | None:
        if depth > self._MAX_DEPTH:
            return None
        if isinstance(expr, (cst.Integer, cst.Float)):
            return 0
        if isinstance(expr, cst.Name) or (isinstance(expr, cst.Attribute) and dotted_name(expr) or "").startswith("self."):
            key = dotted_name(expr)
            if key is None or (key.startswith("self.") and key.count(".") != 1):
                return None
            return self._name_ndim(key, scope, active, depth)
        if isinstance(expr, cst.Attribute) and expr.attr.value == "T":
            inner = self.ndim(expr.value, scope, active, depth + 1)
            return inner if inner in (1, 2) else None
        if isinstance(expr, cst.Call):
            return self._call_ndim(expr, scope, active, depth)
        return None

    def _name_ndim(self, key: str, scope: ScopeNode, active: frozenset, depth: int) -> int | None:
        found = self.scopes.lookup(key, scope)
        if found is None:
            return None
        bindings, owner = found
        marker = (key, id(owner))
        if marker in active:
            return None
        result: int | None = None
        for binding in bindings:
            if binding.value is None or binding.element is not None:
                return None
            ndim = self.ndim(binding.value, owner, active | {marker}, depth + 1)
            if ndim is None or (result is not None and ndim != result):
                return None
            result = ndim
        return result

    def _is_random_generator(self, expr: cst.BaseExpression, scope: ScopeNode) -> bool:
        if isinstance(expr, cst.Call):
            return self.context.qualified_name(expr.func) in _RANDOM_GENERATORS
        if not isinstance(expr, cst.Name):
            return False
        found = self.scopes.lookup(expr.value, scope)
        if found is None:
            return False
        return all(
            isinstance(binding.value, cst.Call) and binding.element is None
            and self.context.qualified_name(binding.value.func) in _RANDOM_GENERATORS
            for binding in found[0]
        )

    def _call_ndim(self, call: cst.Call, scope: ScopeNode, active: frozenset, depth: int) -> int | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "reshape":
            shape = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
            if len(shape) == 1 and isinstance(shape[0], cst.Tuple):
                return len(shape[0].elements)
            return len(shape) if shape and all(not isinstance(item, cst.Tuple) for item in shape) else None
        if isinstance(func, cst.Attribute) and self._is_random_generator(func.value, scope):
            # ``rng.randn(3, 4)`` or ``rng.normal(size=(3, 4))`` on a NumPy RandomState or Generator.
            if func.attr.value in ("rand", "randn"):
                return _positional_count(call)
            size = call_argument(call, 0, "size") if func.attr.value in ("standard_normal", "random") else None
            size = size.value if size is not None else keyword_value(call, "size")
            return _shape_length(size) if size is not None else None
        name = self.context.qualified_name(func)
        if name in ("numpy.array", "numpy.asarray") and call.args:
            return _literal_ndim(call.args[0].value)
        if name in _SHAPED_CONSTRUCTORS and call.args:
            shape = call_argument(call, 0, "shape")
            return _shape_length(shape.value) if shape is not None else None
        if name in ("numpy.eye", "numpy.identity"):
            return 2
        if name in _RANDOM_MATRICES:
            return _positional_count(call)
        if name in _SIZED_RANDOM:
            size = keyword_value(call, "size")
            return _shape_length(size) if size is not None else None
        if name in ("numpy.zeros_like", "numpy.ones_like", "numpy.empty_like") and call.args:
            return self.ndim(call.args[0].value, scope, active, depth + 1)
        return None


def _positional_count(call: cst.Call) -> int | None:
    """Return the number of arguments of ``randn(3, 4)``: the number of dimensions it draws."""
    if call.args and all(arg.keyword is None and not arg.star for arg in call.args):
        return len(call.args)
    return None


def _shape_length(shape: cst.BaseExpression) -> int | None:
    if isinstance(shape, (cst.Tuple, cst.List)):
        return None if any(isinstance(item, cst.StarredElement) for item in shape.elements) else len(shape.elements)
    return 1 if isinstance(shape, cst.Integer) else None


def _literal_ndim(value: cst.BaseExpression) -> int | None:
    """Return the depth of a nested list literal: 2 for ``[[1, 2], [3, 4]]``."""
    depth = 0
    while isinstance(value, (cst.List, cst.Tuple)):
        if not value.elements or isinstance(value.elements[0], cst.StarredElement):
            return None
        depth += 1
        value = value.elements[0].value
    return depth or None


class NpDotMatrixProduct(FileRule):
    """Flag ``np.dot`` used for a matrix product, where ``np.matmul`` or ``@`` states the intent."""

    code = "AIML570"
    slug = "np-dot-matrix-product"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Matrix Multiplication API Misused",)
    message = "np.dot is used for a matrix product"
    impact = (
        "np.dot is a matrix product for 2-D arrays but an element-wise product for a scalar and a "
        "different contraction for 3-D and larger arrays, where np.matmul broadcasts over the batch. "
        "Code written with np.dot for matrices silently computes something else when a batch dimension "
        "is added, and it reads as a dot product rather than a matrix product."
    )
    fix = "Write the matrix product as a @ b (or np.matmul(a, b)), which also rejects scalars and broadcasts batches correctly."
    prefilter = ("dot(",)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) != "numpy.dot":
            return
        operands = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        if len(operands) != 2 or keyword_value(node, "out") is not None:
            return
        dimensions = _Dimensions(self.context, frame_types(self.context).scopes)
        scope = current_scope(self.context)
        known = [dimensions.ndim(operand, scope) for operand in operands]
        if 2 not in known or any(ndim is not None and ndim not in (1, 2) for ndim in known):
            return
        matrix = operands[known.index(2)]
        left, right = (code_text(operand, 30) for operand in operands)
        self.report(
            node,
            f"np.dot({left}, {right}) multiplies the 2-D array {code_text(matrix, 30)}; write {left} @ {right}",
        )


NpDotMatrixProduct.VALID = (
    Example("import numpy as np\n\nA = np.random.rand(3, 4)\nB = np.random.rand(4, 2)\nC = A @ B\nD = np.matmul(A, B)\n"),
    Example("import numpy as np\n\nu = np.array([1.0, 2.0])\nv = np.array([3.0, 4.0])\nsimilarity = np.dot(u, v)\n"),
    Example("import numpy as np\n\n# shapes unknown: not reported\nout = np.dot(x, w)\n"),
    Example("import numpy as np\n\nW = np.zeros((3, 4))\nscaled = np.dot(W, 2.0)\n"),
    Example("import numpy as np\n\nbatch = np.zeros((8, 3, 4))\nW = np.zeros((4, 2))\nout = np.dot(batch, W)\n"),
    Example("import numpy as np\n\nW = np.zeros((3, 4))\nW = W.ravel()\nout = np.dot(W, v)\n"),
    Example("import torch\n\nW = torch.zeros(3, 4)\nout = torch.dot(a, b)\n"),
    Example("import numpy as np\n\nrng = np.random.default_rng(0)\nv = rng.normal(size=5)\nw = rng.normal(size=5)\nsimilarity = np.dot(v, w)\n"),
)
NpDotMatrixProduct.INVALID = (
    Example(
        "import numpy as np\n\nA = np.array([[1, 2], [3, 4]])\nB = np.array([[5, 6], [7, 8]])\nC = np.dot(A, B)\n",
        lines=(5,),
    ),
    Example(
        "import numpy as np\n\nclass Layer:\n    def __init__(self, n_in, n_out):\n"
        "        self.W = np.random.randn(n_in, n_out)\n\n    def forward(self, x):\n        return np.dot(x, self.W)\n",
        lines=(8,),
    ),
    Example(
        "import numpy as np\n\nX = data.reshape(-1, 3)\nweights = np.ones((3, 1))\npred = np.dot(X, weights)\n",
        lines=(5,),
    ),
    Example("from numpy import dot, eye\n\nI = eye(3)\nout = dot(I.T, v)\n", lines=(4,)),
    Example(
        "import numpy as np\n\nrng = np.random.RandomState(0)\n\ndef project(X, dimension=3):\n"
        "    R = rng.randn(dimension, X.shape[1])\n    return np.dot(X, R)\n",
        lines=(7,),
    ),
)


RULES = (
    NanEqualityComparison,
    ChainIndexing,
    ReadWithoutDtype,
    MergeParametersNotSet,
    DiscardedDataFrameResult,
    ValuesInsteadOfToNumpy,
    DataFrameRowIteration,
    FrameModifiedWhileIterating,
    EmptyColumnInitialisation,
    NpDotMatrixProduct,
)
