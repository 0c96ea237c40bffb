"""Reproducibility rules: seeds, deterministic kernels, split seeds and explicit hyperparameters.

The global checks (AIML521, AIML523, AIML524) look only at training entry points: a
module with an ``if __name__ == "__main__":`` guard, a ``train*.py``-style script or a
notebook, and only when it trains something. A library module is seeded by whichever
script runs it, so it stays silent. The local checks (AIML522, AIML525, AIML526) concern
one call or one class and apply to every module outside the tests.
"""

from __future__ import annotations

import ast
import re

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pytest_aiml.engine.ast_facts import AstFacts, argument, callee_name, keyword_constant, unpacks_kwargs
from pytest_aiml.engine.context import (
    ModuleContext,
    PendingFinding,
    call_argument,
    has_star_kwargs,
    is_false,
    is_true,
    keyword_value,
)
from pytest_aiml.engine.dependencies import may_run_below
from pytest_aiml.engine.inventory import is_training_script_name
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority

# -- entry points and training evidence -----------------------------------------------


def has_main_guard(module: cst.Module) -> bool:
    """Tell whether the module has a top-level ``if __name__ == "__main__":`` block."""
    for statement in module.body:
        if not isinstance(statement, cst.If) or not isinstance(statement.test, cst.Comparison):
            continue
        comparison = statement.test
        if len(comparison.comparisons) != 1 or not isinstance(comparison.comparisons[0].operator, cst.Equal):
            continue
        sides = (comparison.left, comparison.comparisons[0].comparator)
        names = [side.value for side in sides if isinstance(side, cst.Name)]
        strings = [side.evaluated_value for side in sides if isinstance(side, cst.SimpleString)]
        if names == ["__name__"] and strings == ["__main__"]:
            return True
    return False


#: Words of a ``train*``-named module that make it a library of the training code
#: (``train_utils.py``, ``trainer.py`` with a Trainer class) rather than a script.
_LIBRARY_NAME_WORDS = ("util", "helper", "common", "trainer", "base", "lib")


def is_training_script(path: str) -> bool:
    """Tell whether a file name marks a training script: ``train.py``, ``train_bert.py``, not ``train_utils.py``."""
    if not is_training_script_name(path):
        return False
    stem = PurePosixPath(path).stem.lower()
    return not any(word in stem for word in _LIBRARY_NAME_WORDS)


def is_entry_point(path: str, module: cst.Module) -> bool:
    """Tell whether a module is run directly: a notebook, a training script or a main-guarded module."""
    return path.endswith(".ipynb") or is_training_script(path) or has_main_guard(module)


def may_be_entry_point(path: str, text: str) -> bool:
    """Cheap text version of :func:`is_entry_point`, for ``applies_to``."""
    return path.endswith(".ipynb") or is_training_script(path) or "__main__" in text


#: Method calls that show a module trains a model: the torch loop, ``fit`` of scikit-learn
#: and Keras, ``trainer.train()`` and ``model.train()``.
TRAINING_METHODS = frozenset({"backward", "fit", "fit_generator", "train_on_batch", "train"})


def is_training_call(node: cst.Call) -> bool:
    func = node.func
    if isinstance(func, cst.Attribute):
        if func.attr.value in TRAINING_METHODS:
            return True
        name = func.attr.value
    elif isinstance(func, cst.Name):
        name = func.value
    else:
        return False
    return name.endswith("Trainer")


# -- seeding -----------------------------------------------------------------------------

TORCH, NUMPY, RANDOM, TENSORFLOW, SKLEARN = "torch", "numpy", "random", "tensorflow", "scikit-learn"
ALL_LIBRARIES = frozenset({TORCH, NUMPY, RANDOM, TENSORFLOW, SKLEARN})
#: scikit-learn estimators with ``random_state=None`` draw from NumPy's global state, so
#: ``np.random.seed`` seeds them; a seeded ``default_rng`` does not.
_NUMPY_GLOBAL = frozenset({NUMPY, SKLEARN})
_LIGHTNING_SEEDED = frozenset({TORCH, NUMPY, RANDOM, SKLEARN})

#: Library calls that seed, and the libraries each one seeds. They count only with a
#: seed argument, because ``random.seed()`` and ``np.random.seed()`` reseed from the OS.
SEED_CALLS: dict[str, frozenset[str]] = {
    "torch.manual_seed": frozenset({TORCH}),
    "torch.random.manual_seed": frozenset({TORCH}),
    "torch.cuda.manual_seed": frozenset({TORCH}),
    "torch.cuda.manual_seed_all": frozenset({TORCH}),
    "numpy.random.seed": _NUMPY_GLOBAL,
    "numpy.random.default_rng": frozenset({NUMPY}),
    "numpy.random.RandomState": frozenset({NUMPY}),
    "numpy.random.Generator": frozenset({NUMPY}),
    "random.seed": frozenset({RANDOM}),
    "random.Random": frozenset({RANDOM}),
    "tensorflow.random.set_seed": frozenset({TENSORFLOW}),
    "tensorflow.set_random_seed": frozenset({TENSORFLOW}),
    "tensorflow.compat.v1.set_random_seed": frozenset({TENSORFLOW}),
    "tensorflow.compat.v1.random.set_random_seed": frozenset({TENSORFLOW}),
    # Keras 3 seeds Python, NumPy and its backend, torch included when that is the backend.
    "keras.utils.set_random_seed": ALL_LIBRARIES,
    "tensorflow.keras.utils.set_random_seed": ALL_LIBRARIES,
    "tf_keras.utils.set_random_seed": ALL_LIBRARIES,
    "transformers.set_seed": ALL_LIBRARIES,
    "transformers.trainer_utils.set_seed": ALL_LIBRARIES,
    "transformers.enable_full_determinism": ALL_LIBRARIES,
    "transformers.trainer_utils.enable_full_determinism": ALL_LIBRARIES,
    "accelerate.utils.set_seed": _LIGHTNING_SEEDED,
    "accelerate.utils.random.set_seed": _LIGHTNING_SEEDED,
}
for _module in (
    "lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric", "lightning_fabric",
    "lightning.pytorch.utilities.seed", "pytorch_lightning.utilities.seed", "lightning.fabric.utilities.seed",
    "lightning_fabric.utilities.seed",
):
    SEED_CALLS[f"{_module}.seed_everything"] = _LIGHTNING_SEEDED
del _module

#: Trainers that seed every library themselves from their arguments (``TrainingArguments.seed``
#: defaults to 42 in transformers 4).
SEEDING_TRAINERS = frozenset(
    {
        "transformers.Trainer", "transformers.Seq2SeqTrainer", "transformers.trainer.Trainer",
        "trl.SFTTrainer", "trl.DPOTrainer", "trl.RewardTrainer", "trl.PPOTrainer", "trl.GRPOTrainer",
        "trl.ORPOTrainer", "trl.KTOTrainer", "setfit.Trainer", "setfit.SetFitTrainer",
    }
)
#: Packages whose calls are looked up in the tables above; an unknown call of theirs seeds nothing.
KNOWN_PACKAGES = frozenset(
    {
        "torch", "numpy", "random", "tensorflow", "keras", "tf_keras", "sklearn", "transformers", "accelerate",
        "lightning", "pytorch_lightning", "lightning_fabric",
    }
)
#: Words in the name of a project helper that seeds or makes runs deterministic:
#: ``set_seed``, ``seed_everything``, ``make_deterministic``, ``setup_reproducibility``.
HELPER_WORDS = ("seed", "determinis", "reproducib", "fix_random")


def seeding_helper_name(call: cst.Call, qualified: str | None) -> str | None:
    """Return the name of a project helper that presumably seeds everything, or None.

    A call of a name with a seeding word that is not a known library API (``utils.set_seed``,
    ``fabric.seed_everything``) is taken to seed every library. The helper's body is out of
    view, and guessing that it seeds nothing would produce false findings.
    """
    func = call.func
    if isinstance(func, cst.Attribute):
        last = func.attr.value
    elif isinstance(func, cst.Name):
        last = func.value
    else:
        return None
    return last if is_seeding_helper(last, qualified) else None


def is_seeding_helper(last: str, qualified: str | None) -> bool:
    """Tell whether a call named ``last`` that resolves to ``qualified`` is a project's seeding helper."""
    if not any(word in last.lower() for word in HELPER_WORDS):
        return False
    return qualified is None or qualified.split(".", 1)[0] not in KNOWN_PACKAGES


def seeded_by(qualified: str | None, last: str | None, method: bool, has_arguments: bool) -> frozenset[str]:
    """Return the libraries a call seeds, from its resolved name, its last name and whether it has arguments.

    ``method`` is true for a call made on an object (``generator.manual_seed(0)``).
    The libcst visitor and the ``ast`` candidate checks both decide with this function.
    """
    if qualified in SEED_CALLS:
        return SEED_CALLS[qualified] if has_arguments else frozenset()
    if qualified in SEEDING_TRAINERS:
        return ALL_LIBRARIES
    if method and last in ("manual_seed", "manual_seed_all"):
        # ``generator.manual_seed(0)`` or ``torch.cuda.manual_seed`` through an alias.
        return frozenset({TORCH})
    if last is not None and is_seeding_helper(last, qualified):
        return ALL_LIBRARIES
    return frozenset()


@dataclass(slots=True)
class RandomnessFacts:
    """Facts about seeding and training collected by one traversal of a module."""

    seeded: set[str] = field(default_factory=set)
    trains: bool = False

    def note_call(self, node: cst.Call, context: ModuleContext) -> str | None:
        """Record what the call seeds or shows; return its qualified name."""
        if is_training_call(node):
            self.trains = True
        qualified = context.qualified_name(node.func)
        func = node.func
        if isinstance(func, cst.Attribute):
            last: str | None = func.attr.value
        else:
            last = func.value if isinstance(func, cst.Name) else None
        self.seeded |= seeded_by(qualified, last, isinstance(func, cst.Attribute), bool(node.args))
        return qualified


# -- AIML521 unseeded-randomness ----------------------------------------------------------

_TORCH_RANDOM_FUNCTIONS = frozenset(
    {
        "rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like", "normal", "bernoulli",
        "multinomial", "poisson",
    }
)
_TORCH_RANDOM_INITS = frozenset(
    {
        "uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
        "trunc_normal_", "orthogonal_", "sparse_", "uniform", "normal", "xavier_uniform", "xavier_normal",
        "kaiming_uniform", "kaiming_normal", "orthogonal",
    }
)
#: torch.nn layers whose construction draws random weights, and dropout.
_TORCH_RANDOM_LAYERS = frozenset(
    {
        "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
        "ConvTranspose3d", "LazyConv1d", "LazyConv2d", "LazyConv3d", "Embedding", "EmbeddingBag", "RNN", "LSTM",
        "GRU", "RNNCell", "LSTMCell", "GRUCell", "MultiheadAttention", "Transformer", "TransformerEncoderLayer",
        "TransformerDecoderLayer", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
    }
)
_KERAS_PREFIXES = ("tensorflow.keras.", "tensorflow.python.keras.", "tf_keras.", "keras.")
_KERAS_RANDOM_LAYERS = frozenset(
    {
        "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "SeparableConv1D", "SeparableConv2D", "DepthwiseConv2D", "Embedding", "LSTM", "GRU", "SimpleRNN",
        "MultiHeadAttention", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
        "GaussianNoise", "GaussianDropout", "AlphaDropout", "RandomFlip", "RandomRotation", "RandomZoom",
        "RandomCrop", "RandomTranslation", "RandomContrast",
    }
)
#: ``numpy.random`` members that are not draws from the global state.
_NUMPY_NON_DRAWS = frozenset(
    {
        "seed", "get_state", "set_state", "default_rng", "Generator", "RandomState", "SeedSequence", "BitGenerator",
        "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64", "bit_generator",
    }
)
_RANDOM_NON_DRAWS = frozenset({"seed", "getstate", "setstate", "Random", "SystemRandom"})
#: scikit-learn (and compatible) estimators whose fit is random, by class name, with their package prefixes.
RANDOM_ESTIMATORS = frozenset(
    {
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
        "GradientBoostingClassifier", "GradientBoostingRegressor", "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor", "BaggingClassifier", "BaggingRegressor", "AdaBoostClassifier",
        "AdaBoostRegressor", "IsolationForest", "RandomTreesEmbedding", "SGDClassifier", "SGDRegressor",
        "MLPClassifier", "MLPRegressor", "KMeans", "MiniBatchKMeans", "TSNE", "RandomizedSearchCV",
    }
)


def sklearn_class(qualified: str | None) -> str | None:
    """Return the class name of a scikit-learn API (``sklearn.svm.SVC`` -> ``SVC``), or None."""
    if qualified is None or not qualified.startswith("sklearn."):
        return None
    return qualified.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class CallArguments:
    """The facts about a call's arguments that the random-use check reads, taken from libcst or from ``ast``."""

    present: bool
    keywords: frozenset[str]
    star_kwargs: bool
    #: ``shuffle=True`` written literally.
    shuffle: bool

    @classmethod
    def of(cls, node: cst.Call) -> CallArguments:
        return cls(
            present=bool(node.args),
            keywords=frozenset(arg.keyword.value for arg in node.args if arg.keyword is not None),
            star_kwargs=has_star_kwargs(node),
            shuffle=is_true(keyword_value(node, "shuffle")),
        )

    @classmethod
    def of_ast(cls, node: ast.Call) -> CallArguments:
        return cls(
            present=bool(node.args or node.keywords),
            keywords=frozenset(keyword.arg for keyword in node.keywords if keyword.arg is not None),
            star_kwargs=unpacks_kwargs(node),
            shuffle=keyword_constant(node, "shuffle") is True,
        )


def random_library(qualified: str) -> str | None:
    """Return the library a call of this name may draw from, depending on its arguments; None if it never draws."""
    head, _, last = qualified.rpartition(".")
    if qualified.startswith("torch."):
        draws = (
            (head == "torch" and last in _TORCH_RANDOM_FUNCTIONS)
            or (head == "torch.nn.init" and last in _TORCH_RANDOM_INITS)
            or (head == "torch.nn" and last in _TORCH_RANDOM_LAYERS)
            or qualified in ("torch.utils.data.random_split", "torch.utils.data.RandomSampler")
            or qualified in DATALOADERS
        )
        return TORCH if draws else None
    if qualified.startswith(("torchvision.transforms.", "torchvision.transforms.v2.")) and last.startswith("Random"):
        return TORCH
    if head == "numpy.random":
        return NUMPY if last not in _NUMPY_NON_DRAWS or last in ("default_rng", "RandomState") else None
    if head == "random":
        return RANDOM if last not in _RANDOM_NON_DRAWS or last == "Random" else None
    if head == "tensorflow.random" and last not in ("set_seed", "Generator"):
        return TENSORFLOW
    if last in _KERAS_RANDOM_LAYERS and qualified.startswith(tuple(prefix + "layers." for prefix in _KERAS_PREFIXES)):
        return TENSORFLOW
    if sklearn_class(qualified) in RANDOM_ESTIMATORS:
        return SKLEARN
    return None


def random_draw(qualified: str, library: str, arguments: CallArguments) -> tuple[str, str] | None:
    """Return the library and a display name when a call of :func:`random_library` draws with these arguments."""
    if qualified in DATALOADERS:
        return (TORCH, f"{qualified}(shuffle=True)") if arguments.shuffle else None
    if qualified in ("numpy.random.default_rng", "numpy.random.RandomState"):
        return None if arguments.present else (NUMPY, f"{qualified}() without a seed")
    if qualified == "random.Random":
        return None if arguments.present else (RANDOM, "random.Random() without a seed")
    if library == SKLEARN:
        if "random_state" in arguments.keywords or arguments.star_kwargs:
            return None
        return SKLEARN, f"{sklearn_class(qualified)}() without random_state"
    return library, f"{qualified}()"


def _random_use(node: cst.Call, qualified: str) -> tuple[str, str] | None:
    """Return the library and a display name when the call draws random numbers or weights."""
    library = random_library(qualified)
    return None if library is None else random_draw(qualified, library, CallArguments.of(node))


#: The generator each library draws from, and how to seed it, for the message.
GENERATOR_NAMES = {
    TORCH: "torch's global generator",
    NUMPY: "NumPy's global random state",
    RANDOM: "the random module's global generator",
    TENSORFLOW: "TensorFlow's global generator",
    SKLEARN: "NumPy's global random state",
}
SEED_ADVICE = {
    TORCH: "call torch.manual_seed(seed) at start-up",
    NUMPY: "call np.random.seed(seed) at start-up, or draw from np.random.default_rng(seed)",
    RANDOM: "call random.seed(seed) at start-up",
    TENSORFLOW: "call tf.random.set_seed(seed) or keras.utils.set_random_seed(seed) at start-up",
    SKLEARN: "pass random_state=seed, or call np.random.seed(seed) at start-up",
}


@dataclass(frozen=True, slots=True)
class _Use:
    node: cst.Call
    statement: cst.CSTNode | None
    display: str


# -- ast candidate checks ----------------------------------------------------------------
# What the rules below need before libcst parses a file (see FileRule.candidate). A library
# counts as seeded, and determinism as requested, only when every name the call may resolve
# to says so; anything else keeps the file.


def may_train(facts: AstFacts) -> bool:
    """Tell whether some call may be a training call in the sense of :func:`is_training_call`."""
    names = facts.callee_names
    return not names.isdisjoint(TRAINING_METHODS) or any(name.endswith("Trainer") for name in names)


def surely_seeded(facts: AstFacts) -> frozenset[str]:
    """Return the libraries that calls of the module seed, however their names resolve."""
    seeded: set[str] = set()
    for node, names in facts.resolved_calls:
        method = isinstance(node.func, ast.Attribute)
        last = callee_name(node.func)
        present = bool(node.args or node.keywords)
        seeded.update(frozenset.intersection(*(seeded_by(name, last, method, present) for name in names)))
    return frozenset(seeded)


def _is_false_constant(expr: ast.expr | None) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is False


class EntryPointRule(FileRule):
    """Base of the rules that check training entry points only: scripts, notebooks, ``__main__`` modules."""

    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return may_be_entry_point(path, text) and cls.matches_text(text)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._entry_point = is_entry_point(context.path, context.module)
        self._facts = RandomnessFacts()


class UnseededRandomness(EntryPointRule):
    """Flag a training entry point that draws random numbers from a library it never seeds."""

    code = "AIML521"
    slug = "unseeded-randomness"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Randomness Uncontrolled",)
    message = "a training entry point uses randomness from a library it never seeds"
    impact = (
        "Weight initialisation, shuffling, dropout, augmentation and random estimators draw from each library's "
        "own generator. Unseeded, every run trains a different model: a metric change cannot be told apart from "
        "noise, and a reported result cannot be reproduced."
    )
    fix = (
        "Seed every library the entry point uses, once, at start-up: torch.manual_seed(seed), "
        "np.random.seed(seed), random.seed(seed), tf.random.set_seed(seed); or one call that seeds them all, "
        "such as lightning.seed_everything(seed), transformers.set_seed(seed) or keras.utils.set_random_seed(seed). "
        "Pass random_state=seed to scikit-learn estimators. Read the seed from the run's configuration and log it."
    )
    prefilter = (
        "random", "rand", "torch", "Random", "KMeans", "MLP", "SGD", "Boosting", "Trees", "Bagging", "TSNE",
        "keras", "tensorflow",
    )

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a training call and a random draw from a library that no call seeds.
        drawn = set()
        for node, names in facts.resolved_calls:
            for name in names:
                library = None if name is None else random_library(name)
                if library is not None and random_draw(name, library, CallArguments.of_ast(node)) is not None:
                    drawn.add(library)
        return bool(drawn) and may_train(facts) and not drawn <= surely_seeded(facts)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: The first random use of each library.
        self._uses: dict[str, _Use] = {}

    def visit_Call(self, node: cst.Call) -> None:
        if not self._entry_point:
            return
        qualified = self._facts.note_call(node, self.context)
        if qualified is None:
            return
        use = _random_use(node, qualified)
        if use is not None and use[0] not in self._uses:
            statement = self.context.statements[-1] if self.context.statements else None
            self._uses[use[0]] = _Use(node, statement, use[1])

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._facts.trains:
            return
        for library, use in self._uses.items():
            if library in self._facts.seeded:
                continue
            message = f"{use.display} draws from {GENERATOR_NAMES[library]}, which this training entry point never seeds; {SEED_ADVICE[library]}"
            self.context.pending.append(PendingFinding(self.code, use.node, message, use.statement))


UnseededRandomness.INVALID = (
    Example(
        source=(
            "import torch\nfrom torch import nn\n\nmodel = nn.Linear(10, 2)\n"
            "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "for x, y in batches:\n    loss = nn.functional.cross_entropy(model(x), y)\n"
            "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n"
        ),
        path="train.py",
        lines=(4,),
    ),
    Example(
        source=(
            "import numpy as np\nimport torch\n\ndef main():\n    torch.manual_seed(0)\n"
            "    idx = np.random.permutation(1000)\n    model = build(idx)\n    model.fit(data)\n\n"
            "if __name__ == '__main__':\n    main()\n"
        ),
        path="scripts/run.py",
        lines=(6,),
    ),
    Example(
        source=(
            "import random\nfrom sklearn.ensemble import RandomForestClassifier\n\n"
            "rows = random.sample(all_rows, 500)\nclf = RandomForestClassifier(n_estimators=300)\n"
            "clf.fit(X[rows], y[rows])\n"
        ),
        path="train_forest.py",
        lines=(4, 5),
    ),
    Example(
        source=(
            "import tensorflow as tf\n\nmodel = tf.keras.Sequential([tf.keras.layers.Dense(64), "
            "tf.keras.layers.Dropout(0.2), tf.keras.layers.Dense(1)])\nmodel.compile(optimizer='adam', loss='mse')\n"
            "model.fit(x, y, epochs=5)\n"
        ),
        path="train_regressor.py",
        lines=(3,),
    ),
    Example(
        source=(
            "from torch.utils.data import DataLoader\nimport torch\n\nloader = DataLoader(ds, batch_size=32, shuffle=True)\n"
            "np_seed = 3\nfor x, y in loader:\n    model(x).sum().backward()\n"
        ),
        path="train_loop.py",
        lines=(4,),
    ),
)
UnseededRandomness.VALID = (
    # Seeded with the library's own call.
    Example(
        source=(
            "import torch\nfrom torch import nn\n\ntorch.manual_seed(1337)\nmodel = nn.Linear(10, 2)\n"
            "for x, y in batches:\n    model(x).sum().backward()\n"
        ),
        path="train.py",
    ),
    # One call that seeds every library.
    Example(
        source=(
            "import lightning as L\nimport numpy as np\nimport torch\n\nL.seed_everything(42)\n"
            "noise = np.random.randn(8)\nmodel = torch.nn.Linear(8, 1)\ntrainer = L.Trainer()\ntrainer.fit(model)\n"
        ),
        path="train.py",
    ),
    # A project helper with a seeding name is out of view, and taken to seed everything.
    Example(
        source=(
            "import numpy as np\nimport torch\nfrom .utils import set_seed\n\ndef main(args):\n    set_seed(args.seed)\n"
            "    model = torch.nn.Linear(4, 2)\n    batch = np.random.choice(100, 8)\n    model(batch).sum().backward()\n\n"
            "if __name__ == '__main__':\n    main(parse())\n"
        ),
        path="run.py",
    ),
    # A library module is seeded by the script that runs it.
    Example(
        source=(
            "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = nn.Linear(10, 2)\n"
        ),
        path="models/net.py",
    ),
    # Training helpers named after training are libraries, not scripts.
    Example(
        source="import torch\n\ndef fit(model, loader):\n    noise = torch.randn(3)\n    model(noise).sum().backward()\n",
        path="src/train_utils.py",
    ),
    Example(
        source=(
            "import torch\n\nclass Trainer:\n    def __init__(self, model):\n        self.head = torch.nn.Linear(8, 2)\n"
            "    def train(self, loader):\n        for x in loader:\n            self.head(x).sum().backward()\n"
        ),
        path="mingpt/trainer.py",
    ),
    # A main guard that only prints a shape trains nothing.
    Example(
        source=(
            "import torch\n\nclass Net(torch.nn.Module):\n    pass\n\nif __name__ == '__main__':\n"
            "    x = torch.randn(1, 3, 32, 32)\n    print(Net()(x).shape)\n"
        ),
        path="models/net.py",
    ),
    # scikit-learn estimators seeded one by one.
    Example(
        source=(
            "from sklearn.ensemble import RandomForestClassifier\n\n"
            "clf = RandomForestClassifier(n_estimators=100, random_state=0)\nclf.fit(X, y)\n"
        ),
        path="train.py",
    ),
    # np.random.seed also seeds scikit-learn estimators without random_state.
    Example(
        source=(
            "import numpy as np\nfrom sklearn.cluster import KMeans\n\nnp.random.seed(7)\n"
            "km = KMeans(n_clusters=3).fit(X)\n"
        ),
        path="train_clusters.py",
    ),
    # A seeded Generator is the recommended NumPy API.
    Example(
        source="import numpy as np\n\nrng = np.random.default_rng(0)\nidx = rng.permutation(100)\nmodel.fit(X[idx], y[idx])\n",
        path="train.py",
    ),
    # The Hugging Face Trainer seeds every library from TrainingArguments.seed.
    Example(
        source=(
            "import torch\nfrom transformers import Trainer, TrainingArguments\n\nhead = torch.nn.Linear(768, 2)\n"
            "trainer = Trainer(model=model, args=TrainingArguments('out'))\ntrainer.train()\n"
        ),
        path="finetune.py",
    ),
    # random.seed() without an argument reseeds from the OS, but random.SystemRandom is never seedable.
    Example(
        source="import random\n\ntoken = random.SystemRandom().random()\nmodel.fit(X, y)\n",
        path="train.py",
    ),
    # Test modules are not entry points.
    Example(
        source="import torch\n\nx = torch.randn(4, 4)\nmodel.fit(x)\n",
        path="tests/test_train.py",
    ),
)


# -- AIML523 dataloader-shuffle-without-generator -------------------------------------------

DATALOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
RANDOM_SAMPLERS = frozenset({"torch.utils.data.RandomSampler", "torch.utils.data.sampler.RandomSampler"})


class DataLoaderShuffleWithoutGenerator(EntryPointRule):
    """Flag a shuffling DataLoader with no generator in an entry point that never seeds torch."""

    code = "AIML523"
    slug = "dataloader-shuffle-without-generator"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Randomness Uncontrolled",)
    message = "a shuffling DataLoader has no seeded generator and torch is never seeded"
    impact = (
        "The order of batches, and every random augmentation in the workers, comes from torch's unseeded "
        "generator: two runs see the data in different orders, so their losses and final metrics differ "
        "for reasons that have nothing to do with the change under test."
    )
    fix = (
        "Seed torch at start-up with torch.manual_seed(seed), or give the loader its own generator: "
        "g = torch.Generator(); g.manual_seed(seed); DataLoader(..., shuffle=True, generator=g, "
        "worker_init_fn=seed_worker), where seed_worker seeds numpy and random from torch.initial_seed()."
    )
    prefilter = ("DataLoader", "RandomSampler")

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a shuffling DataLoader or a RandomSampler without generator=, a
        # training call, and no call that seeds torch.
        if not any(_unseeded_sampling(node, names) for node, names in facts.resolved_calls):
            return False
        return may_train(facts) and TORCH not in surely_seeded(facts)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._candidates: list[tuple[cst.Call, cst.CSTNode | None, str]] = []

    def visit_Call(self, node: cst.Call) -> None:
        if not self._entry_point:
            return
        qualified = self._facts.note_call(node, self.context)
        if qualified is None or has_star_kwargs(node) or keyword_value(node, "generator") is not None:
            return
        if qualified in DATALOADERS:
            if not is_true(keyword_value(node, "shuffle")) or keyword_value(node, "worker_init_fn") is not None:
                return
            message = "DataLoader(shuffle=True) has no generator= or worker_init_fn=, and torch is never seeded"
        elif qualified in RANDOM_SAMPLERS:
            message = "RandomSampler has no generator=, and torch is never seeded"
        else:
            return
        statement = self.context.statements[-1] if self.context.statements else None
        self._candidates.append((node, statement, message))

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._facts.trains or TORCH in self._facts.seeded:
            return
        for node, statement, message in self._candidates:
            self.context.pending.append(PendingFinding(self.code, node, message, statement))


DataLoaderShuffleWithoutGenerator.INVALID = (
    Example(
        source=(
            "import torch\nfrom torch.utils.data import DataLoader\n\n"
            "loader = DataLoader(train_set, batch_size=64, shuffle=True, num_workers=4)\n"
            "for x, y in loader:\n    loss = model(x, y)\n    loss.backward()\n"
        ),
        path="train.py",
        lines=(4,),
    ),
    Example(
        source=(
            "import torch.utils.data as tud\n\ndef main():\n    sampler = tud.RandomSampler(dataset)\n"
            "    loader = tud.DataLoader(dataset, sampler=sampler, batch_size=8)\n"
            "    for batch in loader:\n        model(batch).mean().backward()\n\n"
            "if __name__ == '__main__':\n    main()\n"
        ),
        path="experiments/pretrain.py",
        lines=(4,),
    ),
    Example(
        source=(
            "import numpy as np\nimport torch\n\nnp.random.seed(0)\n"
            "train_loader = torch.utils.data.DataLoader(ds, shuffle=True)\n"
            "val_loader = torch.utils.data.DataLoader(val, shuffle=False)\nmodel.fit(train_loader)\n"
        ),
        path="train_cnn.py",
        lines=(5,),
    ),
)
DataLoaderShuffleWithoutGenerator.VALID = (
    # torch is seeded globally, so the loader's default generator is too.
    Example(
        source=(
            "import torch\nfrom torch.utils.data import DataLoader\n\ntorch.manual_seed(0)\n"
            "loader = DataLoader(ds, shuffle=True)\nfor x in loader:\n    model(x).sum().backward()\n"
        ),
        path="train.py",
    ),
    # A generator of its own.
    Example(
        source=(
            "import torch\nfrom torch.utils.data import DataLoader\n\ng = torch.Generator()\ng.manual_seed(0)\n"
            "loader = DataLoader(ds, shuffle=True, generator=g)\nfor x in loader:\n    model(x).sum().backward()\n"
        ),
        path="train.py",
    ),
    Example(
        source=(
            "from torch.utils.data import DataLoader\n\n"
            "loader = DataLoader(ds, shuffle=True, worker_init_fn=seed_worker)\nfor x in loader:\n"
            "    model(x).sum().backward()\n"
        ),
        path="train.py",
    ),
    # No shuffling.
    Example(
        source="from torch.utils.data import DataLoader\n\nloader = DataLoader(ds, batch_size=8)\nmodel.fit(loader)\n",
        path="train.py",
    ),
    # A dataset module is not an entry point.
    Example(
        source=(
            "from torch.utils.data import DataLoader\n\ndef make_loader(ds):\n"
            "    return DataLoader(ds, shuffle=True)\n"
        ),
        path="data/loaders.py",
    ),
    # A seeding helper from the project.
    Example(
        source=(
            "from torch.utils.data import DataLoader\nfrom common import seed_everything\n\nseed_everything(3)\n"
            "loader = DataLoader(ds, shuffle=True)\ntrainer.fit(model, loader)\n"
        ),
        path="train.py",
    ),
    # Keyword arguments passed through may hold a generator.
    Example(
        source="from torch.utils.data import DataLoader\n\nloader = DataLoader(ds, shuffle=True, **opts)\nmodel.fit(loader)\n",
        path="train.py",
    ),
)


# -- AIML524 deterministic-algorithms-not-requested -------------------------------------------

LIGHTNING_TRAINERS = frozenset(
    {"lightning.Trainer", "lightning.pytorch.Trainer", "pytorch_lightning.Trainer", "lightning.pytorch.trainer.Trainer"}
)
_CUDNN = "torch.backends.cudnn."


def _unseeded_sampling(node: ast.Call, names: frozenset[str | None]) -> bool:
    """Tell whether a call may be a DataLoader or sampler that AIML523 reports."""
    keywords = {keyword.arg for keyword in node.keywords}
    if None in keywords or "generator" in keywords:
        return False
    if not names.isdisjoint(RANDOM_SAMPLERS):
        return True
    shuffles = keyword_constant(node, "shuffle") is True
    return shuffles and "worker_init_fn" not in keywords and not names.isdisjoint(DATALOADERS)


class DeterministicAlgorithmsNotRequested(EntryPointRule):
    """Flag a torch training entry point that never requests deterministic kernels."""

    code = "AIML524"
    slug = "deterministic-algorithms-not-requested"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Deterministic Algorithm Option Not Used",)
    message = "a torch training entry point never requests deterministic algorithms"
    impact = (
        "Even with every seed set, several CUDA and cuDNN kernels (atomic-add reductions, scatter, some "
        "convolution backward passes) give slightly different results from run to run, and cuDNN benchmark "
        "mode picks a different algorithm each time. Two runs of the same commit then diverge, which hides "
        "whether a change helped."
    )
    fix = (
        "For runs that must be reproducible, call torch.use_deterministic_algorithms(True) (and set "
        "CUBLAS_WORKSPACE_CONFIG=:4096:8 on CUDA), or at least set torch.backends.cudnn.deterministic = True and "
        "torch.backends.cudnn.benchmark = False; with Lightning pass Trainer(deterministic=True). Make it a "
        "configuration switch if the deterministic kernels are too slow for every run."
    )
    prefilter = ("torch", "lightning")

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # A report needs cudnn.benchmark = True, or else a place to anchor it: a backward() call
        # in a module that imports torch, or a Lightning Trainer without deterministic=True.
        # A request for deterministic algorithms rules the file out only if it is one under every resolution.
        assignments = [(target, node.value) for node in facts.nodes(ast.Assign) for target in node.targets]
        benchmark = _CUDNN + "benchmark"
        if any(
            benchmark in facts.resolutions(target) and isinstance(value, ast.Constant) and value.value is True
            for target, value in assignments
        ):
            return True
        anchored = ("backward" in facts.callee_names and facts.may_import("torch")) or any(
            not names.isdisjoint(LIGHTNING_TRAINERS) and not unpacks_kwargs(node) and not _asks_determinism(node)
            for node, names in facts.resolved_calls
        )
        if not anchored:
            return False
        if any(all(_requests_determinism(node, name) for name in names) for node, names in facts.resolved_calls):
            return False
        for target, value in assignments:
            names = facts.resolutions(target)
            if names == {_CUDNN + "deterministic"} and not _is_false_constant(value):
                return False
            if names == {_CUDNN + "enabled"} and _is_false_constant(value):
                return False
        return True

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._requested = False
        #: The first ``.backward()`` call or Lightning Trainer, where a finding is reported.
        self._anchor: tuple[cst.Call, cst.CSTNode | None, str] | None = None
        self._benchmark_on: tuple[cst.CSTNode, cst.CSTNode | None] | None = None

    def visit_Call(self, node: cst.Call) -> None:
        if not self._entry_point:
            return
        qualified = self._facts.note_call(node, self.context)
        if qualified == "torch.use_deterministic_algorithms":
            mode = call_argument(node, 0, "mode")
            if mode is not None and not is_false(mode.value):
                self._requested = True
        elif qualified in ("transformers.enable_full_determinism", "transformers.trainer_utils.enable_full_determinism"):
            self._requested = True
        elif qualified in LIGHTNING_TRAINERS or qualified == "transformers.TrainingArguments":
            keyword = "deterministic" if qualified in LIGHTNING_TRAINERS else "full_determinism"
            value = keyword_value(node, keyword)
            if (value is not None and not is_false(value)) or has_star_kwargs(node):
                self._requested = True
            elif qualified in LIGHTNING_TRAINERS:
                self._set_anchor(node, f"{qualified}() has no deterministic=True")
        elif qualified in ("transformers.set_seed", "accelerate.utils.set_seed"):
            deterministic = keyword_value(node, "deterministic")
            if deterministic is not None and not is_false(deterministic):
                self._requested = True
        elif seeding_helper_name(node, qualified) is not None:
            # A project's seeding helper often sets cudnn.deterministic as well.
            self._requested = True
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "backward" and self.context.imports_any("torch"):
            self._set_anchor(node, f"{_call_text(node)} trains here")

    def visit_Assign(self, node: cst.Assign) -> None:
        if not self._entry_point:
            return
        for target in node.targets:
            name = self.context.qualified_name(target.target)
            if name == _CUDNN + "deterministic" and not is_false(node.value):
                self._requested = True
            elif name == _CUDNN + "enabled" and is_false(node.value):
                self._requested = True
            elif name == _CUDNN + "benchmark" and is_true(node.value):
                statement = self.context.statements[-1] if self.context.statements else None
                self._benchmark_on = (target.target, statement)

    def _set_anchor(self, node: cst.Call, display: str) -> None:
        if self._anchor is None:
            statement = self.context.statements[-1] if self.context.statements else None
            self._anchor = (node, statement, display)

    def leave_Module(self, original_node: cst.Module) -> None:
        if self._requested:
            if self._benchmark_on is not None:
                node, statement = self._benchmark_on
                message = (
                    "torch.backends.cudnn.benchmark = True lets cuDNN pick a different convolution algorithm on "
                    "each run, which undoes the deterministic setting of this entry point; set it to False"
                )
                self.context.pending.append(PendingFinding(self.code, node, message, statement))
            return
        if self._anchor is None:
            return
        node, statement, display = self._anchor
        message = (
            f"{display}, and this entry point never calls torch.use_deterministic_algorithms(True) "
            "or sets torch.backends.cudnn.deterministic = True"
        )
        self.context.pending.append(PendingFinding(self.code, node, message, statement))


def _asks_determinism(trainer: ast.Call) -> bool:
    """Tell whether a Lightning Trainer call passes ``deterministic=`` with something other than False."""
    value = argument(trainer, None, "deterministic")
    return value is not None and not _is_false_constant(value)


def _requests_determinism(node: ast.Call, qualified: str | None) -> bool:
    """Tell whether a call resolving to ``qualified`` counts as a request in AIML524's ``visit_Call``."""
    if qualified == "torch.use_deterministic_algorithms":
        mode = argument(node, 0, "mode")
        return mode is not None and not _is_false_constant(mode)
    if qualified in ("transformers.enable_full_determinism", "transformers.trainer_utils.enable_full_determinism"):
        return True
    if qualified in LIGHTNING_TRAINERS or qualified == "transformers.TrainingArguments":
        value = argument(node, None, "deterministic" if qualified in LIGHTNING_TRAINERS else "full_determinism")
        return (value is not None and not _is_false_constant(value)) or unpacks_kwargs(node)
    if qualified in ("transformers.set_seed", "accelerate.utils.set_seed"):
        value = argument(node, None, "deterministic")
        return value is not None and not _is_false_constant(value)
    last = callee_name(node.func)
    return last is not None and is_seeding_helper(last, qualified)


def _call_text(node: cst.Call) -> str:
    """Return the call as written, ``scaler.scale(loss).backward()``, shortened when long."""
    callee = cst.Module(body=[]).code_for_node(node.func)
    if len(callee) > 40:
        callee = "..." + callee[-37:]
    return f"{callee}()"


_TORCH_LOOP = (
    "for x, y in loader:\n    loss = criterion(model(x), y)\n    optimizer.zero_grad()\n    loss.backward()\n"
    "    optimizer.step()\n"
)

DeterministicAlgorithmsNotRequested.INVALID = (
    Example(source="import torch\n\ntorch.manual_seed(0)\n" + _TORCH_LOOP, path="train.py", lines=(7,)),
    Example(
        source=(
            "import lightning as L\n\ndef main():\n    L.seed_everything(1)\n    trainer = L.Trainer(max_epochs=10)\n"
            "    trainer.fit(model, dm)\n\nif __name__ == '__main__':\n    main()\n"
        ),
        path="cli.py",
        lines=(5,),
    ),
    Example(
        source=(
            "import torch\n\ntorch.backends.cudnn.deterministic = True\ntorch.backends.cudnn.benchmark = True\n"
            + _TORCH_LOOP
        ),
        path="train.py",
        lines=(4,),
    ),
    Example(
        source="import torch\n\ntorch.use_deterministic_algorithms(False)\n" + _TORCH_LOOP,
        path="train_gan.py",
        lines=(7,),
    ),
)
DeterministicAlgorithmsNotRequested.VALID = (
    Example(source="import torch\n\ntorch.use_deterministic_algorithms(True)\n" + _TORCH_LOOP, path="train.py"),
    Example(
        source=(
            "import torch\nfrom torch.backends import cudnn\n\ncudnn.deterministic = True\ncudnn.benchmark = False\n"
            + _TORCH_LOOP
        ),
        path="train.py",
    ),
    # A configuration switch is unknown, not off.
    Example(
        source="import torch\n\ntorch.backends.cudnn.deterministic = args.deterministic\n" + _TORCH_LOOP,
        path="train.py",
    ),
    Example(
        source="import lightning as L\n\ntrainer = L.Trainer(deterministic=True)\ntrainer.fit(model)\n",
        path="train.py",
    ),
    Example(
        source="import pytorch_lightning as pl\n\ntrainer = pl.Trainer(deterministic=cfg.deterministic)\ntrainer.fit(model)\n",
        path="train.py",
    ),
    # The project's own seeding helper may set the cuDNN flags.
    Example(source="import torch\nfrom utils import set_seed\n\nset_seed(0)\n" + _TORCH_LOOP, path="train.py"),
    # A library module's training loop belongs to the script that calls it.
    Example(source="import torch\n\ndef fit(model, loader, optimizer, criterion):\n" + "".join(
        "    " + line + "\n" for line in _TORCH_LOOP.splitlines()
    ), path="engine/loop.py"),
    # backward() of a framework other than torch (an autograd toy) is not a torch loop.
    Example(source="from micrograd.engine import Value\n\nloss = Value(2.0) ** 2\nloss.backward()\n", path="train.py"),
)


# -- AIML522 split-without-random-state ----------------------------------------------------------

#: Splitters that shuffle only with ``shuffle=True``.
SHUFFLE_OPTIONAL_SPLITTERS = frozenset({"KFold", "StratifiedKFold", "GroupKFold", "StratifiedGroupKFold"})
#: Splitters and functions that are always random.
ALWAYS_RANDOM_SPLITTERS = frozenset(
    {
        "ShuffleSplit", "StratifiedShuffleSplit", "GroupShuffleSplit", "RepeatedKFold", "RepeatedStratifiedKFold",
        "resample",
    }
)
_SPLIT_MODULES = ("sklearn.model_selection.", "sklearn.cross_validation.", "sklearn.utils.")


class SplitWithoutRandomState(FileRule):
    """Flag a random train/test split or cross-validation splitter without ``random_state``."""

    code = "AIML522"
    slug = "split-without-random-state"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Randomness Uncontrolled",)
    message = "a random data split has no random_state"
    impact = (
        "Without random_state the rows that land in the test set change on every run. Scores move by the "
        "split's noise alone, results cannot be reproduced, and a model compared across runs is compared "
        "on different test sets."
    )
    fix = (
        "Pass random_state=SEED (a constant or a configured seed) to train_test_split, to KFold and "
        "StratifiedKFold with shuffle=True, and to ShuffleSplit-style splitters; better still, split once and "
        "save the split, so every experiment evaluates on the same rows."
    )
    prefilter = ("train_test_split", "KFold", "ShuffleSplit", "shuffle", "resample")
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "sklearn" in text and cls.matches_text(text)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        if qualified is None or not qualified.startswith(_SPLIT_MODULES):
            return
        name = qualified.rsplit(".", 1)[-1]
        if has_star_kwargs(node) or keyword_value(node, "random_state") is not None:
            return
        if name == "train_test_split":
            if is_false(keyword_value(node, "shuffle")):
                return
            self.report(node, "train_test_split() shuffles without random_state, so the test set changes on every run")
        elif name == "shuffle" and qualified.startswith("sklearn.utils."):
            self.report(node, "sklearn.utils.shuffle() has no random_state, so the row order changes on every run")
        elif name in SHUFFLE_OPTIONAL_SPLITTERS:
            if is_true(keyword_value(node, "shuffle")):
                self.report(node, f"{name}(shuffle=True) has no random_state, so the folds change on every run")
        elif name in ALWAYS_RANDOM_SPLITTERS:
            what = "the resampled rows change" if name == "resample" else "the splits change"
            self.report(node, f"{name}() has no random_state, so {what} on every run")


SplitWithoutRandomState.INVALID = (
    Example(
        source=(
            "from sklearn.model_selection import train_test_split\n\n"
            "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2)\n"
        ),
        lines=(3,),
    ),
    Example(
        source=(
            "import sklearn.model_selection as ms\n\ncv = ms.KFold(n_splits=5, shuffle=True)\n"
            "folds = ms.StratifiedKFold(5, shuffle=True)\nsplitter = ms.GroupShuffleSplit(n_splits=1, test_size=0.1)\n"
        ),
        path="pipeline/evaluate.py",
        lines=(3, 4, 5),
    ),
    Example(
        source=(
            "from sklearn.model_selection import train_test_split as tts, ShuffleSplit\n\n"
            "def split(df):\n    return tts(df, stratify=df['label'])\n\nss = ShuffleSplit(n_splits=3)\n"
        ),
        path="data/split.py",
        lines=(4, 6),
    ),
    Example(
        source="from sklearn.utils import resample, shuffle\n\nboot = resample(df)\nX, y = shuffle(X, y)\n",
        lines=(3, 4),
    ),
)
SplitWithoutRandomState.VALID = (
    Example(
        source=(
            "from sklearn.model_selection import train_test_split\n\n"
            "X_train, X_test = train_test_split(X, test_size=0.2, random_state=42)\n"
        ),
    ),
    Example(source="from sklearn.model_selection import train_test_split\n\ntrain, test = train_test_split(df, shuffle=False)\n"),
    # KFold without shuffling is deterministic.
    Example(source="from sklearn.model_selection import KFold, StratifiedKFold\n\ncv = KFold(5)\ncv2 = StratifiedKFold(n_splits=5)\n"),
    Example(source="from sklearn.model_selection import KFold\n\ncv = KFold(5, shuffle=True, random_state=cfg.seed)\n"),
    # Keyword arguments passed through may hold random_state.
    Example(source="from sklearn.model_selection import train_test_split\n\nparts = train_test_split(X, y, **split_args)\n"),
    # A project function of the same name is not scikit-learn's.
    Example(source="from .data import train_test_split\n\nparts = train_test_split(df, 0.2)\n"),
    Example(source="import random\n\nrandom.shuffle(rows)\n"),
    # Tests may split however they like.
    Example(source="from sklearn.model_selection import train_test_split\n\nparts = train_test_split(X, y)\n", path="tests/test_split.py"),
)


# -- AIML525 hyperparameters-left-default --------------------------------------------------------

TORCH_OPTIMIZERS = frozenset(
    {
        "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop",
        "SparseAdam", "LBFGS",
    }
)
KERAS_OPTIMIZERS = frozenset(
    {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion", "Adafactor"}
)
#: Estimators whose defaults are rarely right for a given data set, with the hyperparameters
#: to set: the message names them.
ESTIMATOR_HYPERPARAMETERS: dict[str, str] = {
    "RandomForestClassifier": "n_estimators, max_depth, min_samples_leaf, max_features",
    "RandomForestRegressor": "n_estimators, max_depth, min_samples_leaf, max_features",
    "ExtraTreesClassifier": "n_estimators, max_depth, min_samples_leaf, max_features",
    "ExtraTreesRegressor": "n_estimators, max_depth, min_samples_leaf, max_features",
    "GradientBoostingClassifier": "n_estimators, learning_rate, max_depth, subsample",
    "GradientBoostingRegressor": "n_estimators, learning_rate, max_depth, subsample",
    "HistGradientBoostingClassifier": "learning_rate, max_iter, max_leaf_nodes, l2_regularization",
    "HistGradientBoostingRegressor": "learning_rate, max_iter, max_leaf_nodes, l2_regularization",
    "AdaBoostClassifier": "n_estimators, learning_rate",
    "AdaBoostRegressor": "n_estimators, learning_rate",
    "DecisionTreeClassifier": "max_depth, min_samples_leaf",
    "DecisionTreeRegressor": "max_depth, min_samples_leaf",
    "LogisticRegression": "C, penalty, max_iter",
    "SVC": "C, kernel, gamma",
    "SVR": "C, kernel, gamma, epsilon",
    "LinearSVC": "C",
    "KNeighborsClassifier": "n_neighbors, weights",
    "KNeighborsRegressor": "n_neighbors, weights",
    "MLPClassifier": "hidden_layer_sizes, alpha, learning_rate_init",
    "MLPRegressor": "hidden_layer_sizes, alpha, learning_rate_init",
    "SGDClassifier": "loss, alpha, penalty",
    "SGDRegressor": "loss, alpha, penalty",
    "Ridge": "alpha",
    "Lasso": "alpha",
    "ElasticNet": "alpha, l1_ratio",
    "XGBClassifier": "n_estimators, learning_rate, max_depth",
    "XGBRegressor": "n_estimators, learning_rate, max_depth",
    "LGBMClassifier": "n_estimators, learning_rate, num_leaves",
    "LGBMRegressor": "n_estimators, learning_rate, num_leaves",
    "CatBoostClassifier": "iterations, learning_rate, depth",
    "CatBoostRegressor": "iterations, learning_rate, depth",
}
_BOOSTING_PACKAGES = ("xgboost.", "lightgbm.", "catboost.")
#: Clustering and mixture models whose one key hyperparameter must be chosen for the data:
#: class -> (keyword, position).
KEY_HYPERPARAMETER: dict[str, tuple[str, int]] = {
    "KMeans": ("n_clusters", 0),
    "MiniBatchKMeans": ("n_clusters", 0),
    "SpectralClustering": ("n_clusters", 0),
    "GaussianMixture": ("n_components", 0),
    "DBSCAN": ("eps", 0),
}
#: Arguments that configure execution, not the model: setting only these leaves every hyperparameter default.
NON_HYPERPARAMETERS = frozenset(
    {
        "random_state", "n_jobs", "verbose", "verbosity", "seed", "random_seed", "nthread", "thread_count",
        "silent", "logging_level", "device", "use_label_encoder",
    }
)
#: Meta-estimators whose inner estimator's defaults are usually the intended base learner.
META_ESTIMATORS = frozenset(
    {
        "BaggingClassifier", "BaggingRegressor", "AdaBoostClassifier", "AdaBoostRegressor", "CalibratedClassifierCV",
        "OneVsRestClassifier", "OneVsOneClassifier", "OutputCodeClassifier", "MultiOutputClassifier",
        "MultiOutputRegressor", "ClassifierChain", "RegressorChain", "VotingClassifier", "VotingRegressor",
        "StackingClassifier", "StackingRegressor", "SelectFromModel", "RFE", "RFECV", "SequentialFeatureSelector",
        "TransformedTargetRegressor", "SelfTrainingClassifier",
    }
)
#: Searches, and ``set_params``, that set the hyperparameters of the estimators they are given.
SEARCHES = frozenset(
    {
        "GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV", "BayesSearchCV",
        "TuneSearchCV", "TuneGridSearchCV", "set_params",
    }
)
#: Tuning packages: a module that imports one tunes its models.
TUNING_PACKAGES = ("optuna", "hyperopt", "ray.tune", "keras_tuner", "kerastuner", "skopt", "nevergrad", "flaml")
#: Words in names of schedules, callbacks and finders that set the learning rate of the
#: optimizer themselves (``OneCycleLR``, a Keras ``LearningRateScheduler``, ``find_learning_rate``).
LR_SETTING_WORDS = ("onecycle", "cycliclr", "learningratescheduler", "lr_find", "find_lr", "lrfinder", "find_learning_rate")


_CONSTRUCTOR_TEXT = re.compile(
    r"\b(?:"
    + "|".join(sorted({name.rsplit(".", 1)[-1] for name in TORCH_OPTIMIZERS | KERAS_OPTIMIZERS} | set(ESTIMATOR_HYPERPARAMETERS)))
    + r")\s*\("
)


def estimator_name(qualified: str | None) -> str | None:
    """Return the class name of a scikit-learn, XGBoost, LightGBM or CatBoost estimator, or None."""
    if qualified is None:
        return None
    if qualified.startswith("sklearn.") or qualified.startswith(_BOOSTING_PACKAGES):
        return qualified.rsplit(".", 1)[-1]
    return None


class HyperparametersLeftDefault(FileRule):
    """Flag optimizers and estimators built with every hyperparameter left at its default."""

    code = "AIML525"
    slug = "hyperparameters-left-default"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Hyperparameter not Explicitly Set",)
    message = "an optimizer or estimator is built with its hyperparameters left at the library defaults"
    impact = (
        "Library defaults are generic starting points, and they change between releases (scikit-learn changed "
        "the defaults of n_estimators, solver and gamma; Keras renamed lr). A model trained on defaults is "
        "rarely tuned for its data, and what was trained is not visible in the code or in the run's record."
    )
    fix = (
        "Set the key hyperparameters explicitly, from the run's configuration: lr= for torch optimizers, "
        "learning_rate= for Keras optimizers, and the capacity and regularisation parameters of an estimator "
        "(n_estimators and max_depth for forests, C for SVMs and logistic regression, n_clusters for KMeans). "
        "Log them with the run, and tune them with a search where it matters."
    )
    prefilter = ("optim", "sklearn", "xgboost", "lightgbm", "catboost")
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        # "optim" is in every Lightning module (configure_optimizers); a constructor the
        # rule reports is always written as its class name followed by a parenthesis.
        return cls.matches_text(text) and _CONSTRUCTOR_TEXT.search(text) is not None

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a constructor that leaves its key hyperparameters unset. A name
        # that sets the learning rate silences the optimizers, and a search or a tuning
        # package silences the estimators.
        kinds = {_default_constructor(node, name) for node, names in facts.resolved_calls for name in names - {None}}
        if "optimizer" in kinds and not _names_lr_setter(facts):
            return True
        return "estimator" in kinds and facts.callee_names.isdisjoint(SEARCHES) and not _surely_tuned(facts)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._searched = False
        self._lr_scheduled = False
        #: Enclosing calls, innermost last, to tell an estimator nested in a meta-estimator.
        self._calls: list[str | None] = []
        self._estimators: list[tuple[cst.Call, cst.CSTNode | None, str]] = []
        self._optimizers: list[tuple[cst.Call, cst.CSTNode | None, str]] = []
        #: Constructor call -> the variable it is assigned to.
        self._assigned: dict[cst.Call, str] = {}
        #: Variables passed to a meta-estimator as its base learner.
        self._base_learners: set[str] = set()

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, cst.Name):
                self._assigned[node.value] = target.value

    def visit_Name(self, node: cst.Name) -> None:
        if not self._lr_scheduled:
            lowered = node.value.lower()
            self._lr_scheduled = any(word in lowered for word in LR_SETTING_WORDS)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.context.qualified_name(node.func)
        func = node.func
        if isinstance(func, cst.Attribute):
            last = func.attr.value
        elif isinstance(func, cst.Name):
            last = func.value
        else:
            last = ""
        if last in SEARCHES:
            self._searched = True
        self._check(node, qualified)
        self._calls.append(qualified)

    def leave_Call(self, original_node: cst.Call) -> None:
        self._calls.pop()

    def _check(self, node: cst.Call, qualified: str | None) -> None:
        if qualified is None:
            return
        last = qualified.rsplit(".", 1)[-1]
        statement = self.context.statements[-1] if self.context.statements else None
        if qualified.startswith("torch.optim.") and last in TORCH_OPTIMIZERS:
            if not self._torch_lr_set(node):
                self._optimizers.append((node, statement, f"torch.optim.{last}() has no lr= and trains with the default learning rate"))
            return
        if _keras_member(qualified, "optimizers") in KERAS_OPTIMIZERS:
            if call_argument(node, 0, "learning_rate") is None and keyword_value(node, "lr") is None and not has_star_kwargs(node):
                self._optimizers.append((node, statement, f"keras.optimizers.{last}() has no learning_rate= and trains with the default learning rate"))
            return
        estimator = estimator_name(qualified)
        if estimator in META_ESTIMATORS:
            self._base_learners.update(arg.value.value for arg in node.args if isinstance(arg.value, cst.Name))
        if estimator is None or self._nested_in_meta_estimator():
            return
        if estimator in KEY_HYPERPARAMETER:
            keyword, position = KEY_HYPERPARAMETER[estimator]
            if call_argument(node, position, keyword) is None and not has_star_kwargs(node):
                self._estimators.append((node, statement, f"{estimator}() leaves {keyword} at its default"))
        elif estimator in ESTIMATOR_HYPERPARAMETERS and self._only_defaults(node):
            self._estimators.append(
                (node, statement, f"{estimator}() sets no hyperparameter; choose {ESTIMATOR_HYPERPARAMETERS[estimator]}")
            )

    @staticmethod
    def _only_defaults(node: cst.Call) -> bool:
        for arg in node.args:
            if arg.star or arg.keyword is None or arg.keyword.value not in NON_HYPERPARAMETERS:
                return False
        return True

    @staticmethod
    def _torch_lr_set(node: cst.Call) -> bool:
        if call_argument(node, 1, "lr") is not None or has_star_kwargs(node):
            return True
        params = call_argument(node, 0, "params")
        if params is None:
            return True
        value = params.value
        if isinstance(value, (cst.List, cst.Tuple)):
            # Parameter groups with a learning rate each.
            return any(_dict_has_key(element.value, "lr") for element in value.elements)
        if isinstance(value, cst.Name) and "group" in value.value.lower():
            return True
        return False

    def _nested_in_meta_estimator(self) -> bool:
        return any(estimator_name(call) in META_ESTIMATORS for call in self._calls)

    def leave_Module(self, original_node: cst.Module) -> None:
        found = [] if self._lr_scheduled else list(self._optimizers)
        if not self._searched and not self.context.imports_any(*TUNING_PACKAGES):
            found += [item for item in self._estimators if self._assigned.get(item[0]) not in self._base_learners]
        for node, statement, message in found:
            self.context.pending.append(PendingFinding(self.code, node, message, statement))


def _default_constructor(node: ast.Call, qualified: str) -> str | None:
    """Return "optimizer" or "estimator" when ``_check`` may report the call under this name, else None."""
    last = qualified.rsplit(".", 1)[-1]
    if qualified.startswith("torch.optim.") and last in TORCH_OPTIMIZERS:
        params = argument(node, 0, "params")
        if argument(node, 1, "lr") is not None or unpacks_kwargs(node) or params is None:
            return None
        # Parameter groups in a list may carry their own rates: libcst's check reads their keys.
        grouped = isinstance(params, ast.Name) and "group" in params.id.lower()
        return None if grouped else "optimizer"
    if _keras_member(qualified, "optimizers") in KERAS_OPTIMIZERS:
        named = argument(node, 0, "learning_rate") is not None or argument(node, None, "lr") is not None
        return None if named or unpacks_kwargs(node) else "optimizer"
    estimator = estimator_name(qualified)
    if estimator in KEY_HYPERPARAMETER:
        keyword, position = KEY_HYPERPARAMETER[estimator]
        return None if argument(node, position, keyword) is not None or unpacks_kwargs(node) else "estimator"
    if estimator in ESTIMATOR_HYPERPARAMETERS:
        only_defaults = not node.args and all(keyword.arg in NON_HYPERPARAMETERS for keyword in node.keywords)
        return "estimator" if only_defaults else None
    return None


def _names_lr_setter(facts: AstFacts) -> bool:
    """Tell whether a name or attribute of the module names a learning-rate setter, as ``visit_Name`` finds them."""
    names = [node.id for node in facts.nodes(ast.Name)] + [node.attr for node in facts.nodes(ast.Attribute)]
    return any(word in name.lower() for name in names for word in LR_SETTING_WORDS)


def _surely_tuned(facts: AstFacts) -> bool:
    """Tell whether some name is imported only from a tuning package, so that ``imports_any`` is true at the end."""
    def tuning(target: str) -> bool:
        return any(target == package or target.startswith(package + ".") for package in TUNING_PACKAGES)

    return any(all(tuning(target) for target in targets) for targets in facts.bindings.values())


def _keras_member(qualified: str, package: str) -> str | None:
    """Return ``Adam`` for ``tensorflow.keras.optimizers.Adam`` and the like, or None."""
    for prefix in (*_KERAS_PREFIXES, "tensorflow."):
        for subpackage in (f"{package}.", f"{package}.legacy."):
            if qualified.startswith(prefix + subpackage):
                rest = qualified[len(prefix + subpackage):]
                # ``legacy.Adam`` is not a member of ``optimizers``; the next subpackage reads it.
                if "." not in rest:
                    return rest
    return None


def _dict_has_key(expr: cst.BaseExpression, key: str) -> bool:
    if isinstance(expr, cst.Dict):
        return any(
            isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)
            and element.key.evaluated_value == key
            for element in expr.elements
        )
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "dict":
        return keyword_value(expr, key) is not None
    return False


HyperparametersLeftDefault.INVALID = (
    Example(
        source="import torch\n\noptimizer = torch.optim.Adam(model.parameters())\n",
        path="train.py",
        lines=(3,),
    ),
    Example(
        source=(
            "from sklearn.ensemble import RandomForestClassifier\nfrom sklearn.cluster import KMeans\n\n"
            "clf = RandomForestClassifier(random_state=0, n_jobs=-1)\nclusters = KMeans(random_state=0).fit_predict(X)\n"
        ),
        lines=(4, 5),
    ),
    Example(
        source=(
            "import tensorflow as tf\n\nmodel.compile(optimizer=tf.keras.optimizers.SGD(), loss='mse')\n"
        ),
        lines=(3,),
    ),
    # The old optimizers, under ``legacy`` since TensorFlow 2.11.
    Example(source="import tensorflow as tf\n\nopt = tf.keras.optimizers.legacy.Adam()\n", lines=(3,)),
    Example(
        source=(
            "from xgboost import XGBClassifier\nfrom sklearn.svm import SVC\nfrom sklearn.pipeline import make_pipeline\n"
            "from sklearn.preprocessing import StandardScaler\n\nmodels = {'xgb': XGBClassifier(), "
            "'svm': make_pipeline(StandardScaler(), SVC())}\n"
        ),
        path="notebooks/compare.py",
        lines=(6,),
    ),
    Example(
        source="from torch import optim\n\ndef configure_optimizers(self):\n    return optim.SGD(self.parameters())\n",
        path="model.py",
        lines=(4,),
    ),
)
HyperparametersLeftDefault.VALID = (
    Example(source="import torch\n\noptimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)\n"),
    Example(source="import torch\n\noptimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)\n"),
    # Parameter groups that carry their own learning rates.
    Example(
        source=(
            "import torch\n\noptimizer = torch.optim.Adam([{'params': backbone, 'lr': 1e-5}, "
            "{'params': head, 'lr': 1e-3}])\nopt2 = torch.optim.AdamW(param_groups)\n"
        ),
    ),
    Example(source="import torch\n\nopt = torch.optim.Adam(model.parameters(), **cfg.optim)\n"),
    # OneCycleLR sets the learning rate of the optimizer it drives.
    Example(
        source=(
            "import torch\n\nopt = torch.optim.SGD(model.parameters())\n"
            "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)\n"
        ),
    ),
    Example(source="from tensorflow import keras\n\nopt = keras.optimizers.Adam(1e-3)\nopt2 = keras.optimizers.SGD(learning_rate=0.1)\n"),
    Example(
        source=(
            "from sklearn.ensemble import RandomForestClassifier\nfrom sklearn.cluster import KMeans\n\n"
            "clf = RandomForestClassifier(n_estimators=500, max_depth=12)\nkm = KMeans(8)\n"
        ),
    ),
    # A search sets the hyperparameters of the estimator it is given.
    Example(
        source=(
            "from sklearn.model_selection import GridSearchCV\nfrom sklearn.svm import SVC\n\n"
            "search = GridSearchCV(SVC(), {'C': [0.1, 1, 10]})\n"
        ),
    ),
    # Base learners of meta-estimators are usually meant to keep their defaults.
    Example(
        source=(
            "from sklearn.ensemble import BaggingClassifier\nfrom sklearn.tree import DecisionTreeClassifier\n\n"
            "bag = BaggingClassifier(DecisionTreeClassifier(), n_estimators=200)\n"
        ),
    ),
    Example(
        source=(
            "from sklearn.ensemble import BaggingClassifier\nfrom sklearn.tree import DecisionTreeClassifier\n\n"
            "tree = DecisionTreeClassifier()\nbag = BaggingClassifier(tree, n_estimators=100, random_state=1)\n"
        ),
    ),
    # A Keras learning-rate schedule sets the rate of the optimizer.
    Example(
        source=(
            "import tensorflow as tf\n\nmodel.compile(optimizer=tf.keras.optimizers.SGD(), loss='mse')\n"
            "model.fit(X, y, callbacks=[tf.keras.callbacks.LearningRateScheduler(schedule)])\n"
        ),
    ),
    # Estimators without hyperparameters worth setting, and unknown keyword arguments.
    Example(
        source=(
            "from sklearn.linear_model import LinearRegression, LogisticRegression\n\nlr = LinearRegression()\n"
            "clf = LogisticRegression(**best_params)\n"
        ),
    ),
    # A project class that shares a name.
    Example(source="from .models import RandomForestClassifier\n\nclf = RandomForestClassifier()\n"),
)


# -- AIML526 numpy-random-in-dataset ---------------------------------------------------------------

DATASET_BASES = frozenset(
    {
        "torch.utils.data.Dataset", "torch.utils.data.dataset.Dataset", "torch.utils.data.IterableDataset",
        "torch.utils.data.dataset.IterableDataset",
    }
)
#: Methods that run in the DataLoader workers.
WORKER_METHODS = frozenset({"__getitem__", "__getitems__", "__iter__"})


@dataclass(slots=True)
class _DatasetClass:
    """A Dataset subclass being visited: its methods, and ``np.random`` draws by method."""

    name: str
    methods: dict[str, cst.FunctionDef] = field(default_factory=dict)
    #: Method -> the ``self.x(...)`` methods it calls.
    calls: dict[str, set[str]] = field(default_factory=dict)
    draws: dict[str, list[tuple[cst.Call, cst.CSTNode | None, str]]] = field(default_factory=dict)


class NumpyRandomInDataset(FileRule):
    """Flag ``np.random`` draws in the ``__getitem__`` of a torch Dataset."""

    code = "AIML526"
    slug = "numpy-random-in-dataset"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Randomness Uncontrolled",)
    message = "a torch Dataset draws augmentations from NumPy's global random state"
    impact = (
        "DataLoader workers are forked from the main process with a copy of NumPy's global random state. "
        "Before torch 1.9 every worker (and every epoch's new workers) then draws the same 'random' crops, "
        "flips and noise, so the augmentation repeats across workers and epochs and the model sees far less "
        "variety than intended."
    )
    fix = (
        "Draw from torch's generator (torch.rand, torch.randint), which DataLoader seeds per worker; or give "
        "the DataLoader a worker_init_fn that seeds numpy from torch.initial_seed(); or require torch >= 1.9, "
        "which seeds NumPy in each worker."
    )
    prefilter = ("random",)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "Dataset" in text and "numpy" in text and cls.matches_text(text)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._dataset_names: set[str] = set()
        self._classes: list[_DatasetClass | None] = []
        self._methods: list[str] = []
        self._finished: list[_DatasetClass] = []
        #: The module gives a DataLoader a ``worker_init_fn``, or defines one.
        self._worker_seeding = False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        is_dataset = False
        for base in node.bases:
            qualified = self.context.qualified_name(base.value)
            if qualified in DATASET_BASES or (isinstance(base.value, cst.Name) and base.value.value in self._dataset_names):
                is_dataset = True
        if is_dataset:
            self._dataset_names.add(node.name.value)
            self._classes.append(_DatasetClass(node.name.value))
        else:
            self._classes.append(None)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        dataset = self._classes.pop()
        if dataset is not None:
            self._finished.append(dataset)

    def leave_Module(self, original_node: cst.Module) -> None:
        if self._worker_seeding or not self._finished or not self._may_run_old_torch():
            return
        for dataset in self._finished:
            self._report(dataset)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if "worker_init" in node.name.value or node.name.value == "seed_worker":
            self._worker_seeding = True
        dataset = self._classes[-1] if self._classes else None
        if dataset is not None and not self._methods:
            dataset.methods[node.name.value] = node
        self._methods.append(node.name.value)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._methods.pop()

    def visit_Call(self, node: cst.Call) -> None:
        if keyword_value(node, "worker_init_fn") is not None:
            self._worker_seeding = True
        dataset = self._classes[-1] if self._classes else None
        if dataset is None or not self._methods:
            return
        method = self._methods[0]
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            dataset.calls.setdefault(method, set()).add(func.attr.value)
            return
        qualified = self.context.qualified_name(func)
        if qualified is None or not qualified.startswith("numpy.random."):
            return
        last = qualified.rsplit(".", 1)[-1]
        if last == "seed":
            # Reseeding inside the method (per index, say) makes the draws deterministic.
            dataset.draws.setdefault(method, []).append((node, None, "seed"))
        elif last not in _NUMPY_NON_DRAWS:
            statement = self.context.statements[-1] if self.context.statements else None
            dataset.draws.setdefault(method, []).append((node, statement, qualified))

    def _report(self, dataset: _DatasetClass) -> None:
        reached = self._reached_methods(dataset)
        for method in sorted(reached):
            draws = dataset.draws.get(method, [])
            if any(display == "seed" for _, _, display in draws):
                continue
            for node, statement, display in draws:
                where = f"{dataset.name}.{method}()"
                message = (
                    f"{display}() in {where} draws from NumPy's global random state, which DataLoader workers "
                    "of torch < 1.9 share, and the dependency files do not require torch >= 1.9"
                )
                self.context.pending.append(PendingFinding(self.code, node, message, statement))

    @staticmethod
    def _reached_methods(dataset: _DatasetClass) -> set[str]:
        """Return the worker methods and the methods of the class they call, transitively."""
        reached = {name for name in WORKER_METHODS if name in dataset.methods}
        pending = list(reached)
        while pending:
            for callee in dataset.calls.get(pending.pop(), ()):
                if callee in dataset.methods and callee not in reached:
                    reached.add(callee)
                    pending.append(callee)
        return reached

    def _may_run_old_torch(self) -> bool:
        return may_run_below(self.context.repo.pins, "torch", "1.9", self.context.path)


NumpyRandomInDataset.INVALID = (
    Example(
        source=(
            "import numpy as np\nfrom torch.utils.data import Dataset\n\nclass Crops(Dataset):\n"
            "    def __getitem__(self, index):\n        image = self.images[index]\n"
            "        top = np.random.randint(0, 32)\n        return image[top:top + 224]\n"
        ),
        lines=(7,),
    ),
    Example(
        source=(
            "import numpy as np\nimport torch\n\nclass Noisy(torch.utils.data.Dataset):\n"
            "    def __getitem__(self, i):\n        return self.augment(self.x[i])\n\n"
            "    def augment(self, x):\n        if np.random.rand() < 0.5:\n            x = x[::-1]\n"
            "        return x + np.random.normal(0, 0.1, x.shape)\n"
        ),
        path="data/noisy.py",
        files={"requirements.txt": "torch>=1.4\n"},
        lines=(9, 11),
    ),
)
NumpyRandomInDataset.VALID = (
    # torch's generator is seeded per worker.
    Example(
        source=(
            "import torch\nfrom torch.utils.data import Dataset\n\nclass Crops(Dataset):\n"
            "    def __getitem__(self, index):\n        top = int(torch.randint(0, 32, (1,)))\n"
            "        return self.images[index][top:]\n"
        ),
    ),
    # torch 1.9 and later seed NumPy in each worker.
    Example(
        source=(
            "import numpy as np\nfrom torch.utils.data import Dataset\n\nclass Crops(Dataset):\n"
            "    def __getitem__(self, index):\n        return self.images[index] * np.random.rand()\n"
        ),
        files={"requirements.txt": "torch>=2.1\n"},
    ),
    # The module seeds NumPy in every worker.
    Example(
        source=(
            "import numpy as np\nimport torch\nfrom torch.utils.data import Dataset, DataLoader\n\n"
            "class Crops(Dataset):\n    def __getitem__(self, index):\n        return self.x[index] * np.random.rand()\n\n"
            "def seed_worker(worker_id):\n    np.random.seed(torch.initial_seed() % 2**32)\n\n"
            "loader = DataLoader(Crops(), num_workers=4, worker_init_fn=seed_worker)\n"
        ),
    ),
    # Random draws in __init__ happen once, in the main process.
    Example(
        source=(
            "import numpy as np\nfrom torch.utils.data import Dataset\n\nclass Subset(Dataset):\n"
            "    def __init__(self, n):\n        self.idx = np.random.permutation(n)\n"
            "    def __getitem__(self, i):\n        return self.idx[i]\n"
        ),
    ),
    # A per-item generator seeded from the index is deterministic.
    Example(
        source=(
            "import numpy as np\nfrom torch.utils.data import Dataset\n\nclass Fixed(Dataset):\n"
            "    def __getitem__(self, i):\n        rng = np.random.default_rng(i)\n        return rng.random()\n"
        ),
    ),
    # Not a torch Dataset.
    Example(
        source=(
            "import numpy as np\n\nclass Sampler:\n    def __getitem__(self, i):\n        return np.random.rand()\n"
        ),
    ),
)


RULES = (
    UnseededRandomness,
    SplitWithoutRandomState,
    DataLoaderShuffleWithoutGenerator,
    DeterministicAlgorithmsNotRequested,
    HyperparametersLeftDefault,
    NumpyRandomInDataset,
)
