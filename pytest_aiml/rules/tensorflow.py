"""TensorFlow rules: idioms that copy tensors where TensorFlow offers a cheaper form.

Both rules need a TensorFlow call resolved through the module's imports (``tf.tile``,
``tensorflow.concat``), so a NumPy or torch function of the same name never matches.
"""

from __future__ import annotations

from pytest_aiml.engine.context import ModuleContext
from pytest_aiml.engine.libcst_import import cst, node_types
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.rules.training import own_nodes

_TILE = frozenset({"tensorflow.tile"})
_CONCAT = frozenset({"tensorflow.concat"})
_TF_FUNCTION = frozenset({"tensorflow.function"})
#: libcst operator types by name, for ``node_types``, because the rules import libcst on first use.
_ARITHMETIC = ("Add", "Subtract", "Multiply", "Divide", "FloorDivide", "Power", "Modulo")


# -- AIML514 tile-instead-of-broadcast -----------------------------------------------


class TileInsteadOfBroadcast(FileRule):
    """Flag ``tf.tile`` whose result only feeds element-wise arithmetic, which broadcasting does without a copy."""

    code = "AIML514"
    slug = "tile-instead-of-broadcast"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ("Broadcasting Feature Not Used",)
    message = "tf.tile() copies a tensor only to match shapes for element-wise arithmetic"
    impact = (
        "tf.tile materialises every repetition in memory before the arithmetic runs. Element-wise "
        "operations broadcast dimensions of size 1 for free, so the copy only costs memory and time, "
        "which matters for large batches and on accelerators."
    )
    fix = (
        "Drop the tile and let the operation broadcast: give the smaller tensor a dimension of size 1 "
        "where it should repeat (tf.expand_dims(x, 0) or x[tf.newaxis, :]) and write a + b directly."
    )
    prefilter = ("tile(",)

    def _is_tile(self, node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Call) and self.context.qualified_name(node.func) in _TILE

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, node_types(*_ARITHMETIC)):
            return
        for operand in (node.left, node.right):
            if self._is_tile(operand):
                self.report(operand, "tf.tile(...) feeds element-wise arithmetic directly, which broadcasts without the copy")

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._check_scope(original_node.body)

    def leave_Module(self, original_node: cst.Module) -> None:
        self._check_scope(original_node)

    def _check_scope(self, scope: cst.CSTNode) -> None:
        # A name bound once to a tile and read only as an arithmetic operand never needs the copy.
        # Any other read (an argument, a return, an attribute, a matmul) keeps it silent.
        tiles: dict[str, cst.Call] = {}
        bindings: dict[str, int] = {}
        for node in own_nodes(scope):
            if isinstance(node, cst.AssignTarget) and isinstance(node.target, cst.Name):
                bindings[node.target.value] = bindings.get(node.target.value, 0) + 1
            if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                if self._is_tile(node.value):
                    assert isinstance(node.value, cst.Call)
                    tiles[node.targets[0].target.value] = node.value
        if not tiles:
            return
        reads: dict[str, int] = {}
        arithmetic: dict[str, int] = {}
        for node in own_nodes(scope):
            if isinstance(node, cst.Name) and node.value in tiles:
                reads[node.value] = reads.get(node.value, 0) + 1
            if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, node_types(*_ARITHMETIC)):
                for operand in (node.left, node.right):
                    if isinstance(operand, cst.Name) and operand.value in tiles:
                        arithmetic[operand.value] = arithmetic.get(operand.value, 0) + 1
        for name, call in tiles.items():
            used = arithmetic.get(name, 0)
            if bindings.get(name) == 1 and used and reads.get(name, 0) == used + 1:
                self.report(call, f"{name} = tf.tile(...) is read only in element-wise arithmetic, which broadcasts without the copy")


_TF = "import tensorflow as tf\n\n"

TileInsteadOfBroadcast.VALID = (
    Example(_TF + "def add_bias(x, bias):\n    return x + bias[tf.newaxis, :]\n"),
    # The tiled tensor is a model input, not an operand: the copy is the point.
    Example(_TF + "def repeat(x):\n    tiled = tf.tile(x, [4, 1])\n    return model(tiled)\n"),
    Example(_TF + "def pair(a, b):\n    rows = tf.tile(a, [1, 3])\n    out = rows * b\n    return out, rows\n"),
    Example("import numpy as np\n\ndef grid(x, y):\n    return np.tile(x, (3, 1)) + y\n"),
    Example(_TF + "def attend(q, k):\n    keys = tf.tile(k, [1, 2, 1])\n    return tf.matmul(q, keys, transpose_b=True)\n"),
)
TileInsteadOfBroadcast.INVALID = (
    Example(_TF + "def add_bias(x, bias):\n    return x + tf.tile(bias[tf.newaxis, :], [tf.shape(x)[0], 1])\n", lines=(4,)),
    Example(
        _TF + "def scale(features, weights):\n    expanded = tf.tile(weights, [batch, 1])\n"
        "    return features * expanded\n",
        lines=(4,),
    ),
    Example("from tensorflow import tile\n\nresult = tile(mask, [8, 1]) - offsets\n", lines=(3,)),
)


# -- AIML515 tensor-concat-in-loop ----------------------------------------------------


class TensorConcatInLoop(FileRule):
    """Flag a tensor grown with ``tf.concat`` in a loop inside a ``tf.function``."""

    code = "AIML515"
    slug = "tensor-concat-in-loop"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("TensorArray Not Used",)
    message = "a tensor is grown with tf.concat in a loop inside a tf.function"
    impact = (
        "Each iteration copies everything gathered so far, so the loop costs quadratic time and memory. "
        "Inside tf.function the tensor's shape also changes on every iteration, which AutoGraph either "
        "rejects (shape invariants) or handles by retracing and losing the shape information."
    )
    fix = (
        "Collect the values in a tf.TensorArray (ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True); "
        "ta = ta.write(i, value)) and call ta.stack() after the loop, or build the tensor with a vectorised "
        "operation such as tf.map_fn."
    )
    prefilter = ("concat(",)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._graph_functions = 0
        self._loops = 0

    def _is_tf_function(self, node: cst.FunctionDef) -> bool:
        for decorator in node.decorators:
            target = decorator.decorator
            if isinstance(target, cst.Call):
                target = target.func
            if self.context.qualified_name(target) in _TF_FUNCTION:
                return True
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self._is_tf_function(node):
            self._graph_functions += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        if self._is_tf_function(original_node):
            self._graph_functions -= 1

    def visit_For(self, node: cst.For) -> None:
        self._loops += 1

    def leave_For(self, original_node: cst.For) -> None:
        self._loops -= 1

    def visit_While(self, node: cst.While) -> None:
        self._loops += 1

    def leave_While(self, original_node: cst.While) -> None:
        self._loops -= 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if not self._graph_functions or not self._loops:
            return
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        value = node.value
        if not isinstance(value, cst.Call) or self.context.qualified_name(value.func) not in _CONCAT or not value.args:
            return
        parts = value.args[0].value
        name = node.targets[0].target.value
        if isinstance(parts, (cst.List, cst.Tuple)) and any(
            isinstance(element.value, cst.Name) and element.value.value == name for element in parts.elements
        ):
            self.report(value, f"{name} = tf.concat([{name}, ...]) copies the whole tensor on every iteration")


TensorConcatInLoop.VALID = (
    Example(
        _TF + "@tf.function\ndef collect(xs):\n    ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True)\n"
        "    for i in tf.range(10):\n        ta = ta.write(i, xs[i])\n    return ta.stack()\n"
    ),
    # Eager code outside tf.function: a plain Python loop over a few parts.
    Example(_TF + "def merge(parts):\n    out = parts[0]\n    for part in parts[1:]:\n        out = tf.concat([out, part], 0)\n    return out\n"),
    Example(_TF + "@tf.function\ndef join(a, b):\n    return tf.concat([a, b], axis=0)\n"),
    Example(
        "import numpy as np\nimport tensorflow as tf\n\n@tf.function\ndef grow(x):\n    out = x\n"
        "    for _ in range(3):\n        out = np.concatenate([out, x])\n    return out\n"
    ),
)
TensorConcatInLoop.INVALID = (
    Example(
        _TF + "@tf.function\ndef decode(state, steps):\n    out = tf.zeros([0, 4])\n    for i in tf.range(steps):\n"
        "        out = tf.concat([out, step(state)], axis=0)\n    return out\n",
        lines=(7,),
    ),
    Example(
        "import tensorflow\n\n@tensorflow.function(reduce_retracing=True)\ndef gather(x):\n    acc = x[:1]\n"
        "    i = 1\n    while i < 8:\n        acc = tensorflow.concat((acc, x[i:i + 1]), 0)\n        i += 1\n    return acc\n",
        lines=(8,),
    ),
)

RULES = (TileInsteadOfBroadcast, TensorConcatInLoop)
