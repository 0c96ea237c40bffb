"""The built-in fixers, one per rule whose fix is safe and mechanical.

Each receives the call node its rule reported. Where the right change depends on
something only a person can know (an explicit ``weights_only=False``, a file that
really contains pickled objects), the fixer returns :class:`NoFix` with the reason.
"""

from __future__ import annotations

from pytest_aiml.engine.context import call_argument, has_star_kwargs, is_false, keyword_value
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.fixes.arguments import append_argument, remove_argument
from pytest_aiml.fixes.fixer import FixContext, Fixer, NoFix, Rewrite, keyword_argument

_TORCH_LOADS = frozenset({"torch.load", "torch.serialization.load"})
_NUMPY_LOADS = frozenset({"numpy.load", "numpy.lib.npyio.load"})
_YAML_SAFE_EQUIVALENTS = {"yaml.load": "yaml.safe_load", "yaml.load_all": "yaml.safe_load_all"}
#: Loaders whose documents ``yaml.safe_load`` reads the same way unless they hold Python tags.
_YAML_LOADERS_REPLACED_BY_SAFE_LOAD = frozenset({"Loader", "FullLoader"})
#: libyaml-backed loaders: the fix keeps libyaml and swaps in its safe loader.
_YAML_C_LOADERS = frozenset({"CLoader", "CFullLoader"})
_YAML_UNSAFE_LOADERS = frozenset({"UnsafeLoader", "CUnsafeLoader"})


class UnsafeDeserializationFixer(Fixer):
    """Fix AIML101: ``torch.load`` gets ``weights_only=True`` and ``yaml.load`` becomes ``yaml.safe_load``.

    Everything else the rule reports is left to a person: ``pickle.load`` and its
    relatives have no safe drop-in, ``numpy.load(allow_pickle=True)`` may be reading
    object arrays on purpose, and an explicit ``weights_only=False``, ``UnsafeLoader``
    or ``yaml.unsafe_load`` is a decision a person wrote down.
    """

    def rewrite(self, node: cst.CSTNode, context: FixContext) -> Rewrite | NoFix:
        if not isinstance(node, cst.Call):
            return NoFix("the finding is not a call")
        name = context.qualified_name(node.func) or "the call"
        if name in _TORCH_LOADS:
            return self._torch_load(node, name)
        if name in _YAML_SAFE_EQUIVALENTS:
            return self._yaml_load(node, name, context)
        if name in _NUMPY_LOADS:
            return NoFix(
                f"{name}(allow_pickle=True) is not rewritten: the file may hold object arrays that only load "
                "with pickling; re-save the data without object arrays, then drop allow_pickle"
            )
        if name.startswith("yaml.unsafe_load"):
            return NoFix(f"{name}() was chosen explicitly; switch to yaml.safe_load by hand once the documents need no Python tags")
        return NoFix(f"{name}() has no mechanical fix: move the data to a format without code (safetensors, JSON, ONNX)")

    def _torch_load(self, call: cst.Call, name: str) -> Rewrite | NoFix:
        weights_only = keyword_value(call, "weights_only")
        if is_false(weights_only):
            return NoFix(f"{name}(weights_only=False) was chosen explicitly; review it and change it by hand")
        if weights_only is not None or has_star_kwargs(call):
            return NoFix(f"{name}() gets weights_only from an expression, so the fix cannot tell its value")
        if call_argument(call, 2, "pickle_module") is not None:
            # torch raises when weights_only=True is combined with an explicit pickle_module.
            return NoFix(f"{name}() passes pickle_module, which torch does not accept together with weights_only=True")
        return Rewrite(append_argument(call, keyword_argument("weights_only", "True", call.args)))

    def _yaml_load(self, call: cst.Call, name: str, context: FixContext) -> Rewrite | NoFix:
        loader = call_argument(call, 1, "Loader")
        if loader is None:
            if has_star_kwargs(call):
                return NoFix(f"{name}() may get its Loader from **kwargs")
            return self._to_safe_load(call, name, None, context)
        loader_name = context.qualified_name(loader.value) or ""
        loader_class = loader_name.rsplit(".", 1)[-1]
        if loader_class in _YAML_UNSAFE_LOADERS:
            return NoFix(f"{name}() with {loader_class} was chosen explicitly; switch to yaml.safe_load by hand")
        if loader_class in _YAML_C_LOADERS and isinstance(loader.value, cst.Attribute):
            safe_loader = loader.value.with_changes(attr=cst.Name("CSafeLoader"))
            args = [arg.with_changes(value=safe_loader) if arg is loader else arg for arg in call.args]
            return Rewrite(call.with_changes(args=args))
        if loader_class in _YAML_LOADERS_REPLACED_BY_SAFE_LOAD:
            return self._to_safe_load(call, name, loader, context)
        return NoFix(f"{name}() with the loader {loader_name or 'given'} is not rewritten: the fix cannot tell what it constructs")

    def _to_safe_load(self, call: cst.Call, name: str, loader: cst.Arg | None, context: FixContext) -> Rewrite | NoFix:
        callee = context.refer_to(_YAML_SAFE_EQUIVALENTS[name], call.func)
        if isinstance(callee, NoFix):
            return callee
        expression, imports = callee
        fixed: cst.Call | None = call
        if loader is not None:
            fixed = remove_argument(call, list(call.args).index(loader))
            if fixed is None:
                return NoFix(f"a comment sits on the Loader argument of {name}(); remove it by hand")
        return Rewrite(fixed.with_changes(func=expression), imports)


class TensorConstructorFixer(Fixer):
    """Fix AIML511: ``torch.Tensor(data)`` becomes ``torch.tensor(data)``, through the same alias of torch.

    ``torch.Tensor`` always made the default float type (float32 unless the program
    calls ``torch.set_default_dtype``), while ``torch.tensor`` infers the dtype from
    the data: int64 for integers, float64 for a float64 NumPy array. So the fix keeps
    the old type with ``dtype=torch.float32`` unless the data is float32 already:
    a literal of floats, or a NumPy array built with ``dtype=float32``.
    """

    def rewrite(self, node: cst.CSTNode, context: FixContext) -> Rewrite | NoFix:
        if not isinstance(node, cst.Call):
            return NoFix("the finding is not a call")
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            return NoFix("torch.Tensor() with sizes, keywords or unpacked arguments is not rewritten")
        data = node.args[0].value
        if isinstance(data, cst.Integer):
            # torch.Tensor(3) is an uninitialised tensor of three elements, torch.tensor(3) the scalar 3.
            return NoFix("torch.Tensor(N) allocates N uninitialised elements; use torch.empty(N) or torch.zeros(N)")
        callee = context.refer_to("torch.tensor", node.func)
        if isinstance(callee, NoFix):
            return callee
        expression, imports = callee
        fixed = node.with_changes(func=expression)
        if _is_float32_data(data, context):
            return Rewrite(fixed, imports)
        dtype = context.refer_to("torch.float32", node.func)
        if isinstance(dtype, NoFix):
            return dtype
        dtype_expression, dtype_imports = dtype
        keyword = keyword_argument("dtype", "float32").with_changes(value=dtype_expression)
        return Rewrite(append_argument(fixed, keyword), imports + dtype_imports)


def _is_float32_data(data: cst.BaseExpression, context: FixContext) -> bool:
    """Tell whether ``torch.tensor(data)`` infers float32 (the default float type) as ``torch.Tensor`` did."""
    if isinstance(data, (cst.List, cst.Tuple)):
        return bool(data.elements) and all(_is_float32_data(element.value, context) for element in data.elements)
    if isinstance(data, cst.UnaryOperation) and isinstance(data.operator, (cst.Minus, cst.Plus)):
        return isinstance(data.expression, cst.Float)
    if isinstance(data, cst.Float):
        return True
    if isinstance(data, cst.Call) and context.qualified_name(data.func) in ("numpy.array", "numpy.asarray"):
        dtype = keyword_value(data, "dtype")
        if dtype is None:
            return False
        return context.qualified_name(dtype) == "numpy.float32" or context.module_context.string_value(dtype) == "float32"
    return False


class ZeroGradSetToNoneFixer(Fixer):
    """Fix AIML512: drop ``set_to_none=False`` from ``zero_grad()``, so gradients are freed instead of zeroed."""

    def rewrite(self, node: cst.CSTNode, context: FixContext) -> Rewrite | NoFix:
        if not isinstance(node, cst.Call):
            return NoFix("the finding is not a call")
        for index, arg in enumerate(node.args):
            is_keyword = arg.keyword is not None and arg.keyword.value == "set_to_none"
            is_first_positional = index == 0 and arg.keyword is None and not arg.star
            if (is_keyword or is_first_positional) and is_false(arg.value):
                fixed = remove_argument(node, index)
                if fixed is None:
                    return NoFix("a comment sits on the set_to_none argument; remove it by hand")
                return Rewrite(fixed)
        return NoFix("zero_grad() does not pass set_to_none=False literally")


class DataLoaderPinMemoryFixer(Fixer):
    """Fix AIML451: add ``pin_memory=True`` to a ``DataLoader(...)`` in GPU code that has workers but no pinning.

    ``num_workers`` is never changed: the right value depends on the machine's cores
    and the dataset, which the code does not show. So a loader without workers is
    left to a person, since adding pinned memory alone would not settle its finding.
    """

    def rewrite(self, node: cst.CSTNode, context: FixContext) -> Rewrite | NoFix:
        if not isinstance(node, cst.Call):
            return NoFix("the finding is not a call")
        workers = call_argument(node, 5, "num_workers")
        if workers is None or (isinstance(workers.value, cst.Integer) and workers.value.evaluated_value == 0):
            return NoFix("DataLoader() needs num_workers set for this machine's cores, which only a person can choose")
        pin_memory = call_argument(node, 7, "pin_memory")
        if pin_memory is not None:
            return NoFix("DataLoader() sets pin_memory explicitly; change it by hand")
        if has_star_kwargs(node):
            return NoFix("DataLoader() may get pin_memory from **kwargs")
        return Rewrite(append_argument(node, keyword_argument("pin_memory", "True", node.args)))
