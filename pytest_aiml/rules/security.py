"""Security rules: loading untrusted bytes in ways that can run code."""

from __future__ import annotations

import re

from pytest_aiml.engine.ast_facts import AstFacts, keyword_constant
from pytest_aiml.engine.context import call_argument, has_star_kwargs, is_false, is_true, keyword_value
from pytest_aiml.engine.dependencies import files_admitting_below, may_run_below
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.fixes.codemods import UnsafeDeserializationFixer

#: Calls that unpickle whatever they are given: loading one runs any code the file names.
PICKLE_LOADS = frozenset(
    {
        "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "cPickle.load",
        "cPickle.loads", "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load",
        "pandas.read_pickle", "pandas.io.pickle.read_pickle", "sklearn.externals.joblib.load",
        "shelve.open", "jsonpickle.decode", "torch.serialization.pickle.load",
    }
)
UNSAFE_YAML_LOADERS = frozenset({"Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"})
TORCH_LOADS = frozenset({"torch.load", "torch.serialization.load"})
_NUMPY_LOADS = frozenset({"numpy.load", "numpy.lib.npyio.load"})
#: Every call ``visit_Call`` can report, by qualified name.
_REPORTED_CALLS = PICKLE_LOADS | TORCH_LOADS | _NUMPY_LOADS | {
    "yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all",
}
_LOADER_TEXT = re.compile(r"\b(?:load|loads|load_all|unsafe_load|unsafe_load_all)\s*\(|\b(?:unsafe_)?load\w*\s+as\s|Unpickler|read_pickle|shelve|jsonpickle")


class UnsafeDeserialization(FileRule):
    """Flag deserialisation that can execute code from the file being loaded."""

    code = "AIML101"
    slug = "unsafe-deserialization"
    category = Category.SECURITY
    priority = Priority.CRITICAL
    effort = Effort.LOW
    anti_pattern = None
    message = "deserialisation that can execute code from the loaded file"
    impact = (
        "A pickle-based file runs whatever code it names when loaded: a tampered model, cache or "
        "download becomes remote code execution on the training or serving host."
    )
    fix = (
        "Use a format that holds data only (safetensors, ONNX, JSON, NumPy without pickle); for "
        "torch.load pass weights_only=True; for YAML use yaml.safe_load; load pickles only from "
        "sources you control and scan them first."
    )
    # Every call the rule recognises has one of these in its name, and so does the import
    # line of an alias (``from pickle import loads as L``).
    prefilter = ("load", "Unpickler", "read_pickle", "shelve", "jsonpickle")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        # "load" alone is in most ML modules (load_state_dict, download). A call the rule can
        # report needs ``load(``, ``loads(``, ``load_all(`` or an aliased import of one.
        return cls.matches_text(text) and _LOADER_TEXT.search(text) is not None

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # ``json.load(`` passes the text check; only a call that resolves to a loader can be reported,
        # and neither ``torch.load(..., weights_only=True)`` nor ``numpy.load`` without
        # ``allow_pickle=True`` ever is.
        if facts.calls.isdisjoint(_REPORTED_CALLS):
            return False
        always = _REPORTED_CALLS - TORCH_LOADS - _NUMPY_LOADS
        if not facts.calls.isdisjoint(always):
            return True
        if any(keyword_constant(call, "weights_only") is not True for call in facts.calls_to(TORCH_LOADS)):
            return True
        return any(keyword_constant(call, "allow_pickle") is not False for call in facts.calls_to(_NUMPY_LOADS)
                   if any(keyword.arg == "allow_pickle" for keyword in call.keywords))

    #: Adds weights_only=True to torch.load and turns yaml.load into yaml.safe_load; the rest stays.
    fixer = UnsafeDeserializationFixer

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name is None:
            return
        if name in PICKLE_LOADS:
            self.report(node, f"{name}() unpickles its input, which can execute arbitrary code")
        elif name in TORCH_LOADS:
            self._check_torch_load(node, name)
        elif name in ("numpy.load", "numpy.lib.npyio.load"):
            if is_true(keyword_value(node, "allow_pickle")):
                self.report(node, "numpy.load(allow_pickle=True) unpickles object arrays, which can execute code")
        elif name == "yaml.load" or name == "yaml.load_all":
            self._check_yaml_load(node, name)
        elif name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
            self.report(node, f"{name}() constructs arbitrary Python objects from the document")

    def _check_torch_load(self, node: cst.Call, name: str) -> None:
        weights_only = keyword_value(node, "weights_only")
        if is_false(weights_only):
            self.report(node, f"{name}(weights_only=False) unpickles the checkpoint, which can execute code")
        elif weights_only is None and not has_star_kwargs(node) and self._may_run_old_torch():
            self.report(node, f"{name}() without weights_only=True unpickles the checkpoint on torch < 2.6, {self._old_torch_source()}")

    def _may_run_old_torch(self) -> bool:
        return may_run_below(self.context.repo.pins, "torch", "2.6", self.context.path)

    def _old_torch_source(self) -> str:
        """Name the dependency files that admit torch < 2.6 here, so that the reader knows which pin to raise."""
        files = files_admitting_below(self.context.repo.pins, "torch", "2.6", self.context.path)
        if not files:
            return "and no dependency file that applies to this file requires torch >= 2.6"
        if len(files) == 1:
            return f"which {files[0]} admits"
        return f"which {', '.join(files[:-1])} and {files[-1]} admit"

    def _check_yaml_load(self, node: cst.Call, name: str) -> None:
        loader = call_argument(node, 1, "Loader")
        if loader is None:
            if not has_star_kwargs(node):
                self.report(node, f"{name}() without a Loader uses a loader that can construct Python objects")
            return
        loader_name = self.context.qualified_name(loader.value)
        if loader_name is not None and loader_name.rsplit(".", 1)[-1] in UNSAFE_YAML_LOADERS:
            self.report(node, f"{name}() with {loader_name.rsplit('.', 1)[-1]} can construct Python objects")


UnsafeDeserialization.VALID = (
    Example("import torch\nstate = torch.load('weights.pt', weights_only=True)\n"),
    Example("import yaml\nconfig = yaml.load(stream, Loader=yaml.SafeLoader)\nother = yaml.safe_load(stream)\n"),
    Example("import numpy as np\narray = np.load('x.npy')\nflags = np.load('y.npy', allow_pickle=False)\n"),
    Example("import torch\n# torch.jit.load reads TorchScript, not a pickle of arbitrary objects\nm = torch.jit.load(path)\n"),
    Example("import torch\nstate = torch.load(path)\n", files={"requirements.txt": "torch==2.6.0\n"}),
    Example("import torch\nstate = torch.load(path, weights_only=settings.weights_only)\n"),
    Example("def load(path):\n    return pickle.load(path)  # no import of pickle: an unrelated local name\n"),
    Example(
        "import torch\nstate = torch.load(path)\n",
        path="serving/app.py",
        # The serving folder's own requirements apply, not the older pin at the root.
        files={"requirements.txt": "torch==2.1.2\n", "serving/requirements.txt": "torch>=2.6\n"},
    ),
)
UnsafeDeserialization.INVALID = (
    Example("import pickle\nwith open(p, 'rb') as f:\n    model = pickle.load(f)\n", lines=(3,)),
    Example(
        "import torch as T\nstate = T.load(path)\n",
        lines=(2,),
        fixed="import torch as T\nstate = T.load(path, weights_only=True)\n",
    ),
    Example("from torch import load\nstate = load(path, weights_only=False)\n", lines=(2,)),
    Example("import joblib\nclf = joblib.load('clf.joblib')\n", lines=(2,)),
    Example("import pandas as pd\nframe = pd.read_pickle(p)\n", lines=(2,)),
    Example("import numpy as np\narr = np.load(p, allow_pickle=True)\n", lines=(2,)),
    Example(
        "import yaml\ncfg = yaml.load(stream)\nunsafe = yaml.load(stream, Loader=yaml.Loader)\n",
        lines=(2, 3),
        fixed="import yaml\ncfg = yaml.safe_load(stream)\nunsafe = yaml.safe_load(stream)\n",
    ),
    Example(
        "import torch\nstate = torch.load(path)\n",
        files={"requirements.txt": "torch==2.1.2\n"},
        lines=(2,),
        fixed="import torch\nstate = torch.load(path, weights_only=True)\n",
    ),
    Example(
        "import torch\ndata = torch.load('traindata.pt')\n",
        path="time_series/train.py",
        # Another project's newer pin does not outvote the upper bound of this one.
        files={"time_series/requirements.txt": "torch<2.6\n", "vision/requirements.txt": "torch>=2.7.1\n"},
        lines=(2,),
        fixed="import torch\ndata = torch.load('traindata.pt', weights_only=True)\n",
    ),
    Example(
        "import torch\n\nstate = torch.load(\n    CHECKPOINT,\n    map_location='cpu',  # the serving host has no GPU\n)\n",
        files={"requirements.txt": "torch==2.1.2\n"},
        lines=(3,),
        fixed=(
            "import torch\n\nstate = torch.load(\n    CHECKPOINT,\n    map_location='cpu',  # the serving host has no GPU\n"
            "    weights_only=True,\n)\n"
        ),
    ),
    Example(
        "from yaml import FullLoader, load\n\nwith open(path) as stream:\n    config = load(stream, Loader=FullLoader)\n",
        lines=(4,),
        fixed="from yaml import FullLoader, load, safe_load\n\nwith open(path) as stream:\n    config = safe_load(stream)\n",
    ),
    Example(
        "import yaml as y\n\ndocuments = list(y.load_all(stream, Loader=y.CLoader))\n",
        lines=(3,),
        fixed="import yaml as y\n\ndocuments = list(y.load_all(stream, Loader=y.CSafeLoader))\n",
    ),
    # An alias of unsafe_load leaves no "load(" in the text for the pre-filter.
    Example("from yaml import (\n    unsafe_load_all as read_all,\n)\n\ndocs = list(read_all(stream))\n", lines=(5,)),
)

RULES = (UnsafeDeserialization,)
