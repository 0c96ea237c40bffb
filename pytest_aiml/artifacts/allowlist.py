"""The default-deny allowlist of globals a model pickle may import.

Lists of dangerous names are bypassed as soon as someone finds one more callable
that reaches ``exec``, so the scanner does the opposite. A global passes only when
it is on this list of what plain tensors, NumPy arrays and common scikit-learn
estimators need. Everything else fails, and ``describe_global`` explains the worst
known cases so the failure message says why a name is dangerous.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TORCH_REBUILD_HELPERS = (
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_sparse_tensor",
    "_rebuild_nested_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_qtensor",
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_wrapper_subclass",
)
_TORCH_STORAGE_TYPES = (
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
    "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
    "ComplexFloatStorage", "ComplexDoubleStorage", "QInt8Storage", "QUInt8Storage",
    "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage", "UntypedStorage",
)
_TORCH_DTYPES = (
    "float16", "float32", "float64", "bfloat16", "half", "float", "double",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
    "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "qint8", "quint8", "qint32",
)
_TORCH_OTHER = (
    "torch.Size", "torch.device", "torch.dtype", "torch.layout", "torch.memory_format",
    "torch.strided", "torch.sparse_coo", "torch.contiguous_format", "torch.channels_last",
    "torch.preserve_format", "torch.per_tensor_affine", "torch.per_channel_affine",
    "torch.serialization._get_layout", "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage", "torch.nn.parameter.Parameter",
    "torch._tensor._rebuild_from_type_v2", "torch.Tensor",
)
# numpy 2 moved numpy.core to numpy._core; pickles from either version exist.
_NUMPY_CORE_GLOBALS = (
    "multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer",
)
_NUMPY_OTHER = (
    "numpy.ndarray", "numpy.dtype", "numpy.ma.core._mareconstruct",
    "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM", "numpy.random._philox.Philox",
    "numpy.random._sfc64.SFC64", "numpy.random.mtrand.RandomState",
    "numpy.random._generator.Generator",
)
# NumPy scalar types appear as globals where a pickle stores a dtype or a scalar (a
# fitted DictVectorizer keeps dtype=numpy.float64). Calling one builds a number.
_NUMPY_SCALAR_TYPES = (
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intc", "uintc",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble", "str_",
    "bytes_", "datetime64", "timedelta64",
)
_PYTHON_BUILTINS = (
    "collections.OrderedDict", "collections.defaultdict", "collections.deque",
    "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.complex",
    "builtins.slice", "builtins.range", "builtins.object", "builtins.dict", "builtins.list",
    "builtins.tuple", "builtins.int", "builtins.float", "builtins.bool", "builtins.str",
    "builtins.bytes",
    # Protocol 2 pickles of bytes call _codecs.encode(text, "latin1").
    "_codecs.encode",
    # Objects pickled with protocols 0 and 1 are rebuilt through copyreg._reconstructor,
    # which can only instantiate a class the same stream imported (and so checked).
    "copyreg._reconstructor",
    "datetime.datetime", "datetime.date", "datetime.timedelta", "decimal.Decimal",
)
_JOBLIB_AND_BOOSTING = (
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRanker", "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
)


def _default_allowed() -> frozenset[str]:
    names = [f"torch._utils.{helper}" for helper in _TORCH_REBUILD_HELPERS]
    names += [f"torch.{storage}" for storage in _TORCH_STORAGE_TYPES]
    names += [f"torch.{dtype}" for dtype in _TORCH_DTYPES]
    names += list(_TORCH_OTHER)
    for package in ("numpy.core", "numpy._core"):
        names += [f"{package}.{name}" for name in _NUMPY_CORE_GLOBALS]
    names += list(_NUMPY_OTHER) + list(_PYTHON_BUILTINS) + list(_JOBLIB_AND_BOOSTING)
    names += [f"numpy.{scalar}" for scalar in _NUMPY_SCALAR_TYPES]
    names += [f"numpy.dtypes.{scalar.rstrip('_').capitalize()}DType" for scalar in _NUMPY_SCALAR_TYPES]
    return frozenset(names)


DEFAULT_ALLOWED_GLOBALS: frozenset[str] = _default_allowed()

# scikit-learn keeps estimator classes in private, version-dependent modules
# (sklearn.linear_model._logistic), so classes are allowed by shape instead of by
# exact path: a CamelCase class name in any sklearn module outside these packages.
# Instantiating an estimator class runs no user code, and any callable an estimator
# contains (FunctionTransformer's func) is a separate global that is checked on its own.
_SKLEARN_CLASS_NAME = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
_SKLEARN_EXCLUDED_PACKAGES = ("sklearn.utils._testing", "sklearn.externals", "sklearn.datasets")

# TorchScript archives are unpickled by TorchScript's own C++ unpickler, which maps
# these names to compiled TorchScript classes and never imports Python modules.
# NOTE: the TorchScript source under code/ is not analysed, only the pickles.
TORCHSCRIPT_ALLOWED_PREFIXES = ("__torch__.", "torch.jit._pickle.")

_DANGER_BY_NAME = {
    "builtins.eval": "evaluates arbitrary Python code",
    "builtins.exec": "executes arbitrary Python code",
    "builtins.compile": "compiles arbitrary Python code",
    "builtins.__import__": "imports any module",
    "builtins.getattr": "generic resolver: reaches any attribute by name",
    "builtins.setattr": "changes any attribute by name",
    "builtins.open": "opens any file",
    "builtins.globals": "exposes module globals",
    "builtins.vars": "exposes object namespaces",
    "builtins.breakpoint": "starts a debugger",
    "builtins.input": "reads from the terminal",
    "operator.attrgetter": "generic resolver: reaches any attribute by name",
    "operator.methodcaller": "generic resolver: calls any method by name",
    "operator.itemgetter": "generic resolver: reaches any item",
    "functools.partial": "wraps any callable",
    "functools.reduce": "calls any callable repeatedly",
    "types.CodeType": "builds a code object",
    "types.FunctionType": "builds a function from a code object",
    "types.MethodType": "binds any callable",
    "types.ModuleType": "builds a module",
    "torch.load": "loads another pickle",
    "numpy.load": "loads another pickle",
    "joblib.load": "loads another pickle",
}
_DANGER_BY_MODULE_ROOT = {
    "os": "operating system access (commands, files, environment)",
    "posix": "operating system access (commands, files, environment)",
    "nt": "operating system access (commands, files, environment)",
    "subprocess": "runs commands",
    "pty": "runs commands",
    "commands": "runs commands",
    "sys": "interpreter internals",
    "shutil": "file system access",
    "pathlib": "file system access",
    "tempfile": "file system access",
    "socket": "network access",
    "http": "network access",
    "urllib": "network access",
    "requests": "network access",
    "ftplib": "network access",
    "smtplib": "network access",
    "webbrowser": "opens URLs",
    "importlib": "imports any module",
    "pkgutil": "imports any module",
    "runpy": "runs modules as scripts",
    "code": "evaluates arbitrary Python code",
    "codeop": "compiles arbitrary Python code",
    "ctypes": "calls native code",
    "marshal": "loads code objects",
    "pickle": "nested unpickling",
    "_pickle": "nested unpickling",
    "dill": "nested unpickling of code",
    "cloudpickle": "nested unpickling of code",
    "shelve": "nested unpickling",
    "multiprocessing": "starts processes",
    "threading": "starts threads",
    "asyncio": "event loop and subprocess access",
    "signal": "process signal handling",
    "pdb": "starts a debugger",
    "timeit": "evaluates arbitrary Python code",
    "inspect": "interpreter internals",
    "gc": "interpreter internals",
}


@dataclass(frozen=True, slots=True)
class GlobalVerdict:
    """Whether a global may be imported, and the reason shown when it may not."""

    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class GlobalAllowlist:
    """Allowed globals: exact ``module.name`` strings and ``module.*`` wildcards."""

    exact: frozenset[str]
    module_wildcards: frozenset[str]
    allow_sklearn_classes: bool = True

    def check(self, module: str, name: str, *, torchscript: bool = False) -> GlobalVerdict:
        """Decide one global; ``torchscript`` admits TorchScript's own class names."""
        qualified = f"{module}.{name}"
        if qualified in self.exact:
            return GlobalVerdict(True, "allowlisted")
        if module in self.module_wildcards and "." not in name:
            return GlobalVerdict(True, f"allowlisted by {module}.*")
        if self.allow_sklearn_classes and _is_sklearn_class(module, name):
            return GlobalVerdict(True, "scikit-learn class")
        if torchscript and qualified.startswith(TORCHSCRIPT_ALLOWED_PREFIXES):
            return GlobalVerdict(True, "TorchScript class")
        return GlobalVerdict(False, describe_global(module, name))


def _is_sklearn_class(module: str, name: str) -> bool:
    if not (module == "sklearn" or module.startswith("sklearn.")):
        return False
    if any(module == excluded or module.startswith(excluded + ".") for excluded in _SKLEARN_EXCLUDED_PACKAGES):
        return False
    return bool(_SKLEARN_CLASS_NAME.match(name))


def describe_global(module: str, name: str) -> str:
    """Explain why a global that is not allowlisted fails, naming known dangers."""
    qualified = f"{module}.{name}"
    if qualified in _DANGER_BY_NAME:
        return f"dangerous: {_DANGER_BY_NAME[qualified]}"
    root = module.split(".", 1)[0]
    if root in _DANGER_BY_MODULE_ROOT:
        return f"dangerous: {_DANGER_BY_MODULE_ROOT[root]}"
    return "not in the allowlist"


def build_allowlist(extra_globals: Iterable[str] = (), *, allow_sklearn_classes: bool = True) -> GlobalAllowlist:
    """Combine the defaults with a repository's extra entries.

    Each entry is ``module.name`` or ``module.*`` (every name defined directly in that
    module). Raises ``ValueError`` naming the entry when one is not of that form.
    """
    exact = set(DEFAULT_ALLOWED_GLOBALS)
    wildcards: set[str] = set()
    for entry in extra_globals:
        parts = entry.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts[:-1]):
            raise ValueError(
                f"invalid allowed global {entry!r}: write it as 'module.name' or 'module.*'"
            )
        if parts[-1] == "*":
            wildcards.add(".".join(parts[:-1]))
        elif parts[-1].isidentifier():
            exact.add(entry)
        else:
            raise ValueError(
                f"invalid allowed global {entry!r}: write it as 'module.name' or 'module.*'"
            )
    return GlobalAllowlist(frozenset(exact), frozenset(wildcards), allow_sklearn_classes)
