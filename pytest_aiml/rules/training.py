"""Training rules: correctness and performance smells of PyTorch, TensorFlow and Keras training code.

Most checks look at one loop or one function at a time. For example, a loop that calls
``backward()`` and ``optimizer.step()`` must also clear the gradients, and a model put in
eval mode must not be trained before ``.train()`` switches it back. Types are not
known statically, so each rule matches the call forms that are unambiguous and stays
silent where a value could be something else.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pytest_aiml.engine.ast_facts import AstFacts, keyword_constant
from pytest_aiml.engine.ast_facts import callee_name as ast_callee_name
from pytest_aiml.engine.ast_facts import own_nodes as ast_own_nodes
from pytest_aiml.engine.context import (
    ModuleContext,
    call_argument,
    dotted_name,
    has_star_kwargs,
    is_false,
    is_true,
    keyword_value,
)
from pytest_aiml.engine.libcst_import import cst, node_types
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import children
from pytest_aiml.fixes.codemods import TensorConstructorFixer, ZeroGradSetToNoneFixer
from pytest_aiml.rules.flow import all_parameters, callee_name

#: libcst node types by name, for ``node_types``, because the rules import libcst on first use.
_SCOPES = ("FunctionDef", "ClassDef", "Lambda")
_LOOPS = ("For", "While")
#: Packages whose import marks a PyTorch module file.
_TORCH_PACKAGES = ("torch", "lightning", "pytorch_lightning", "transformers", "timm", "torchvision", "accelerate")
_KERAS_PACKAGES = ("keras", "tensorflow", "tf_keras")


def walk(node: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, bool]]:
    """Yield every node below ``node`` in source order, with whether it sits in a nested def, class or lambda."""
    stack: list[tuple[cst.CSTNode, bool]] = [(child, False) for child in reversed(children(node, whitespace=False))]
    while stack:
        current, nested = stack.pop()
        yield current, nested
        inner = nested or isinstance(current, node_types(*_SCOPES))
        stack.extend((child, inner) for child in reversed(children(current, whitespace=False)))


def own_nodes(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Yield the nodes below ``node`` that run in its own scope, leaving out nested defs, classes and lambdas."""
    stack = list(reversed(children(node, whitespace=False)))
    while stack:
        current = stack.pop()
        yield current
        if not isinstance(current, node_types(*_SCOPES)):
            stack.extend(reversed(children(current, whitespace=False)))


def method_name(call: cst.Call) -> str | None:
    """Return ``step`` for ``optimizer.step()``; None when the callee is not an attribute."""
    return call.func.attr.value if isinstance(call.func, cst.Attribute) else None


def receiver(call: cst.Call) -> cst.BaseExpression | None:
    return call.func.value if isinstance(call.func, cst.Attribute) else None


def base_name(expr: cst.BaseExpression | None) -> str | None:
    """Return the last identifier of a name, attribute chain or subscript: ``opt`` for ``self.opts[0]``."""
    while isinstance(expr, cst.Subscript):
        expr = expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Name):
        return expr.value
    return None


def positional_args(call: cst.Call) -> list[cst.Arg]:
    args = []
    for arg in call.args:
        if arg.keyword is not None or arg.star:
            break
        args.append(arg)
    return args


def code_of(node: cst.CSTNode) -> str:
    """Render a node as source, shortened for a message."""
    text = cst.Module(body=()).code_for_node(node).strip()
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= 60 else text[:57] + "..."


class CallFlaggingRule(FileRule):
    """A rule that decides on a whole loop or function and reports calls inside it when the traversal reaches them.

    Reporting a call when it is visited, rather than from the enclosing loop, anchors
    the finding to the statement that contains the call, which is where an inline waiver
    is written.
    """

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._flagged: dict[int, str] = {}

    def flag(self, call: cst.Call, message: str) -> None:
        self._flagged.setdefault(id(call), message)

    def visit_Call(self, node: cst.Call) -> None:
        message = self._flagged.pop(id(node), None)
        if message is not None:
            self.report(node, message)


# -- AIML501 gradients-not-cleared ---------------------------------------------------

#: Names of calls that clear gradients: ``zero_grad``, ``clear_grad`` (Paddle),
#: ``cleargrads`` (Chainer), and helpers such as ``reset_grad`` or ``zero_grad_all``.
_CLEARING_NAME = re.compile(r"(zero|clear|reset)_?grad", re.IGNORECASE)
#: Receivers of ``.step()`` that are optimizers: ``optimizer``, ``self.optim``, ``opt_d``, ``optG``, ``d_opt``.
OPTIMIZER_NAME = re.compile(r"optim|^opt(_|\d|$|[A-Z])|_opt(_|\d|$)", re.IGNORECASE)
_BACKWARD_NAMES = frozenset({"backward", "manual_backward"})


def is_optimizer_step(call: cst.Call) -> bool:
    """Tell whether a call is ``optimizer.step()`` or AMP's ``scaler.step(optimizer)``."""
    if method_name(call) != "step":
        return False
    name = base_name(receiver(call))
    if name is None:
        return False
    if OPTIMIZER_NAME.search(name):
        return True
    if "scaler" in name.lower():
        first = positional_args(call)
        return bool(first) and bool(OPTIMIZER_NAME.search(base_name(first[0].value) or ""))
    return False


def clears_gradients(node: cst.CSTNode) -> bool:
    """Tell whether a node clears gradients or names a clearing function (``optimizer.zero_grad``, ``p.grad = None``)."""
    if isinstance(node, cst.Attribute):
        if _CLEARING_NAME.search(node.attr.value):
            return True
        # ``p.grad.zero_()`` and ``p.grad.data.zero_()``
        return node.attr.value == "zero_" and "grad" in (dotted_name(node.value) or "").split(".")
    if isinstance(node, cst.Name):
        return bool(_CLEARING_NAME.search(node.value))
    if isinstance(node, cst.Assign):
        return any(
            isinstance(target.target, cst.Attribute) and target.target.attr.value == "grad" for target in node.targets
        )
    if isinstance(node, cst.Del):
        return isinstance(node.target, cst.Attribute) and node.target.attr.value == "grad"
    return False


class GradientsNotCleared(CallFlaggingRule):
    """Flag a loop that back-propagates and steps an optimizer without ever clearing the gradients."""

    code = "AIML501"
    slug = "gradients-not-cleared"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    smells = ("Gradients Not Cleared before Backward Propagation",)
    message = "backward() and optimizer.step() run in a loop that never clears the gradients"
    impact = (
        "PyTorch adds each backward() pass into the .grad of every parameter. Without zero_grad() the "
        "gradients of all earlier iterations are summed into every step, so the updates grow and training "
        "diverges or converges to the wrong weights, without any error."
    )
    fix = (
        "Call optimizer.zero_grad() (or model.zero_grad()) in the loop, before loss.backward() or right after "
        "optimizer.step(). For gradient accumulation, clear them under the same condition that steps."
    )
    prefilter = ("backward",)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "backward(" in text and "step(" in text

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Training frameworks define ``backward`` and ``optimizer_step`` hooks without a loop that calls both.
        return facts.loops_calling(_BACKWARD_NAMES, frozenset({"step"}))

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._check_loop(node)

    def _check_loop(self, loop: cst.For | cst.While) -> None:
        backward: cst.Call | None = None
        step: cst.Call | None = None
        for node, nested in walk(loop.body):
            # A clearing call anywhere in the loop counts, even in a closure it defines.
            if clears_gradients(node):
                return
            if nested or not isinstance(node, cst.Call):
                continue
            if backward is None and method_name(node) in _BACKWARD_NAMES:
                if self.context.qualified_name(node.func) == "torch.distributed.autograd.backward":
                    # Each distributed autograd context keeps its own gradients, so there is nothing to clear.
                    continue
                backward = node
            elif step is None and is_optimizer_step(node):
                step = node
        if backward is not None and step is not None:
            self.flag(
                backward,
                f"{code_of(backward.func)}() and {code_of(step.func)}() run in this loop, but no zero_grad() "
                "clears the gradients, so every step adds up the gradients of all earlier iterations",
            )


GradientsNotCleared.VALID = (
    Example(
        "import torch\n\ndef train(model, loader, optimizer):\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "        loss.backward()\n        optimizer.step()\n"
    ),
    Example(
        "def train(model, loader, optimizer, accumulation_steps):\n"
        "    for i, (x, y) in enumerate(loader):\n        loss = model(x, y) / accumulation_steps\n"
        "        loss.backward()\n        if (i + 1) % accumulation_steps == 0:\n"
        "            optimizer.step()\n            optimizer.zero_grad(set_to_none=True)\n"
    ),
    Example(
        "def train(model, batches, optimizer):\n    for epoch in range(10):\n        for x, y in batches:\n"
        "            model.zero_grad()\n            model(x, y).backward()\n            optimizer.step()\n"
    ),
    Example(
        "# micro-batches accumulate, the outer loop steps and clears\n"
        "def train(model, optimizer, scaler, steps, micro):\n    for step in range(steps):\n"
        "        for x, y in micro:\n            scaler.scale(model(x, y)).backward()\n"
        "        scaler.step(optimizer)\n        scaler.update()\n        optimizer.zero_grad(set_to_none=True)\n"
    ),
    Example(
        "def train(params, optimizer, loader):\n    for x in loader:\n        for p in params:\n"
        "            p.grad = None\n        loss(x).backward()\n        optimizer.step()\n"
    ),
    Example(
        "# a learning-rate scheduler is not an optimizer; the optimizer steps in a helper\n"
        "def train(model, loader, scheduler):\n    for x in loader:\n        model(x).backward()\n"
        "        scheduler.step()\n"
    ),
    Example(
        "# DeepSpeed's engine clears the gradients in its own step()\n"
        "def train(model_engine, loader):\n    for batch in loader:\n        loss = model_engine(batch)\n"
        "        model_engine.backward(loss)\n        model_engine.step()\n"
    ),
    Example(
        "def train(self, loader):\n    for batch in loader:\n        self.reset_grad()\n"
        "        self.d_loss(batch).backward()\n        self.d_optimizer.step()\n"
    ),
    Example(
        "def fit(model, optimizer, x, y):\n    for i in range(100):\n        def closure():\n"
        "            optimizer.zero_grad()\n            loss = ((model(x) - y) ** 2).mean()\n"
        "            loss.backward()\n            return loss\n        optimizer.step(closure)\n"
    ),
    Example(
        "def train(model, opt, loader):\n    for x in loader:\n        model(x).backward()\n        opt.step()\n"
        "        for p in model.parameters():\n            p.grad.data.zero_()\n"
    ),
    Example(
        "import torch.distributed.autograd as dist_autograd\n\ndef train(model, loader, opt):\n"
        "    for x, y in loader:\n        with dist_autograd.context() as context_id:\n"
        "            loss = model(x, y)\n            dist_autograd.backward(context_id, [loss])\n"
        "            opt.step(context_id)\n"
    ),
)
GradientsNotCleared.INVALID = (
    Example(
        "import torch\n\ndef train(model, loader, optimizer):\n    for x, y in loader:\n"
        "        loss = torch.nn.functional.mse_loss(model(x), y)\n        loss.backward()\n"
        "        optimizer.step()\n",
        lines=(6,),
    ),
    Example(
        "optimizer.zero_grad()\nfor epoch in range(100):\n    loss = criterion(net(inputs), targets)\n"
        "    loss.backward()\n    optimizer.step()\n",
        lines=(4,),
    ),
    Example(
        "# clearing once per epoch still sums the gradients of every batch in it\n"
        "def train(model, loader, opt_g):\n    for epoch in range(5):\n        opt_g.zero_grad()\n"
        "        for x in loader:\n            model(x).backward()\n            opt_g.step()\n",
        lines=(6,),
    ),
    Example(
        "def train(model, loader, optimizer, scaler):\n    while True:\n        x = next(loader)\n"
        "        scaler.scale(model(x)).backward()\n        scaler.step(optimizer)\n        scaler.update()\n",
        lines=(4,),
    ),
    Example(
        "class Trainer:\n    def run(self, loader):\n        for batch in loader:\n"
        "            self.manual_backward(self.loss(batch))\n            self.optimizers[0].step()\n",
        lines=(4,),
    ),
)


# -- AIML502 eval-mode-not-restored --------------------------------------------------

#: Name parts of models that are usually kept in eval mode on purpose while another model
#: trains: a distillation teacher, a target or EMA network, a frozen backbone, a perceptual-loss net.
_FROZEN_MODEL_WORDS = frozenset(
    {
        "teacher", "target", "ema", "frozen", "ref", "reference", "pretrained", "fixed", "old", "momentum",
        "swa", "average", "averaged", "shadow", "backbone", "extractor", "vgg", "lpips", "inception", "clip",
        "perceptual", "tokenizer",
    }
)
#: Methods that take a forward pass's output out of the autograd graph.
_DETACHING_METHODS = frozenset({"detach", "item", "tolist", "numpy"})
_NO_GRAD_CONTEXTS = frozenset(
    {
        "torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad",
        "torch.autograd.inference_mode", "torch.set_grad_enabled", "torch.autograd.set_grad_enabled",
    }
)


def is_frozen_name(dotted: str) -> bool:
    words = re.findall(r"[a-z]+", dotted.rsplit(".", 1)[-1].lower())
    return any(word in _FROZEN_MODEL_WORDS for word in words)


def is_train_switch(call: cst.Call) -> bool:
    """Tell whether a call may put a model back in training mode.

    Besides ``model.train()``, any called name that contains ``train`` counts
    (``train_one_epoch(model)``, ``set_train_mode``): such a helper usually switches the
    mode itself, and a rule that must be conservative takes it at its name.
    """
    name = callee_name(call)
    if name is None:
        return False
    if name == "train":
        first = positional_args(call)
        return not (first and is_false(first[0].value)) and not is_false(keyword_value(call, "mode"))
    return "train" in name.lower()


def eval_switch(call: cst.Call) -> str | None:
    """Return ``model`` for ``model.eval()`` and ``model.train(False)``; None for any other call."""
    name = method_name(call)
    if name == "eval" and not call.args:
        target = dotted_name(call.func.value)  # type: ignore[attr-defined]
    elif name == "train" and (
        (positional_args(call) and is_false(positional_args(call)[0].value)) or is_false(keyword_value(call, "mode"))
    ):
        target = dotted_name(call.func.value)  # type: ignore[attr-defined]
    else:
        return None
    if target is None or is_frozen_name(target):
        return None
    return target


def is_ast_eval_switch(call: ast.Call) -> bool:
    """Tell whether an ``ast`` call has the form :func:`eval_switch` accepts, whatever model it names."""
    if not isinstance(call.func, ast.Attribute):
        return False
    if call.func.attr == "eval":
        return not call.args and not call.keywords
    if call.func.attr != "train":
        return False
    first = call.args[0] if call.args else None
    return (isinstance(first, ast.Constant) and first.value is False) or keyword_constant(call, "mode") is False


def ast_own_calls(scope: ast.AST) -> Iterator[ast.Call]:
    """Yield the calls that run in the scope of a module or function, as :func:`own_nodes` walks it.

    Nested functions, classes and lambdas are left out. A function's decorators and
    defaults are included, which only adds calls.
    """
    return (node for node in ast_own_nodes(ast.iter_child_nodes(scope)) if isinstance(node, ast.Call))


@dataclass(slots=True)
class _ScopeEvent:
    """A call of interest in a function body, in source order, with the blocks that enclose it."""

    kind: str  # "eval", "train", "backward", "forward", "helper"
    call: cst.Call
    blocks: tuple[int, ...]
    loops: tuple[int, ...]
    #: The model the call switches or runs (``model``, ``self.net``); for a helper, the model it leaves in eval mode.
    target: str | None = None
    no_grad: bool = False


@dataclass(slots=True)
class _HelperSummary:
    """The effect of a function of the same file on the mode of the models passed to it."""

    #: Models it switches to eval mode, as written in its body.
    evaluates: list[str] = field(default_factory=list)
    switches_back: bool = False
    parameters: list[str] = field(default_factory=list)


class EvalModeNotRestored(CallFlaggingRule):
    """Flag a model switched to eval mode and then trained without ``.train()`` in between."""

    code = "AIML502"
    slug = "eval-mode-not-restored"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    smells = ("Training / Evaluation Mode Improper Toggling",)
    message = "a model switched to eval mode is trained without switching it back with .train()"
    impact = (
        "In eval mode dropout is off and batch normalisation uses its running statistics instead of the "
        "batch's. A model trained in eval mode learns without regularisation and with frozen normalisation, "
        "and every epoch after the first validation silently trains that way."
    )
    fix = (
        "Call model.train() at the top of each training epoch (or right after validation), so that the "
        "mode is right whatever ran before; keep model.eval() inside the evaluation code."
    )
    prefilter = (".eval()", "train(False)", "mode=False")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and "backward" in text

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report flags an eval switch, or a call of a same-file function that makes one,
        # in a scope (the module or one function, nested definitions left out) that also calls
        # ``.backward()``. A script whose train() back-propagates and whose test() calls
        # model.eval() has no such scope.
        if facts.callee_names.isdisjoint(_BACKWARD_NAMES):
            return False
        scopes = [facts.tree, *facts.nodes(ast.FunctionDef, ast.AsyncFunctionDef)]
        own_calls = {id(scope): list(ast_own_calls(scope)) for scope in scopes}
        switching = {
            scope.name for scope in scopes
            if not isinstance(scope, ast.Module) and any(is_ast_eval_switch(call) for call in own_calls[id(scope)])
        }
        for calls in own_calls.values():
            back_propagates = any(
                isinstance(call.func, ast.Attribute) and call.func.attr in _BACKWARD_NAMES for call in calls
            )
            if back_propagates and any(
                is_ast_eval_switch(call) or ast_callee_name(call.func) in switching for call in calls
            ):
                return True
        return False

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._class_methods: list[dict[str, cst.FunctionDef]] = []
        self._summaries: dict[int, _HelperSummary] = {}

    def visit_Module(self, node: cst.Module) -> None:
        self._check_scope(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        methods = {}
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                methods[statement.name.value] = statement
        self._class_methods.append(methods)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_methods.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._check_scope(node)

    # -- gathering ---------------------------------------------------------------------

    def _events(self, scope: cst.Module | cst.FunctionDef) -> tuple[list[_ScopeEvent], bool]:
        """Return the calls of interest in a scope, and whether the scope freezes parameters."""
        events: list[_ScopeEvent] = []
        freezes = False
        #: Forward calls whose output is detached at once: a frozen network's, not a trained one's.
        detached: set[int] = set()

        def visit(node: cst.CSTNode, blocks: tuple[int, ...], loops: tuple[int, ...], no_grad: bool) -> None:
            nonlocal freezes
            if isinstance(node, node_types(*_SCOPES)):
                return
            if isinstance(node, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                blocks = (*blocks, id(node))
            if isinstance(node, node_types(*_LOOPS)):
                loops = (*loops, id(node))
            if isinstance(node, cst.With) and any(self._disables_grad(item.item) for item in node.items):
                no_grad = True
            if isinstance(node, cst.Attribute) and node.attr.value in _DETACHING_METHODS:
                detached.add(id(node.value))
            if isinstance(node, cst.Assign) and is_false(node.value):
                if any(isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad" for t in node.targets):
                    freezes = True
            for child in children(node, whitespace=False):
                visit(child, blocks, loops, no_grad)
            if isinstance(node, cst.Call):
                # After the children: ``net(x)`` runs before the ``.backward()`` called on its result.
                self._classify(node, blocks, loops, no_grad or id(node) in detached, events)
                if method_name(node) == "requires_grad_" and any(is_false(arg.value) for arg in node.args):
                    freezes = True

        body = scope.body if isinstance(scope, cst.Module) else children(scope.body, whitespace=False)
        for child in body:
            visit(child, (id(scope),), (), False)
        return events, freezes

    def _disables_grad(self, expr: cst.BaseExpression) -> bool:
        if not isinstance(expr, cst.Call):
            return False
        name = self.context.qualified_name(expr.func)
        if name in _NO_GRAD_CONTEXTS:
            if name.endswith("set_grad_enabled"):
                first = positional_args(expr)
                return bool(first) and is_false(first[0].value)
            return True
        return callee_name(expr) in ("no_grad", "inference_mode")

    def _classify(
        self, call: cst.Call, blocks: tuple[int, ...], loops: tuple[int, ...], no_grad: bool, events: list[_ScopeEvent]
    ) -> None:
        evaluated = eval_switch(call)
        if evaluated is not None:
            events.append(_ScopeEvent("eval", call, blocks, loops, evaluated))
        elif is_train_switch(call):
            events.append(_ScopeEvent("train", call, blocks, loops))
        elif method_name(call) in _BACKWARD_NAMES:
            events.append(_ScopeEvent("backward", call, blocks, loops))
        elif method_name(call) == "forward":
            events.append(_ScopeEvent("forward", call, blocks, loops, dotted_name(receiver(call)), no_grad))
        else:
            called = dotted_name(call.func)
            if called is not None:
                events.append(_ScopeEvent("forward", call, blocks, loops, called, no_grad))
            for model in self._helper_leaves_eval(call):
                events.append(_ScopeEvent("helper", call, blocks, loops, model))

    def _helper_leaves_eval(self, call: cst.Call) -> list[str]:
        """Return the models, as the caller names them, that a same-file helper leaves in eval mode."""
        func = call.func
        definition: cst.FunctionDef | None = None
        if isinstance(func, cst.Name) and func.value not in self.context.imports:
            definition = self.context.functions.get(func.value)
        elif (
            isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self"
            and self._class_methods
        ):
            definition = self._class_methods[-1].get(func.attr.value)
        if definition is None:
            return []

        summary = self._summary(definition)
        if summary.switches_back:
            return []

        # Map each model the helper evaluates to the caller's name for it: a parameter
        # becomes the argument passed for it, ``self.model`` stays as written.
        models = []
        arguments = positional_args(call)
        offset = 1 if isinstance(func, cst.Attribute) else 0
        for evaluated in summary.evaluates:
            head, _, rest = evaluated.partition(".")
            if head in summary.parameters and head != "self":
                index = summary.parameters.index(head) - offset
                argument = None
                if 0 <= index < len(arguments):
                    argument = arguments[index].value
                else:
                    keyword = call_argument(call, None, head)
                    argument = keyword.value if keyword is not None else None
                passed = dotted_name(argument) if argument is not None else None
                if passed is not None:
                    models.append(f"{passed}.{rest}" if rest else passed)
            else:
                models.append(evaluated)
        return models

    def _summary(self, definition: cst.FunctionDef) -> _HelperSummary:
        cached = self._summaries.get(id(definition))
        if cached is not None:
            return cached
        summary = _HelperSummary(parameters=[param.name.value for param in all_parameters(definition)])
        for node in own_nodes(definition.body):
            if isinstance(node, cst.Call):
                evaluated = eval_switch(node)
                if evaluated is not None:
                    summary.evaluates.append(evaluated)
                elif is_train_switch(node):
                    summary.switches_back = True
        self._summaries[id(definition)] = summary
        return summary

    # -- deciding ----------------------------------------------------------------------

    def _check_scope(self, scope: cst.Module | cst.FunctionDef) -> None:
        events, freezes = self._events(scope)
        if freezes or not any(event.kind == "backward" for event in events):
            return
        self._check_straight_line(events)
        self._check_loops(events)

    def _check_straight_line(self, events: list[_ScopeEvent]) -> None:
        # ``model.eval()`` followed, in the same or an enclosed block, by a forward pass of
        # that model with gradients and a backward() call, with no switch back in between.
        for index, event in enumerate(events):
            if event.kind != "eval":
                continue
            trained_forward = None
            for later in events[index + 1 :]:
                if later.kind == "train":
                    break
                if later.kind == "forward" and later.target == event.target and not later.no_grad:
                    trained_forward = later
                elif later.kind == "backward" and trained_forward is not None:
                    if later.blocks[: len(event.blocks)] == event.blocks:
                        self.flag(
                            event.call,
                            f"{code_of(event.call)} puts the model in eval mode and it is then trained "
                            f"({code_of(later.call)}) without {event.target}.train() in between",
                        )
                    break

    def _check_loops(self, events: list[_ScopeEvent]) -> None:
        # A loop that trains and switches to eval mode, with nothing in the loop switching
        # back: from the second iteration on the model trains in eval mode.
        loops = {loop for event in events for loop in event.loops}
        for loop in loops:
            inside = [event for event in events if loop in event.loops]
            if any(event.kind == "train" for event in inside):
                continue
            if not any(event.kind == "backward" for event in inside):
                continue
            trained = {event.target for event in inside if event.kind == "forward" and not event.no_grad}
            for event in inside:
                if event.kind not in ("eval", "helper") or event.target not in trained:
                    continue
                if event.kind == "eval":
                    cause = f"{code_of(event.call)} runs"
                else:
                    cause = f"{code_of(event.call.func)}() switches {event.target} to eval mode"
                self.flag(
                    event.call,
                    f"{cause} in a loop that trains {event.target}, and nothing in the loop calls "
                    f"{event.target}.train(), so the next iteration trains in eval mode",
                )


_EVALUATE = (
    "import torch\n\ndef evaluate(model, loader):\n    model.eval()\n    with torch.no_grad():\n"
    "        return sum(float((model(x).argmax(1) == y).sum()) for x, y in loader)\n\n"
)

EvalModeNotRestored.VALID = (
    Example(
        _EVALUATE + "def fit(model, loader, optimizer, epochs):\n    for epoch in range(epochs):\n"
        "        model.train()\n        for x, y in loader:\n            optimizer.zero_grad()\n"
        "            torch.nn.functional.cross_entropy(model(x), y).backward()\n            optimizer.step()\n"
        "        evaluate(model, loader)\n"
    ),
    Example(
        "import torch\n\ndef fit(model, loader, val, optimizer):\n    for epoch in range(3):\n"
        "        model.train()\n        for x, y in loader:\n            loss = model(x, y)\n"
        "            loss.backward()\n            optimizer.step()\n            optimizer.zero_grad()\n"
        "        model.eval()\n        with torch.no_grad():\n            print(model(val))\n"
    ),
    Example(
        "import torch\n\ndef distill(student, teacher, loader, optimizer):\n    teacher.eval()\n"
        "    for x in loader:\n        with torch.no_grad():\n            soft = teacher(x)\n"
        "        loss = kl(student(x), soft)\n        optimizer.zero_grad()\n        loss.backward()\n"
        "        optimizer.step()\n"
    ),
    Example(
        "# the model evaluated is not the one trained\n"
        "import torch\n\ndef train(policy, critic, batches, optimizer):\n    for batch in batches:\n"
        "        critic.eval()\n        value = critic(batch).detach()\n        loss = policy(batch, value)\n"
        "        optimizer.zero_grad()\n        loss.backward()\n        optimizer.step()\n"
    ),
    Example(
        "# a frozen backbone: its parameters do not train\n"
        "def train(model, head, loader, optimizer):\n    model.eval()\n    model.requires_grad_(False)\n"
        "    for x, y in loader:\n        loss = head(model(x), y)\n        optimizer.zero_grad()\n"
        "        loss.backward()\n        optimizer.step()\n"
    ),
    Example(
        "import torch\n\ndef main(args, model, loader, optimizer):\n    if args.evaluate:\n"
        "        model.eval()\n        print(model(args.sample))\n        return\n"
        "    for x in loader:\n        optimizer.zero_grad()\n        model(x).backward()\n        optimizer.step()\n"
    ),
    Example(
        "# a helper whose name says it switches the mode counts as the switch back\n"
        "def fit(model, loader, val_x, optimizer):\n    for epoch in range(3):\n        model.eval()\n"
        "        print(model(val_x))\n        set_train_mode(model)\n        for x in loader:\n"
        "            optimizer.zero_grad()\n            model(x).backward()\n            optimizer.step()\n"
    ),
    Example(
        "# the tensorflow 1 tensor method, not a module's mode\n"
        "import tensorflow as tf\nfor step in range(10):\n    value = accuracy.eval()\n"
    ),
    Example(
        "class Trainer:\n    def validate(self):\n        self.model.eval()\n        out = self.model(self.val)\n"
        "        self.model.train()\n        return out\n\n    def fit(self):\n        for batch in self.loader:\n"
        "            self.model(batch).backward()\n            self.opt.step()\n            self.opt.zero_grad()\n"
        "            self.validate()\n"
    ),
    Example(
        "# batch norm layers frozen on purpose, each switched on its own\n"
        "def train(model, loader, optimizer):\n    model.train()\n    for m in model.modules():\n"
        "        if isinstance(m, BatchNorm2d):\n            m.eval()\n    for x in loader:\n"
        "        model(x).backward()\n        optimizer.step()\n        optimizer.zero_grad()\n"
    ),
)
EvalModeNotRestored.INVALID = (
    Example(
        "import torch\n\ndef fit(model, loader, val, optimizer):\n    model.train()\n    for epoch in range(3):\n"
        "        for x, y in loader:\n            loss = model(x, y)\n            optimizer.zero_grad()\n"
        "            loss.backward()\n            optimizer.step()\n        model.eval()\n"
        "        with torch.no_grad():\n            print(model(val))\n",
        lines=(11,),
    ),
    Example(
        _EVALUATE + "def fit(model, loader, optimizer, epochs):\n    model.train()\n    for epoch in range(epochs):\n"
        "        for x, y in loader:\n            optimizer.zero_grad()\n"
        "            torch.nn.functional.cross_entropy(model(x), y).backward()\n            optimizer.step()\n"
        "        evaluate(model, loader)\n",
        lines=(15,),
    ),
    Example(
        "def finetune(net, loader, optimizer):\n    net.eval()\n    for x, y in loader:\n"
        "        optimizer.zero_grad()\n        loss = criterion(net(x), y)\n        loss.backward()\n"
        "        optimizer.step()\n",
        lines=(2,),
    ),
    Example(
        "import torch\n\nclass Trainer:\n    def validate(self):\n        self.model.eval()\n"
        "        with torch.no_grad():\n            return self.model(self.val)\n\n    def fit(self):\n"
        "        for epoch in range(10):\n            for batch in self.loader:\n"
        "                self.model(batch).backward()\n                self.opt.step()\n"
        "                self.opt.zero_grad()\n            self.validate()\n",
        lines=(15,),
    ),
    Example(
        "import torch\n\nmodel.train()\nfor epoch in range(3):\n    for x in loader:\n"
        "        optimizer.zero_grad()\n        model(x).backward()\n        optimizer.step()\n"
        "    model.train(False)\n    with torch.inference_mode():\n        print(model(val))\n",
        lines=(9,),
    ),
)


# -- AIML503 forward-called-directly -------------------------------------------------


class ForwardCalledDirectly(FileRule):
    """Flag ``module.forward(x)`` where the module itself should be called."""

    code = "AIML503"
    slug = "forward-called-directly"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Pytorch Call Method Misused",)
    message = "a module's forward() is called directly instead of calling the module"
    impact = (
        "Calling module.forward(x) skips nn.Module.__call__, so forward and backward hooks never run: "
        "hook-based tools (activation checkpointing, quantization observers, pruning, profilers, "
        "FSDP and DDP bookkeeping) silently stop working for that module."
    )
    fix = "Call the module itself, model(x) or self.encoder(x), which runs forward() together with the registered hooks."
    prefilter = (".forward(",)
    #: Tests call forward() directly to check a model's output without its wrappers.
    applies_to_tests = False

    def visit_Call(self, node: cst.Call) -> None:
        if method_name(node) != "forward" or not self.context.imports_any(*_TORCH_PACKAGES):
            return
        target = receiver(node)
        written = dotted_name(target)
        if written is None:
            # ``super().forward(x)``, ``self.layers[i].forward(x)`` and other computed
            # receivers: only plain names and attribute chains are known to be modules.
            return
        parts = written.split(".")
        if len(parts) == 1 and parts[0] in ("self", "cls", "ctx"):
            return
        if parts[0] in self.context.imports or parts[0] in self.context.classes or parts[-1][:1].isupper():
            # ``nn.Linear.forward(self, x)`` or ``Parent.forward(self, x)``: an unbound call
            # of a class's forward, the way a subclass extends it.
            return
        first = positional_args(node)
        if first and isinstance(first[0].value, cst.Name) and first[0].value.value == "self":
            return
        if "remote" in parts[-1].lower() or "rref" in parts[-1].lower():
            # torch.distributed.nn.RemoteModule: forward() is its documented RPC entry point, and it has no hooks.
            return
        self.report(node, f"{written}.forward(...) bypasses the hooks of {written}; call {written}(...) instead")


ForwardCalledDirectly.VALID = (
    Example("import torch\n\ndef predict(model, x):\n    return model(x)\n"),
    Example(
        "import torch.nn as nn\n\nclass Block(nn.Linear):\n    def forward(self, x):\n"
        "        return super().forward(x).relu()\n"
    ),
    Example(
        "import torch.nn as nn\n\nclass Block(Base):\n    def forward(self, x):\n"
        "        return Base.forward(self, x) + nn.Linear.forward(self, x)\n"
    ),
    Example(
        "import torch\n\nclass Scale(torch.autograd.Function):\n    @staticmethod\n"
        "    def backward(ctx, grad):\n        return grad\n\ny = Scale.forward(None, x)\n"
    ),
    Example("# no torch import: an HMM's forward algorithm\nimport numpy as np\nalpha = hmm.forward(observations)\n"),
    Example("import torch\n\nclass Net(torch.nn.Module):\n    def predict(self, x):\n        return self.forward(x)\n"),
    Example("import torch\n\ndef run(model, x):\n    return model(x)\n\nforward = run\nforward(None, 1)\n"),
    Example(
        "import torch\n\nclass Hybrid(torch.nn.Module):\n    def forward(self, indices):\n"
        "        return self.fc(self.remote_emb_module.forward(indices))\n"
    ),
)
ForwardCalledDirectly.INVALID = (
    Example("import torch\n\ndef predict(model, x):\n    return model.forward(x)\n", lines=(4,)),
    Example(
        "import torch.nn as nn\n\nclass Wrapper(nn.Module):\n    def forward(self, x):\n"
        "        return self.encoder.forward(x)\n",
        lines=(5,),
    ),
    Example(
        "import lightning as L\n\nclass Model(L.LightningModule):\n    def training_step(self, batch, idx):\n"
        "        x, y = batch\n        return self.loss(self.net.forward(x), y)\n",
        lines=(6,),
    ),
    Example("import torch\nnet = torch.nn.Linear(2, 2)\nout = net.forward(torch.ones(2))\n", lines=(3,)),
)


# -- AIML504 unmasked-log and AIML505 imprecise-log-exp: shared call shapes ----------

_LOG_FUNCTIONS = frozenset(
    {
        "torch.log", "torch.log2", "torch.log10", "numpy.log", "numpy.log2", "numpy.log10", "math.log",
        "math.log2", "math.log10", "tensorflow.math.log", "tensorflow.log", "jax.numpy.log",
    }
)
_NATURAL_LOG = frozenset({"torch.log", "numpy.log", "math.log", "tensorflow.math.log", "tensorflow.log", "jax.numpy.log"})
_EXP_FUNCTIONS = frozenset({"torch.exp", "numpy.exp", "math.exp", "tensorflow.math.exp", "tensorflow.exp", "jax.numpy.exp"})
_SUM_FUNCTIONS = frozenset({"torch.sum", "numpy.sum", "builtins.sum", "tensorflow.reduce_sum", "tensorflow.math.reduce_sum", "jax.numpy.sum", "math.fsum"})
_LOG_PREFILTER = ("log",)
#: The log calls of the libraries above as they are usually written: ``torch.log(``,
#: ``np.log2(``, a bare ``log(`` imported from math, and the method ``.log()``. The text
#: check keeps ``self.log(...)`` and ``logger.log(...)`` files from being parsed for it.
#: NOTE: an unusual alias (``import torch as T; T.log(x)``) is missed by this check.
_LOG_CALL_TEXT = re.compile(
    r"(?:(?<![\w.])(?:torch|np|numpy|math|jnp|tf\.math|tf)\.|(?<![\w.]))log(?:2|10)?\(|\.log(?:2|10)?\(\)"
)
_EXP_CALL_TEXT = re.compile(r"(?<![\w])exp\(|\.exp\(\)")
#: The literal part every match of the two patterns above contains. Searching for it
#: first is far faster than trying the patterns' alternatives at every character.
_LOG_OR_EXP_CALL = re.compile(r"(?:log(?:2|10)?|exp)\(")


def _has_call_text(text: str, pattern: re.Pattern[str]) -> bool:
    """Tell whether ``pattern`` matches ``text`` around one of the literal log or exp calls."""
    for match in _LOG_OR_EXP_CALL.finditer(text):
        start = max(match.start() - 12, 0)
        if pattern.search(text, start, match.end() + 1):
            return True
    return False


#: The tensor methods ``as_log_call`` accepts: ``p.log()``, ``p.log2()``, ``p.log10()``.
_LOG_METHODS = frozenset({"log", "log2", "log10"})
#: The callee names of the calls in ``_SUM_FUNCTIONS`` and of the method ``x.sum()``.
_SUM_NAMES = frozenset({"sum", "fsum", "reduce_sum"})


def ast_log_arguments(facts: AstFacts, functions: frozenset[str], methods: frozenset[str]) -> Iterator[ast.expr]:
    """Yield what each log call of the module takes the log of, for every call :func:`as_log_call` could accept.

    The function form (``torch.log(x)``, resolved through the imports) gives its first
    positional argument. The method form (``x.log()``, without arguments) gives its receiver,
    whatever the receiver resolves to: libcst resolves a nested import only once its
    traversal has passed it, so ``np.log()`` may be a method call there.
    """
    for call in facts.nodes(ast.Call):
        if facts.resolves_to(call.func, functions) and call.args and not isinstance(call.args[0], ast.Starred):
            yield call.args[0]
        if isinstance(call.func, ast.Attribute) and call.func.attr in methods and not call.args and not call.keywords:
            yield call.func.value


def is_ast_sum_call(facts: AstFacts, expr: ast.expr) -> bool:
    """Tell whether an ``ast`` expression is a call that may be ``torch.sum(x)``, ``np.sum(x)`` or ``x.sum()``."""
    return isinstance(expr, ast.Call) and (
        ast_callee_name(expr.func) in _SUM_NAMES or facts.resolves_to(expr.func, _SUM_FUNCTIONS)
    )


def ast_unsubscripted(expr: ast.expr) -> ast.expr:
    """Return ``p`` for ``p[..., 0]``, as the libcst checks strip subscripts before they look at a value."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    return expr


@dataclass(frozen=True, slots=True)
class LogCall:
    """A logarithm call in either form: ``torch.log(x)`` or the method ``x.log()``."""

    call: cst.Call
    #: The library it belongs to (``torch``, ``numpy``, ``math``), for the advice.
    library: str
    argument: cst.BaseExpression
    natural: bool


def _library(qualified: str) -> str:
    head = qualified.split(".", 1)[0]
    return {"tensorflow": "tf.math", "numpy": "np", "jax": "jnp"}.get(head, head)


def as_log_call(call: cst.Call, context: ModuleContext) -> LogCall | None:
    qualified = context.qualified_name(call.func)
    if qualified in _LOG_FUNCTIONS:
        first = positional_args(call)
        if len(first) != 1 or (qualified.startswith("math.") and len(call.args) != 1):
            # ``math.log(x, base)`` takes a base; a call with more arguments is not plain ``log(x)``.
            return None
        return LogCall(call, _library(qualified), first[0].value, qualified in _NATURAL_LOG)
    if qualified is None and method_name(call) in _LOG_METHODS and not call.args:
        # ``probs.log()``: a tensor method. ``logger.log()`` always takes arguments.
        return LogCall(call, "torch", receiver(call), method_name(call) == "log")  # type: ignore[arg-type]
    return None


def is_exp(expr: cst.BaseExpression, context: ModuleContext) -> cst.BaseExpression | None:
    """Return the exponent of ``torch.exp(x)`` / ``x.exp()``, or None."""
    if not isinstance(expr, cst.Call):
        return None
    if context.qualified_name(expr.func) in _EXP_FUNCTIONS:
        first = positional_args(expr)
        return first[0].value if len(first) == 1 else None
    if context.qualified_name(expr.func) is None and method_name(expr) == "exp" and not expr.args:
        return receiver(expr)
    return None


def _normalises(numerator: cst.BaseExpression, denominator: cst.BaseExpression, context: ModuleContext) -> bool:
    """Tell whether ``numerator / denominator`` divides a value by its own sum: ``x / x.sum(-1, keepdim=True)``."""
    written = dotted_name(numerator)
    while isinstance(denominator, cst.Subscript):
        denominator = denominator.value
    if written is None or not isinstance(denominator, cst.Call):
        return False
    if method_name(denominator) == "sum" and context.qualified_name(denominator.func) is None:
        return dotted_name(receiver(denominator)) == written
    if context.qualified_name(denominator.func) in _SUM_FUNCTIONS:
        first = positional_args(denominator)
        return bool(first) and dotted_name(first[0].value) == written
    return False


def is_number(expr: cst.BaseExpression, value: float | None = None) -> bool:
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        return is_number(expr.expression) and (value is None or value < 0)
    if not isinstance(expr, (cst.Integer, cst.Float)):
        return False
    if value is None:
        return True
    try:
        return float(expr.evaluated_value) == value
    except (TypeError, ValueError):
        return False


# -- AIML504 unmasked-log ------------------------------------------------------------

#: Calls whose result is a probability that can be exactly 0 in floating point.
_PROBABILITY_FUNCTIONS = frozenset(
    {
        "torch.softmax", "torch.sigmoid", "torch.nn.functional.softmax", "torch.nn.functional.sigmoid",
        "torch.special.softmax", "torch.special.expit", "scipy.special.softmax", "scipy.special.expit",
        "tensorflow.nn.softmax", "tensorflow.math.sigmoid", "tensorflow.nn.sigmoid", "tensorflow.sigmoid",
        "jax.nn.softmax", "jax.nn.sigmoid",
    }
)
_PROBABILITY_METHODS = frozenset({"softmax", "sigmoid", "predict_proba"})
#: Methods whose result keeps the zeros of their receiver: a gathered or reshaped softmax output can be 0 too.
_ZERO_KEEPING_METHODS = frozenset(
    {"gather", "index_select", "take_along_dim", "squeeze", "unsqueeze", "view", "reshape", "flatten"}
)
#: The callee names ``_zero_source`` looks through or stops at.
_ZERO_SOURCE_CALLEES = _PROBABILITY_METHODS | _ZERO_KEEPING_METHODS


def may_be_zero_ast(facts: AstFacts, expr: ast.expr) -> bool:
    """Tell whether ``UnmaskedLog._zero_source`` could describe an ``ast`` expression as a value that can be zero.

    Any name may be bound to such a value, so a name counts. A call counts when it is a
    softmax, sigmoid or predict_proba, or a method that keeps its receiver's zeros. A
    division counts when its numerator is a difference, its denominator a sum, or either
    side counts itself.
    """
    expr = ast_unsubscripted(expr)
    if isinstance(expr, ast.Name):
        return True
    if isinstance(expr, ast.Call):
        return (
            ast_callee_name(expr.func) in _ZERO_SOURCE_CALLEES
            or facts.resolves_to(expr.func, _PROBABILITY_FUNCTIONS)
        )
    if not isinstance(expr, ast.BinOp) or not isinstance(expr.op, ast.Div):
        return False
    if isinstance(expr.left, ast.BinOp) and isinstance(expr.left.op, ast.Sub):
        return True
    return (
        is_ast_sum_call(facts, ast_unsubscripted(expr.right))
        or may_be_zero_ast(facts, expr.left)
        or may_be_zero_ast(facts, expr.right)
    )


_LOG_PROBABILITY_ALTERNATIVE = {"softmax": "log_softmax", "sigmoid": "logsigmoid (torch.nn.functional.logsigmoid)"}


class UnmaskedLog(FileRule):
    """Flag the logarithm of a softmax, a sigmoid or a ratio that can be exactly zero."""

    code = "AIML504"
    slug = "unmasked-log"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Missing the Mask of Invalid Value",)
    message = "log() of a value that can be zero, with no clamp or epsilon"
    impact = (
        "softmax and sigmoid underflow to exactly 0 for confident predictions, and a ratio is 0 whenever its "
        "numerator is. log(0) is -inf, its gradient is inf, and one such element turns the loss and then "
        "every weight into NaN, often many steps into a run."
    )
    fix = (
        "Use the log-space function (torch.log_softmax, F.logsigmoid, F.cross_entropy on logits), or mask "
        "the value before the log: torch.log(p.clamp(min=1e-8)), np.log(np.clip(p, 1e-12, None)), "
        "torch.log(p + eps)."
    )
    prefilter = _LOG_PREFILTER

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and _has_call_text(text, _LOG_CALL_TEXT)

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # A report needs a log call whose argument has a shape that ``_zero_source`` describes.
        # Each description ends in a value of the module that can be zero: a softmax, sigmoid or
        # predict_proba output, or a division whose numerator is a difference or whose denominator is a sum.
        if not any(
            may_be_zero_ast(facts, argument) for argument in ast_log_arguments(facts, _LOG_FUNCTIONS, _LOG_METHODS)
        ):
            return False
        if not facts.callee_names.isdisjoint(_PROBABILITY_METHODS):
            return True
        if not facts.calls.isdisjoint(_PROBABILITY_FUNCTIONS):
            return True
        return any(
            isinstance(node.op, ast.Div)
            and (
                (isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Sub))
                or is_ast_sum_call(facts, ast_unsubscripted(node.right))
            )
            for node in facts.nodes(ast.BinOp)
        )

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        #: Per function: names bound to a value that can be zero, with how it was made.
        self._frames: list[dict[str, str | None]] = [{}]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._frames.append({})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        source = self._zero_source(original_node.value, follow_names=False)
        for target in original_node.targets:
            if isinstance(target.target, cst.Name):
                self._frames[-1][target.target.value] = source

    def visit_Call(self, node: cst.Call) -> None:
        log = as_log_call(node, self.context)
        if log is None:
            return
        source = self._zero_source(log.argument, follow_names=True)
        if source is None:
            return
        advice = "clamp it or add an epsilon before the log"
        for kind, alternative in _LOG_PROBABILITY_ALTERNATIVE.items():
            if f"{kind} output" in source and log.natural and log.library == "torch":
                advice = f"use {alternative} on the logits instead"
        self.report(node, f"{code_of(node)} takes the log of {source}, which can be exactly 0: {advice}")

    def _zero_source(self, expr: cst.BaseExpression, follow_names: bool) -> str | None:
        """Describe why ``expr`` can be zero (``a softmax``, ``a ratio``), or return None."""
        while isinstance(expr, cst.Subscript):
            expr = expr.value
        if isinstance(expr, cst.Call):
            qualified = self.context.qualified_name(expr.func)
            if qualified in _PROBABILITY_FUNCTIONS:
                return "a " + qualified.rsplit(".", 1)[-1].replace("expit", "sigmoid") + " output"
            method = method_name(expr)
            if qualified is None and method in _PROBABILITY_METHODS:
                return "a predict_proba output" if method == "predict_proba" else f"a {method} output"
            if qualified is None and method in _ZERO_KEEPING_METHODS:
                return self._zero_source(receiver(expr), follow_names)  # type: ignore[arg-type]
            return None
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide):
            return f"the ratio {code_of(expr)}" if self._ratio_can_be_zero(expr, follow_names) else None
        if follow_names and isinstance(expr, cst.Name):
            for frame in reversed(self._frames):
                if expr.value in frame:
                    found = frame[expr.value]
                    return None if found is None else f"{expr.value} ({found})"
        return None

    def _ratio_can_be_zero(self, ratio: cst.BinaryOperation, follow_names: bool) -> bool:
        """Tell whether a division is known to give 0 for some inputs.

        Most ratios in model code divide sizes and rates that are never 0, so only three
        shapes count. The first is a normalisation ``x / x.sum()``, as of a histogram or an
        attention map with empty bins. The second is a numerator that is a difference
        (``(1 - p) / p``, ``(x - lo) / span``), and the third a ratio of a softmax or sigmoid output.
        """
        numerator, denominator = ratio.left, ratio.right
        if isinstance(numerator, cst.BinaryOperation) and isinstance(numerator.operator, cst.Divide):
            return self._ratio_can_be_zero(numerator, follow_names)
        if isinstance(numerator, cst.BinaryOperation) and isinstance(numerator.operator, cst.Subtract):
            return True
        if self._zero_source(numerator, follow_names) or self._zero_source(denominator, follow_names):
            return True
        return _normalises(numerator, denominator, self.context)


UnmaskedLog.VALID = (
    Example("import torch\n\ndef nll(logits, y):\n    return -torch.log_softmax(logits, dim=-1)[range(len(y)), y]\n"),
    Example("import torch\n\ndef nll(probs):\n    return -torch.log(probs.clamp(min=1e-8))\n"),
    Example("import torch\n\ndef nll(logits, eps=1e-8):\n    p = torch.softmax(logits, -1)\n    return -torch.log(p + eps)\n"),
    Example("import numpy as np\n\ndef entropy(p):\n    p = np.clip(p, 1e-12, 1)\n    return -(p * np.log(p)).sum()\n"),
    Example("import math\n\nscale = math.log(10000.0) / d_model\nrate = math.log(1.0 / 0.5)\n"),
    Example(
        "import torch\n\ndef loss(logits):\n    p = torch.softmax(logits, -1)\n    p = p.clamp(min=1e-6)\n"
        "    return torch.log(p).mean()\n"
    ),
    Example("import numpy as np\n\ndef log_returns(prices):\n    return np.log(prices)\n"),
    Example("import logging\nlog = logging.getLogger(__name__)\nlog.log(20, 'epoch done')\n"),
    Example("import torch\n\ndef f(probs):\n    # a name alone is not known to hold zeros\n    return torch.log(probs)\n"),
    Example("import math\n\nlevels = int(math.log2(min(feat_size) / min(window_size)))\n"),
    Example(
        "import torch\n\ndef widths(depth, slope, w0, wm):\n    cont = torch.arange(depth) * slope + w0\n"
        "    return torch.round(torch.log(cont / w0) / math.log(wm))\n"
    ),
    Example("import numpy as np\n\ndef kl(p, q):\n    return np.sum(p * np.log(p / q))\n"),
)
UnmaskedLog.INVALID = (
    Example(
        "import torch\nimport torch.nn.functional as F\n\ndef nll(logits, y):\n"
        "    return -torch.log(F.softmax(logits, dim=1)).gather(1, y)\n",
        lines=(5,),
    ),
    Example("import torch\n\ndef bce(logits, y):\n    p = torch.sigmoid(logits)\n    return -(y * torch.log(p)).mean()\n", lines=(5,)),
    Example("import numpy as np\n\ndef kl(counts, q):\n    return np.sum(counts * np.log(counts / counts.sum() / q))\n", lines=(4,)),
    Example("import torch\n\ndef nll(logits, y):\n    return -logits.softmax(-1).log()[y]\n", lines=(4,)),
    Example(
        "import numpy as np\nfrom scipy.special import expit\n\ndef log_likelihood(scores):\n"
        "    return np.log(expit(scores)).sum()\n",
        lines=(5,),
    ),
    Example(
        "import numpy as np\n\ndef log_loss(clf, X):\n    return -np.log(clf.predict_proba(X)[:, 1]).mean()\n",
        lines=(4,),
    ),
    Example("import numpy as np\n\ndef alpha(error_rate):\n    return 0.5 * np.log((1 - error_rate) / error_rate)\n", lines=(4,)),
    Example(
        "import torch\n\ndef entropy(attn):\n    p = attn / attn.sum(-1, keepdim=True)\n"
        "    return -(p * torch.log(p)).sum(-1)\n",
        lines=(5,),
    ),
)


# -- AIML505 imprecise-log-exp -------------------------------------------------------


_SOFTPLUS = {"torch": "torch.nn.functional.softplus(z)", "tf.math": "tf.math.softplus(z)"}


def is_ast_one(expr: ast.expr) -> bool:
    """Tell whether an ``ast`` expression is the number 1 (``1`` or ``1.0``), as :func:`is_number` reads it."""
    return isinstance(expr, ast.Constant) and isinstance(expr.value, (int, float)) and expr.value == 1


def is_ast_exp_call(facts: AstFacts, expr: ast.expr) -> bool:
    """Tell whether an ``ast`` expression is a call that may be ``torch.exp(x)`` or ``x.exp()``."""
    return isinstance(expr, ast.Call) and (
        ast_callee_name(expr.func) == "exp" or facts.resolves_to(expr.func, _EXP_FUNCTIONS)
    )


class ImpreciseLogExp(FileRule):
    """Flag ``log(1 + x)``, ``exp(x) - 1`` and a hand-written ``log(sum(exp(x)))``."""

    code = "AIML505"
    slug = "imprecise-log-exp"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    smells = ()
    message = "a log/exp expression that loses precision or overflows, where a dedicated function exists"
    impact = (
        "For small x, 1 + x rounds to 1, so log(1 + x) and exp(x) - 1 return 0 or a value with few correct "
        "digits. exp(x) overflows to inf for x above about 88 in float32 (709 in float64), so log(sum(exp(x))) "
        "turns large logits into inf and NaN gradients."
    )
    fix = (
        "Use the stable function of the same library: log1p(x) for log(1 + x), expm1(x) for exp(x) - 1, "
        "logsumexp(x) (torch.logsumexp, scipy.special.logsumexp, tf.reduce_logsumexp) for log(sum(exp(x))), "
        "logaddexp(a, b) for log(exp(a) + exp(b)), and softplus (or logaddexp(0, z)) for log(1 + exp(z))."
    )
    prefilter = ("exp", "log")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        if not cls.matches_text(text):
            return False
        return _has_call_text(text, _LOG_CALL_TEXT) or _has_call_text(text, _EXP_CALL_TEXT)

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report is a natural log of an addition (``log(1 + x)``, ``log(exp(a) + exp(b))``)
        # or of a sum call (``log(sum(exp(x)))``), or an exp call minus the number 1.
        for argument in ast_log_arguments(facts, _NATURAL_LOG, frozenset({"log"})):
            if isinstance(argument, ast.BinOp) and isinstance(argument.op, ast.Add):
                return True
            if is_ast_sum_call(facts, argument):
                return True
        return any(
            isinstance(node.op, ast.Sub) and is_ast_one(node.right) and is_ast_exp_call(facts, node.left)
            for node in facts.nodes(ast.BinOp)
        )

    def visit_Call(self, node: cst.Call) -> None:
        log = as_log_call(node, self.context)
        if log is None or not log.natural:
            return
        argument = log.argument
        library = log.library
        if isinstance(argument, cst.BinaryOperation) and isinstance(argument.operator, cst.Add):
            left, right = argument.left, argument.right
            one_left, one_right = is_number(left, 1.0), is_number(right, 1.0)
            if one_left != one_right and not is_number(right if one_left else left):
                if is_exp(right if one_left else left, self.context) is not None:
                    # log(1 + exp(z)) is softplus: log1p still overflows in exp for large z.
                    self.report(node, f"{code_of(node)} is a hand-written softplus that overflows for large values: use {_SOFTPLUS.get(library, library + '.logaddexp(0, z)')}")
                else:
                    self.report(node, f"{code_of(node)} loses precision for small values: use {library}.log1p(...)")
                return
            if is_exp(left, self.context) is not None and is_exp(right, self.context) is not None:
                self.report(node, f"{code_of(node)} overflows for large values: use {library}.logaddexp(a, b)")
                return
        exponent = self._summed_exponent(argument)
        if exponent is not None and not self._is_shifted(exponent):
            name = {"np": "scipy.special.logsumexp", "math": "scipy.special.logsumexp", "tf.math": "tf.reduce_logsumexp"}
            self.report(
                node,
                f"{code_of(node)} is a hand-written log-sum-exp that overflows for large values: use "
                f"{name.get(library, library + '.logsumexp')}(...)",
            )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Subtract) or not is_number(node.right, 1.0):
            return
        left = node.left
        if is_exp(left, self.context) is None:
            return
        qualified = self.context.qualified_name(left.func)  # type: ignore[attr-defined]
        library = _library(qualified) if qualified else "torch"
        self.report(node, f"{code_of(node)} loses precision for small values: use {library}.expm1(...)")

    def _summed_exponent(self, expr: cst.BaseExpression) -> cst.BaseExpression | None:
        """Return ``x`` of ``sum(exp(x))`` in its function and method forms, or None."""
        if not isinstance(expr, cst.Call):
            return None
        if self.context.qualified_name(expr.func) in _SUM_FUNCTIONS:
            first = positional_args(expr)
            return is_exp(first[0].value, self.context) if first else None
        if self.context.qualified_name(expr.func) is None and method_name(expr) == "sum":
            return is_exp(receiver(expr), self.context)  # type: ignore[arg-type]
        return None

    @staticmethod
    def _is_shifted(exponent: cst.BaseExpression) -> bool:
        # ``exp(x - x.max())``: the max-shifted form is the stable log-sum-exp written out.
        return isinstance(exponent, cst.BinaryOperation) and isinstance(exponent.operator, cst.Subtract)


ImpreciseLogExp.VALID = (
    Example("import torch\n\ndef softplus(x):\n    return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)\n"),
    Example("import numpy as np\n\ny = np.expm1(x)\nz = np.log(2 + x)\n"),
    Example("import torch\n\ndef lse(x):\n    m = x.max()\n    return m + torch.log(torch.sum(torch.exp(x - m)))\n"),
    Example("import math\n\nsteps = math.log(1 + 1)\n"),
    Example("import torch\n\ndef f(x):\n    return torch.exp(x) - 2\n"),
    Example("import math\n\n# log with a base is not the natural log\nbits = math.log(1 + n, 2)\n"),
    Example("import numpy as np\n\nlog10 = np.log10(1 + x)\n"),
)
ImpreciseLogExp.INVALID = (
    Example("import torch\n\ndef f(x):\n    return torch.log(1 + x)\n", lines=(4,)),
    Example("import numpy as np\n\nfeatures = np.log(counts + 1)\n", lines=(3,)),
    Example("import math\n\ndef growth(rate):\n    return math.exp(rate) - 1\n", lines=(4,)),
    Example("import torch\n\ndef lse(x):\n    return torch.log(torch.sum(torch.exp(x), dim=-1))\n", lines=(4,)),
    Example("import torch as T\n\ndef lse(x):\n    return T.log(x.exp().sum(-1))\n", lines=(4,)),
    Example("import numpy as np\n\ndef lse(a, b):\n    return np.log(np.exp(a) + np.exp(b))\n", lines=(4,)),
    Example("import tensorflow as tf\n\ndef softplus(z):\n    return tf.math.log(1.0 + tf.exp(z))\n", lines=(4,)),
    Example("import torch\n\ndef f(x):\n    return (x.exp() - 1.0) / x\n", lines=(4,)),
)


# -- AIML506 require-grad-typo -------------------------------------------------------

#: Misspellings of ``requires_grad`` that Python accepts silently as new attributes.
_REQUIRES_GRAD_TYPOS = frozenset({"require_grad", "require_grads", "requires_grads", "requires_grad_"})


class RequireGradTypo(FileRule):
    """Flag an assignment to a misspelt ``requires_grad`` attribute."""

    code = "AIML506"
    slug = "require-grad-typo"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    message = "assignment to a misspelt requires_grad attribute, which PyTorch ignores"
    impact = (
        "Tensors and parameters accept any new attribute, so p.require_grad = False raises no error and "
        "changes nothing: the layers meant to be frozen keep training (or the ones meant to train stay "
        "frozen), and only the results show it."
    )
    fix = "Spell it requires_grad (p.requires_grad = False), or call p.requires_grad_(False) / module.requires_grad_(False)."
    prefilter = ("require_grad", "requires_grads", "requires_grad_ =", "requires_grad_=")

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._check_target(target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check_target(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._check_target(node.target)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) != "builtins.setattr":
            return
        name = call_argument(node, 1, None)
        if name is not None and self.context.string_value(name.value) in _REQUIRES_GRAD_TYPOS:
            self.report(node, f"setattr(..., {code_of(name.value)}, ...) sets an attribute PyTorch never reads: use 'requires_grad'")

    def _check_target(self, target: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._check_target(element.value)
            return
        if isinstance(target, cst.Attribute) and target.attr.value in _REQUIRES_GRAD_TYPOS:
            self.report(
                target,
                f"{code_of(target)} sets an attribute PyTorch never reads, so requires_grad stays unchanged: "
                "use requires_grad",
            )


RequireGradTypo.VALID = (
    Example("for p in model.backbone.parameters():\n    p.requires_grad = False\n"),
    Example("model.encoder.requires_grad_(False)\n"),
    Example("require_grad = True\nconfig.require_grad_names = ['head']\n"),
    Example("if p.require_grad:\n    pass\n"),
)
RequireGradTypo.INVALID = (
    Example("for p in model.backbone.parameters():\n    p.require_grad = False\n", lines=(2,)),
    Example("class Head:\n    def freeze(self):\n        self.weight.requires_grads = False\n", lines=(3,)),
    Example("for name, p in model.named_parameters():\n    setattr(p, 'require_grad', 'head' in name)\n", lines=(2,)),
    Example("model.fc.weight.require_grad, model.fc.bias.require_grad = True, True\n", lines=(1,)),
    Example("embedding.weight.requires_grad_ = False\n", lines=(1,)),
)


# -- AIML507 checkpoint-without-use-reentrant ----------------------------------------

_CHECKPOINT_FUNCTIONS = frozenset({"torch.utils.checkpoint.checkpoint", "torch.utils.checkpoint.checkpoint_sequential"})


class CheckpointWithoutUseReentrant(FileRule):
    """Flag activation checkpointing that leaves ``use_reentrant`` to the default."""

    code = "AIML507"
    slug = "checkpoint-without-use-reentrant"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    message = "torch.utils.checkpoint is called without an explicit use_reentrant="
    impact = (
        "Since PyTorch 2.1, checkpoint() without use_reentrant warns on every call, and PyTorch plans to "
        "change the default from True to False. The reentrant variant silently computes no gradients when "
        "no input requires grad (a frozen embedding in front), and does not support torch.autograd.grad "
        "or keyword arguments, so results depend on a default that is going to change."
    )
    fix = (
        "Pass use_reentrant=False (recommended: it supports every input and nested checkpointing), or "
        "use_reentrant=True where the old behaviour is needed."
    )
    prefilter = ("utils.checkpoint", "utils import checkpoint", "checkpoint_sequential")

    def visit_Call(self, node: cst.Call) -> None:
        name = self.context.qualified_name(node.func)
        if name not in _CHECKPOINT_FUNCTIONS:
            return
        if keyword_value(node, "use_reentrant") is not None or has_star_kwargs(node):
            return
        function = name.rsplit(".", 1)[-1]
        self.report(node, f"{code_of(node.func)}() without use_reentrant=: pass use_reentrant=False explicitly ({function} warns and its default is set to change)")


CheckpointWithoutUseReentrant.VALID = (
    Example("from torch.utils.checkpoint import checkpoint\n\ndef forward(self, x):\n    return checkpoint(self.block, x, use_reentrant=False)\n"),
    Example("import torch.utils.checkpoint as cp\n\ny = cp.checkpoint(block, x, **checkpoint_kwargs)\n"),
    Example("import torch\n\nstate = torch.load('checkpoint.pt', weights_only=True)\ncheckpoint = state['model']\n"),
    Example("import deepspeed\n\ny = deepspeed.checkpointing.checkpoint(block, x)\n"),
    Example("from torch.utils.checkpoint import checkpoint_sequential\n\ny = checkpoint_sequential(layers, 2, x, use_reentrant=True)\n"),
)
CheckpointWithoutUseReentrant.INVALID = (
    Example("from torch.utils.checkpoint import checkpoint\n\ndef forward(self, x):\n    return checkpoint(self.block, x)\n", lines=(4,)),
    Example("import torch.utils.checkpoint\n\ny = torch.utils.checkpoint.checkpoint(block, x)\n", lines=(3,)),
    Example("import torch.utils.checkpoint as cp\n\ny = cp.checkpoint_sequential(layers, 4, x)\n", lines=(3,)),
    Example("from torch.utils import checkpoint as ckpt\n\ny = ckpt.checkpoint(block, x, preserve_rng_state=False)\n", lines=(3,)),
)


# -- AIML508 keras-session-not-cleared -----------------------------------------------

_KERAS_MODEL_CLASSES = frozenset(
    {
        f"{prefix}.{name}"
        for prefix in ("keras", "keras.models", "tensorflow.keras", "tensorflow.keras.models", "tf_keras", "tf_keras.models")
        for name in ("Sequential", "Model")
    }
    | {"keras.models.clone_model", "tensorflow.keras.models.clone_model", "tf_keras.models.clone_model"}
)
_KERAS_APPLICATION_PREFIXES = ("keras.applications.", "tensorflow.keras.applications.", "tf_keras.applications.")
_KERAS_FIT_METHODS = frozenset({"fit", "fit_generator", "train_on_batch"})


class KerasSessionNotCleared(FileRule):
    """Flag Keras models built and trained in a loop that never clears the Keras session."""

    code = "AIML508"
    slug = "keras-session-not-cleared"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    smells = ("Memory not Freed",)
    message = "Keras models are built in a loop without keras.backend.clear_session()"
    impact = (
        "Keras keeps every model, layer name and graph it creates in its global state. In a hyperparameter "
        "search or cross-validation loop the memory of all earlier models stays allocated, so the process "
        "slows down and runs out of host or GPU memory after enough iterations."
    )
    fix = (
        "Call tf.keras.backend.clear_session() (keras.backend.clear_session() or keras.utils.clear_session() "
        "in Keras 3) at the start of each iteration, before the model is built; also drop references to "
        "the old model (del model) and call gc.collect()."
    )
    prefilter = ("keras",)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._builders: dict[str, bool] = {}
        self._model_classes: set[str] = set()
        self._reported: set[int] = set()
        self._class_methods: list[dict[str, cst.FunctionDef]] = []

    def visit_Module(self, node: cst.Module) -> None:
        # Subclasses of keras.Model defined in this file build models too.
        for statement in node.body:
            if isinstance(statement, cst.ClassDef):
                for base in statement.bases:
                    name = self.context.qualified_name(base.value) or dotted_name(base.value)
                    if name in _KERAS_MODEL_CLASSES or name in self._model_classes:
                        self._model_classes.add(statement.name.value)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._class_methods.append(
            {statement.name.value: statement for statement in node.body.body if isinstance(statement, cst.FunctionDef)}
        )

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_methods.pop()

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._check_loop(node)

    def _check_loop(self, loop: cst.For | cst.While) -> None:
        built: cst.Call | None = None
        trained = False
        for node, _nested in walk(loop.body):
            if isinstance(node, (cst.Attribute, cst.Name)) and (
                (node.attr.value if isinstance(node, cst.Attribute) else node.value) == "clear_session"
            ):
                return
            if not isinstance(node, cst.Call):
                continue
            if method_name(node) in _KERAS_FIT_METHODS:
                trained = True
            elif built is None and self._builds_model(node):
                built = node
        if built is None or not trained or id(built) in self._reported:
            return
        self._reported.add(id(built))
        self.report(
            built,
            f"{code_of(built.func)}() builds a Keras model on every iteration of this training loop, and "
            "nothing calls clear_session(), so the memory of every earlier model stays allocated",
        )

    def _builds_model(self, call: cst.Call, depth: int = 0) -> bool:
        if not self.context.imports_any(*_KERAS_PACKAGES):
            return False
        name = self.context.qualified_name(call.func)
        if name is not None:
            return name in _KERAS_MODEL_CLASSES or (
                name.startswith(_KERAS_APPLICATION_PREFIXES) and name.rsplit(".", 1)[-1][:1].isupper()
            )
        func = call.func
        definition = None
        if isinstance(func, cst.Name):
            if func.value in self._model_classes:
                return True
            definition = self.context.functions.get(func.value)
        elif isinstance(func, cst.Attribute) and dotted_name(func.value) == "self" and self._class_methods:
            definition = self._class_methods[-1].get(func.attr.value)
        if definition is None or depth > 2:
            return False
        # A model-building helper of the same file, such as ``build_model(units)``.
        key = definition.name.value
        if key not in self._builders:
            self._builders[key] = False
            self._builders[key] = any(
                isinstance(node, cst.Call) and self._builds_model(node, depth + 1) for node in own_nodes(definition.body)
            )
        return self._builders[key]


_BUILD_MODEL = (
    "import tensorflow as tf\n\ndef build_model(units):\n    model = tf.keras.Sequential([tf.keras.layers.Dense(units)])\n"
    "    model.compile(optimizer='adam', loss='mse')\n    return model\n\n"
)

KerasSessionNotCleared.VALID = (
    Example(
        _BUILD_MODEL + "for units in (32, 64, 128):\n    tf.keras.backend.clear_session()\n"
        "    model = build_model(units)\n    model.fit(x, y, epochs=3)\n"
    ),
    Example(
        "from keras import backend as K\nfrom keras.models import Sequential\n\nfor fold in folds:\n"
        "    K.clear_session()\n    model = Sequential()\n    model.fit(fold.x, fold.y)\n"
    ),
    Example(_BUILD_MODEL + "# the models are kept, not trained here\nensemble = [build_model(u) for u in (8, 16)]\nfor units in (8, 16):\n    models.append(build_model(units))\n"),
    Example("import keras\n\nmodel = keras.Sequential([keras.layers.Dense(1)])\nfor epoch in range(10):\n    model.fit(x, y)\n"),
    Example(
        "import keras\n\nfor units in (8, 16):\n    keras.utils.clear_session()\n"
        "    model = keras.Sequential([keras.layers.Dense(units)])\n    model.fit(x, y)\n"
    ),
    Example("# scikit-learn models, not Keras\nfrom sklearn.linear_model import Ridge\nimport keras\nfor alpha in alphas:\n    Ridge(alpha=alpha).fit(x, y)\n"),
)
KerasSessionNotCleared.INVALID = (
    Example(_BUILD_MODEL + "for units in (32, 64, 128):\n    model = build_model(units)\n    model.fit(x, y, epochs=3)\n", lines=(9,)),
    Example(
        "from sklearn.model_selection import KFold\nfrom tensorflow import keras\n\n"
        "for train, test in KFold(5).split(x):\n    model = keras.models.Sequential([keras.layers.Dense(1)])\n"
        "    model.compile('adam', 'mse')\n    model.fit(x[train], y[train])\n",
        lines=(5,),
    ),
    Example(
        "import keras\n\nclass Net(keras.Model):\n    pass\n\nfor lr in (1e-2, 1e-3):\n    net = Net()\n"
        "    net.compile(keras.optimizers.Adam(lr), 'mse')\n    net.fit(x, y)\n",
        lines=(7,),
    ),
    Example(
        "import tensorflow as tf\n\nfor size in (128, 224):\n"
        "    base = tf.keras.applications.ResNet50(weights=None, input_shape=(size, size, 3))\n"
        "    base.fit(images, labels)\n",
        lines=(4,),
    ),
)


# -- AIML509 unwaited-distributed-request --------------------------------------------

#: Point-to-point operations that always return a request to wait on.
_ASYNC_ALWAYS = frozenset({"isend", "irecv", "batch_isend_irecv"})
_COLLECTIVES = frozenset(
    {
        "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "reduce", "reduce_scatter",
        "reduce_scatter_tensor", "all_to_all", "all_to_all_single", "gather", "scatter", "barrier",
        "all_gather_object", "broadcast_object_list", "send", "recv", "monitored_barrier",
    }
)


class UnwaitedDistributedRequest(FileRule):
    """Flag an asynchronous ``torch.distributed`` operation whose work handle the function discards or never reads."""

    code = "AIML509"
    slug = "unwaited-distributed-request"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    message = "an asynchronous torch.distributed operation is never waited on"
    impact = (
        "isend/irecv and collectives with async_op=True return before the data has moved. Reading or "
        "overwriting the tensor before work.wait() gives stale or partly reduced values that differ between "
        "ranks, and requests never completed can hang the process group at the next collective or at exit."
    )
    fix = (
        "Keep the returned work handle and call handle.wait() before the tensor is read or reused (for "
        "batch_isend_irecv, wait on every request of the list); drop async_op=True where nothing overlaps "
        "the communication."
    )
    prefilter = ("isend", "irecv", "async_op")

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._functions: list[cst.CSTNode] = []

    def visit_Module(self, node: cst.Module) -> None:
        self._functions.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions.pop()

    def visit_Expr(self, node: cst.Expr) -> None:
        operation = self._async_operation(node.value)
        if operation is not None:
            self.report(node.value, f"the request of {operation}() is discarded, so nothing waits for it: keep it and call .wait()")

    def visit_Assign(self, node: cst.Assign) -> None:
        operation = self._async_operation(node.value)
        if operation is None or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        name = node.targets[0].target.value
        if not self._used_after(name, node):
            self.report(node.value, f"{name} = {operation}(...) is never waited on: call {name}.wait() before using the tensor")

    def _async_operation(self, expr: cst.BaseExpression) -> str | None:
        if not isinstance(expr, cst.Call):
            return None
        name = self.context.qualified_name(expr.func)
        if name is None or not name.startswith("torch.distributed."):
            return None
        operation = name.rsplit(".", 1)[-1]
        if operation in _ASYNC_ALWAYS:
            return code_of(expr.func)
        if operation in _COLLECTIVES and is_true(keyword_value(expr, "async_op")):
            return code_of(expr.func)
        return None

    def _used_after(self, name: str, assignment: cst.Assign) -> bool:
        """Tell whether the function reads ``name`` anywhere after binding it (a wait, a list, a return)."""
        scope = self._functions[-1]
        bound = {id(node) for target in assignment.targets for node in [target.target]}
        seen = False
        for node in own_nodes(scope):
            if node is assignment:
                seen = True
            elif seen and isinstance(node, cst.Name) and node.value == name and id(node) not in bound:
                return True
        return False


UnwaitedDistributedRequest.VALID = (
    Example(
        "import torch.distributed as dist\n\ndef exchange(t, peer):\n    req = dist.isend(t, dst=peer)\n"
        "    req.wait()\n"
    ),
    Example(
        "import torch.distributed as dist\n\ndef sync(grads):\n    handles = []\n    for g in grads:\n"
        "        handle = dist.all_reduce(g, async_op=True)\n        handles.append(handle)\n"
        "    for handle in handles:\n        handle.wait()\n"
    ),
    Example("import torch.distributed as dist\n\ndef sync(t):\n    dist.all_reduce(t)\n    dist.barrier()\n"),
    Example(
        "import torch.distributed as dist\n\ndef start(t):\n    work = dist.all_reduce(t, async_op=True)\n"
        "    return work\n"
    ),
    Example(
        "import torch.distributed as dist\n\ndef ring(ops):\n    for req in dist.batch_isend_irecv(ops):\n"
        "        req.wait()\n"
    ),
    Example("# mpi4py, not torch.distributed\nfrom mpi4py import MPI\nMPI.COMM_WORLD.isend(data, dest=1)\n"),
)
UnwaitedDistributedRequest.INVALID = (
    Example("import torch.distributed as dist\n\ndef send(t, peer):\n    dist.isend(t, dst=peer)\n", lines=(4,)),
    Example(
        "import torch\n\ndef sync(t):\n    work = torch.distributed.all_reduce(t, async_op=True)\n"
        "    return t / torch.distributed.get_world_size()\n",
        lines=(4,),
    ),
    Example("from torch.distributed import irecv\n\ndef recv(buf):\n    req = irecv(buf, src=0)\n    return buf\n", lines=(4,)),
    Example("import torch.distributed as dist\n\ndist.broadcast(params, src=0, async_op=True)\nprint(params)\n", lines=(3,)),
)


# -- AIML510 numpy-in-forward --------------------------------------------------------

_MODULE_BASES = ("torch.nn.", "lightning.", "pytorch_lightning.", "transformers.")
#: Accessors that turn a tensor into plain metadata (an int, a shape, a dtype), which NumPy may use freely.
_METADATA_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "size", "dim", "numel", "ndimension", "is_cuda"})


class NumpyInForward(FileRule):
    """Flag NumPy calls on tensors, and ``.numpy()``, inside an ``nn.Module.forward``."""

    code = "AIML510"
    slug = "numpy-in-forward"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    message = "NumPy is used on tensor data inside nn.Module.forward"
    impact = (
        "A tensor converted to NumPy leaves the autograd graph: everything computed from it gets no gradient, "
        "so the layers before it stop learning without an error. On a GPU each conversion also copies the "
        "tensor to the host and waits for all queued kernels, which stalls every forward pass, and "
        "torch.compile and ONNX export break the graph there."
    )
    fix = (
        "Use the torch equivalent (torch.exp, torch.where, torch.cumsum, tensor indexing) so the computation "
        "stays on the device and in the graph; keep NumPy for constants computed once in __init__."
    )
    prefilter = ("numpy",)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and "def forward" in text

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._module_classes: set[str] = set()
        self._class_is_module: list[bool] = []
        #: In the forward being visited: names that hold tensor data, and the depth of calls already reported.
        self._tensor_names: set[str] | None = None
        self._forward: cst.FunctionDef | None = None
        self._reported_depth = 0

    def visit_Module(self, node: cst.Module) -> None:
        for statement in node.body:
            if isinstance(statement, cst.ClassDef) and self._is_module_class(statement):
                self._module_classes.add(statement.name.value)

    def _is_module_class(self, node: cst.ClassDef) -> bool:
        for base in node.bases:
            name = self.context.qualified_name(base.value)
            if name is not None and name.startswith(_MODULE_BASES):
                return True
            if isinstance(base.value, cst.Name) and base.value.value in self._module_classes:
                return True
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._class_is_module.append(node.name.value in self._module_classes or self._is_module_class(node))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_is_module.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "forward" and self._class_is_module and self._class_is_module[-1] and self._tensor_names is None:
            self._tensor_names = {param.name.value for param in all_parameters(node)} - {"self"}
            self._forward = node

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        if original_node is self._forward:
            self._tensor_names = None
            self._forward = None

    def leave_Assign(self, original_node: cst.Assign) -> None:
        if self._tensor_names is None:
            return
        carries = self._carries_tensor(original_node.value)
        for target in original_node.targets:
            for name in _target_names(target.target):
                if carries:
                    self._tensor_names.add(name)
                else:
                    self._tensor_names.discard(name)

    def visit_Call(self, node: cst.Call) -> None:
        if self._tensor_names is None:
            return
        if self._reported_depth:
            self._reported_depth += 1
            return
        described = self._numpy_use(node)
        if described is not None:
            self.report(node, described)
            self._reported_depth = 1

    def leave_Call(self, original_node: cst.Call) -> None:
        if self._reported_depth:
            self._reported_depth -= 1

    def _numpy_use(self, call: cst.Call) -> str | None:
        if method_name(call) == "numpy" and not call.args and self.context.qualified_name(call.func) is None:
            return f"{code_of(call)} in forward() copies the tensor to the host and detaches it from autograd"
        name = self.context.qualified_name(call.func)
        if name is None or not name.startswith("numpy."):
            return None
        if any(self._carries_tensor(arg.value) for arg in call.args):
            return (
                f"{code_of(call)} in forward() runs NumPy on tensor data: the result has no gradient and forces "
                "a device-to-host copy"
            )
        return None

    def _carries_tensor(self, expr: cst.BaseExpression) -> bool:
        """Tell whether an expression reads a forward input or a value computed from one, other than its shape."""
        assert self._tensor_names is not None
        stack: list[cst.CSTNode] = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, cst.Attribute) and node.attr.value in _METADATA_ATTRIBUTES:
                continue
            if isinstance(node, cst.Call):
                if callee_name(node) in _METADATA_ATTRIBUTES or self.context.qualified_name(node.func) == "builtins.len":
                    continue
            if isinstance(node, cst.Name) and node.value in self._tensor_names:
                return True
            if isinstance(node, node_types(*_SCOPES)):
                continue
            stack.extend(children(node, whitespace=False))
        return False


def _target_names(target: cst.BaseExpression) -> Iterator[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _target_names(element.value)


NumpyInForward.VALID = (
    Example(
        "import numpy as np\nimport torch.nn as nn\n\nclass Attention(nn.Module):\n    def forward(self, q, k):\n"
        "        return q @ k.transpose(-2, -1) / np.sqrt(q.size(-1))\n"
    ),
    Example(
        "import numpy as np\nimport torch\nimport torch.nn as nn\n\nclass PositionalEncoding(nn.Module):\n"
        "    def __init__(self, d):\n        super().__init__()\n"
        "        self.register_buffer('pe', torch.from_numpy(np.arange(d, dtype=np.float32)))\n\n"
        "    def forward(self, x):\n        return x + self.pe\n"
    ),
    Example(
        "import numpy as np\n\nclass Scaler:\n    # not a torch module\n    def forward(self, x):\n"
        "        return np.log1p(x)\n"
    ),
    Example(
        "import numpy as np\nimport torch.nn as nn\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
        "        noise = np.random.normal(size=x.shape)\n        return x * self.scale\n\n"
        "    def predict(self, x):\n        return np.argmax(self(x).detach().cpu().numpy(), axis=1)\n"
    ),
    Example(
        "import numpy as np\nimport torch.nn as nn\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
        "        steps = np.linspace(0, 1, len(x))\n        return x * self.gain\n"
    ),
)
NumpyInForward.INVALID = (
    Example(
        "import numpy as np\nimport torch\nimport torch.nn as nn\n\nclass Net(nn.Module):\n    def forward(self, x):\n"
        "        h = self.fc(x)\n        return torch.from_numpy(np.tanh(h.detach().cpu().numpy()))\n",
        lines=(8,),
    ),
    Example(
        "import numpy as np\nfrom torch import nn\n\nclass Head(nn.Module):\n    def forward(self, logits):\n"
        "        probs = logits.softmax(-1)\n        keep = np.where(probs > 0.5, 1, 0)\n        return keep\n",
        lines=(7,),
    ),
    Example(
        "import lightning as L\n\nclass Model(L.LightningModule):\n    def forward(self, batch):\n"
        "        out = self.net(batch)\n        self.cache = out.cpu().numpy()\n        return out\n",
        lines=(6,),
    ),
    Example(
        "import numpy as np\nimport torch.nn as nn\n\nclass Base(nn.Module):\n    pass\n\nclass Child(Base):\n"
        "    def forward(self, x):\n        return np.exp(x)\n",
        lines=(9,),
    ),
)


# -- AIML511 tensor-constructor ------------------------------------------------------

#: Calls whose result is array data, never a size: what ``torch.Tensor(...)`` then copies.
_DATA_CALLS = frozenset({"numpy.array", "numpy.asarray", "numpy.stack", "numpy.concatenate", "builtins.list", "numpy.vstack", "numpy.hstack"})
_DATA_METHODS = frozenset({"tolist", "to_numpy", "numpy"})
#: The callee names of ``_DATA_CALLS`` and ``_DATA_METHODS``.
_DATA_CALLEE_NAMES = frozenset({name.rsplit(".", 1)[-1] for name in _DATA_CALLS}) | _DATA_METHODS


def is_ast_data(facts: AstFacts, expr: ast.expr) -> bool:
    """Tell whether an ``ast`` expression may be what ``TensorConstructor._is_data`` takes for array data."""
    if isinstance(expr, (ast.List, ast.ListComp, ast.Tuple)):
        return True
    if isinstance(expr, ast.Call):
        return ast_callee_name(expr.func) in _DATA_CALLEE_NAMES or facts.resolves_to(expr.func, _DATA_CALLS)
    return isinstance(expr, ast.Attribute) and expr.attr == "values"


class TensorConstructor(FileRule):
    """Flag ``torch.Tensor(data)``, the legacy constructor, used to build a tensor from data."""

    code = "AIML511"
    slug = "tensor-constructor"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    message = "torch.Tensor(data) builds a tensor with the legacy constructor"
    impact = (
        "torch.Tensor(...) is the legacy constructor: torch.Tensor(3) is an uninitialised tensor of size 3 "
        "while torch.Tensor([3]) holds the value 3, it takes no dtype, device or requires_grad, and it always "
        "gives the default float type. Code built on it is easy to misread and breaks when a list becomes an int."
    )
    fix = (
        "Use torch.tensor(data) to copy data, or torch.as_tensor(data) to share memory with a NumPy array. "
        "torch.tensor infers the dtype from the data (int64 for integers, float64 for a float64 array) "
        "where torch.Tensor always gave float32: pass dtype=torch.float32 where the old type is needed."
    )
    prefilter = ("Tensor(",)
    fixer = TensorConstructorFixer
    applies_to_tests = False
    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report is a call of torch.Tensor with one plain positional argument that is data
        # or a name, and a name counts when some assignment of the module binds it to data.
        # The text "Tensor(" also matches the size form torch.Tensor(3, 4) and FloatTensor(...).
        arguments = [
            call.args[0] for call in facts.calls_to(frozenset({"torch.Tensor"}))
            if len(call.args) == 1 and not call.keywords and not isinstance(call.args[0], ast.Starred)
        ]
        if any(is_ast_data(facts, argument) for argument in arguments):
            return True
        names = {argument.id for argument in arguments if isinstance(argument, ast.Name)}
        return any(
            isinstance(target, ast.Name) and target.id in names and is_ast_data(facts, node.value)
            for node in facts.nodes(ast.Assign)
            for target in node.targets
        )

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._frames: list[set[str]] = [set()]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._frames.append(set())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._frames.pop()

    def leave_Assign(self, original_node: cst.Assign) -> None:
        is_data = self._is_data(original_node.value)
        for target in original_node.targets:
            if isinstance(target.target, cst.Name):
                if is_data:
                    self._frames[-1].add(target.target.value)
                else:
                    self._frames[-1].discard(target.target.value)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) != "torch.Tensor":
            return
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            return
        data = node.args[0].value
        if self._is_data(data) or (isinstance(data, cst.Name) and data.value in self._frames[-1]):
            self.report(node, f"{code_of(node)} uses the legacy constructor: use torch.tensor(...) or torch.as_tensor(...)")

    def _is_data(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, (cst.List, cst.ListComp)):
            return True
        if isinstance(expr, cst.Tuple):
            # ``(2, 3)`` is data too, but ``torch.Tensor(*(2, 3))`` would be sizes; a starred call is skipped above.
            return True
        if isinstance(expr, cst.Call):
            name = self.context.qualified_name(expr.func)
            if name in _DATA_CALLS:
                return True
            return name is None and method_name(expr) in _DATA_METHODS
        if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
            return True
        return False


TensorConstructor.VALID = (
    Example("import torch\n\nweights = torch.tensor([0.2, 0.8])\n"),
    Example("import torch\n\ndef f(x: torch.Tensor) -> torch.Tensor:\n    assert isinstance(x, torch.Tensor)\n    return x\n"),
    Example("import torch\n\n# the size form: an uninitialised tensor, not data\nbuffer = torch.Tensor(3, 4)\nhidden = torch.Tensor(size)\n"),
    Example("import torch\nimport torch.nn as nn\n\nweight = nn.Parameter(torch.Tensor(out_features, in_features))\n"),
    Example("from mylib import Tensor\n\nt = Tensor([1.0, 2.0])\n"),
    Example("import torch\n\ndef f(n):\n    values = n * 2\n    return torch.Tensor(values)\n"),
)
TensorConstructor.INVALID = (
    Example(
        "import torch\n\nclass_weights = torch.Tensor([0.2, 0.8])\n",
        lines=(3,),
        fixed="import torch\n\nclass_weights = torch.tensor([0.2, 0.8])\n",
    ),
    Example(
        "from torch import Tensor\n\nmean = Tensor([0.485, 0.456, 0.406])\n",
        lines=(3,),
        fixed="from torch import Tensor, tensor\n\nmean = tensor([0.485, 0.456, 0.406])\n",
    ),
    Example(
        "import numpy as np\nimport torch\n\ndef to_tensor(frame):\n    return torch.Tensor(np.asarray(frame, dtype=np.float32))\n",
        lines=(5,),
        fixed="import numpy as np\nimport torch\n\ndef to_tensor(frame):\n    return torch.tensor(np.asarray(frame, dtype=np.float32))\n",
    ),
    Example(
        "import torch as T\n\ndef batch(rows):\n    data = [row.features for row in rows]\n    return T.Tensor(data)\n",
        lines=(5,),
        fixed=(
            "import torch as T\n\ndef batch(rows):\n    data = [row.features for row in rows]\n"
            "    return T.tensor(data, dtype=T.float32)\n"
        ),
    ),
)


# -- AIML512 zero-grad-set-to-none-false ---------------------------------------------


def writes_gradient_in_place(node: cst.CSTNode) -> bool:
    """Tell whether a node updates a ``.grad`` tensor in place: ``p.grad += g``, ``p.grad.add_(g)``."""
    if isinstance(node, cst.AugAssign):
        return "grad" in (dotted_name(node.target) or "").split(".")
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        method = node.func.attr.value
        if method.endswith("_") and not method.startswith("_") and method != "zero_":
            return "grad" in (dotted_name(node.func.value) or "").split(".")
    return False


class ZeroGradSetToNoneFalse(FileRule):
    """Flag ``zero_grad(set_to_none=False)``, which fills gradients with zeros instead of freeing them."""

    code = "AIML512"
    slug = "zero-grad-set-to-none-false"
    category = Category.TRAINING
    priority = Priority.LOW
    effort = Effort.LOW
    anti_pattern = "GPU underutilization"
    message = "zero_grad(set_to_none=False) writes zeros into every gradient instead of freeing them"
    impact = (
        "With set_to_none=False every step launches a memset for each parameter's gradient and keeps the "
        "gradient memory allocated between steps; the default since PyTorch 2.0, set_to_none=True, drops the "
        "gradients, so the next backward() writes them instead of adding to zeros."
    )
    fix = (
        "Call optimizer.zero_grad() (or model.zero_grad()) without the argument. Keep False only where code "
        "reads p.grad between zero_grad() and backward() and needs a tensor there."
    )
    prefilter = ("set_to_none",)
    fixer = ZeroGradSetToNoneFixer
    applies_to_tests = False

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._writes_gradients = False

    def visit_Module(self, node: cst.Module) -> None:
        # Code that adds into p.grad by hand (a parameter server summing workers' gradients)
        # needs zero tensors there, so set_to_none=False is deliberate in such a file.
        self._writes_gradients = any(writes_gradient_in_place(child) for child, _nested in walk(node))

    def visit_Call(self, node: cst.Call) -> None:
        if method_name(node) != "zero_grad" or not is_false(keyword_value(node, "set_to_none")):
            return
        if self._writes_gradients:
            return
        self.report(node, f"{code_of(node)} fills the gradients with zeros: call {code_of(node.func)}() and let it free them")


ZeroGradSetToNoneFalse.VALID = (
    Example("optimizer.zero_grad()\nmodel.zero_grad(set_to_none=True)\n"),
    Example("optimizer.zero_grad(set_to_none=keep_buffers)\n"),
    Example("def zero_grad(self, set_to_none=False):\n    pass\n"),
    Example(
        "# gradients from workers are summed into p.grad by hand, so they must stay tensors\n"
        "def apply(model, optimizer, worker_grads):\n    for p, g in zip(model.parameters(), worker_grads):\n"
        "        p.grad += g\n    optimizer.step()\n    optimizer.zero_grad(set_to_none=False)\n"
    ),
    Example("optimizer.zero_grad(set_to_none=False)\n", path="tests/test_optim.py"),
)
ZeroGradSetToNoneFalse.INVALID = (
    Example(
        "for x, y in loader:\n    optimizer.zero_grad(set_to_none=False)\n    loss(x, y).backward()\n    optimizer.step()\n",
        lines=(2,),
        fixed="for x, y in loader:\n    optimizer.zero_grad()\n    loss(x, y).backward()\n    optimizer.step()\n",
    ),
    Example(
        "class Trainer:\n    def step(self):\n        self.model.zero_grad(set_to_none=False)\n",
        lines=(3,),
        fixed="class Trainer:\n    def step(self):\n        self.model.zero_grad()\n",
    ),
)


# -- AIML513 tensor-moved-in-loop ----------------------------------------------------

#: Factories that make a tensor from sizes or ranges alone, and take ``device=``.
_FACTORY_NAMES = (
    "zeros", "ones", "full", "empty", "rand", "randn", "randint", "randperm", "arange", "linspace",
    "logspace", "eye", "tril_indices", "triu_indices",
)
_TENSOR_FACTORIES = frozenset(f"torch.{name}" for name in _FACTORY_NAMES)
#: The methods ``TensorMovedInLoop._is_move`` accepts as a move to a device.
_MOVE_METHODS = frozenset({"to", "cuda"})
_DEVICE_NAME = re.compile(r"device|gpu|cuda|rank|(^|_)dev($|_)", re.IGNORECASE)


class TensorMovedInLoop(CallFlaggingRule):
    """Flag a tensor made on the CPU and then moved to the GPU on every iteration of a loop."""

    code = "AIML513"
    slug = "tensor-moved-in-loop"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "GPU underutilization"
    message = "a tensor is created on the CPU and moved to the device inside a loop"
    impact = (
        "torch.zeros(n).to(device) allocates and fills the tensor in host memory, then copies it over PCIe "
        "on every iteration. The copy and its synchronisation stall the GPU in the hottest part of the "
        "program, where creating the tensor on the device costs one kernel launch."
    )
    fix = (
        "Create the tensor where it is used: torch.zeros(n, device=device), torch.arange(n, device=x.device), "
        "or torch.zeros_like(x); for a constant, create it once before the loop."
    )
    prefilter = (".to(", ".cuda(")
    applies_to_tests = False

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and any(f"{name}(" in text for name in _FACTORY_NAMES)

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs one loop that contains both a torch factory call without
        # ``device=`` (or ``**kwargs``) and a ``.to(...)`` or ``.cuda()`` call, because the moved
        # tensor is that factory call or a name the same loop binds to it.
        if facts.callee_names.isdisjoint(_MOVE_METHODS):
            return False
        factories = {
            id(call) for call in facts.calls_to(_TENSOR_FACTORIES)
            if not any(keyword.arg in ("device", None) for keyword in call.keywords)
        }
        if not factories:
            return False
        for loop in facts.nodes(ast.For, ast.AsyncFor, ast.While):
            calls = [node for node in ast.walk(loop) if isinstance(node, ast.Call)]
            if any(id(call) in factories for call in calls) and any(
                isinstance(call.func, ast.Attribute) and call.func.attr in _MOVE_METHODS for call in calls
            ):
                return True
        return False

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._check_loop(node)

    def _check_loop(self, loop: cst.For | cst.While) -> None:
        if not self.context.imports_any("torch"):
            return
        created: dict[str, cst.Call] = {}
        for node in own_nodes(loop.body):
            if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                name = node.targets[0].target.value
                if self._cpu_factory(node.value):
                    created[name] = node.value  # type: ignore[assignment]
                elif not self._moves(node.value, name):
                    created.pop(name, None)
            if not isinstance(node, cst.Call) or not self._is_move(node):
                continue
            moved = receiver(node)
            factory = self._cpu_factory(moved)
            if factory:
                self.flag(node, f"{code_of(moved)} is created on the CPU and copied with .{method_name(node)}(...) on every iteration: pass device= to {code_of(moved.func)}()")  # type: ignore[union-attr]
            elif isinstance(moved, cst.Name) and moved.value in created:
                factory_call = created[moved.value]
                self.flag(node, f"{moved.value} = {code_of(factory_call)} is created on the CPU and copied with .{method_name(node)}(...) on every iteration: pass device= to {code_of(factory_call.func)}()")

    def _cpu_factory(self, expr: cst.BaseExpression | None) -> bool:
        if not isinstance(expr, cst.Call) or self.context.qualified_name(expr.func) not in _TENSOR_FACTORIES:
            return False
        return keyword_value(expr, "device") is None and not has_star_kwargs(expr)

    def _moves(self, expr: cst.BaseExpression, name: str) -> bool:
        return isinstance(expr, cst.Call) and self._is_move(expr) and dotted_name(receiver(expr)) == name

    def _is_move(self, call: cst.Call) -> bool:
        name = method_name(call)
        if name == "cuda":
            return True
        if name != "to":
            return False
        target = call_argument(call, 0, "device")
        return target is not None and self._is_device(target.value)

    def _is_device(self, expr: cst.BaseExpression) -> bool:
        text = self.context.string_value(expr)
        if text is not None:
            return text.split(":", 1)[0] in ("cuda", "mps", "xpu", "npu", "hpu", "xla", "meta")
        if isinstance(expr, cst.Call):
            qualified = self.context.qualified_name(expr.func)
            return qualified == "torch.device"
        qualified = self.context.qualified_name(expr)
        if qualified is not None and qualified.startswith("torch."):
            # ``torch.float16`` and the other dtypes: a cast, not a move.
            return False
        name = base_name(expr)
        return name is not None and bool(_DEVICE_NAME.search(name))


TensorMovedInLoop.VALID = (
    Example(
        "import torch\n\ndef train(model, loader, device):\n    for x, y in loader:\n"
        "        x, y = x.to(device), y.to(device)\n        model(x, y)\n"
    ),
    Example(
        "import torch\n\ndef sample(model, steps, device):\n    for t in range(steps):\n"
        "        noise = torch.randn(4, 3, device=device)\n        model(noise)\n"
    ),
    Example("import torch\n\nfor x in loader:\n    mask = torch.ones(8).to(torch.bool)\n    half = torch.zeros(3).to(dtype)\n"),
    Example("import torch\n\nones = torch.ones(8).cuda()\nfor x in loader:\n    model(x * ones)\n"),
    Example(
        "import torch\n\nfor batch in loader:\n    labels = torch.tensor(batch['labels']).to(device)\n"
        "    ids = torch.from_numpy(batch['ids']).cuda()\n"
    ),
    Example("# not torch\nimport numpy as np\nfor x in rows:\n    zeros = np.zeros(3).to(device)\n"),
    Example("import torch\n\nfor i in range(2):\n    model(torch.randn(1, 32).to(device))\n", path="tests/test_fit.py"),
)
TensorMovedInLoop.INVALID = (
    Example(
        "import torch\n\ndef train(model, loader, device):\n    for x, y in loader:\n"
        "        hidden = torch.zeros(1, x.size(0), 256).to(device)\n        model(x.to(device), hidden)\n",
        lines=(5,),
    ),
    Example("import torch\n\nfor step in range(1000):\n    noise = torch.randn(64, 100).cuda()\n    G(noise)\n", lines=(4,)),
    Example(
        "import torch\n\nfor x in loader:\n    positions = torch.arange(x.size(1))\n"
        "    positions = positions.to(x.device)\n    model(x, positions)\n",
        lines=(5,),
    ),
    Example(
        "import torch\n\nwhile not done:\n    t = torch.full((batch,), step, dtype=torch.long).to('cuda:0')\n",
        lines=(4,),
    ),
)


RULES = (
    GradientsNotCleared,
    EvalModeNotRestored,
    ForwardCalledDirectly,
    UnmaskedLog,
    ImpreciseLogExp,
    RequireGradTypo,
    CheckpointWithoutUseReentrant,
    KerasSessionNotCleared,
    UnwaitedDistributedRequest,
    NumpyInForward,
    TensorConstructor,
    ZeroGradSetToNoneFalse,
    TensorMovedInLoop,
)
