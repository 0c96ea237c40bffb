"""GPU utilisation rules: input pipelines, host syncs, unbatched inference and float32 training.

Each rule reports only in modules that show GPU use: ``.cuda()``, ``.to("cuda")``,
``torch.device("cuda")``, a ``"cuda"`` device string, anything under ``torch.cuda``,
an ``accelerate.Accelerator`` or a Lightning ``Trainer(accelerator="gpu")``. The same
code on a CPU has none of these costs, so it is left alone. A module passes the cheap
text test first (:data:`GPU_TEXT`) and the parsed module must confirm it before a
finding is kept.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from pytest_aiml.engine.ast_facts import NESTED_SCOPES, AstFacts, argument, own_nodes, unpacks_kwargs
from pytest_aiml.engine.context import (
    ModuleContext,
    PendingFinding,
    call_argument,
    has_star_kwargs,
    is_false,
    keyword_value,
    literal_string,
)
from pytest_aiml.engine.libcst_import import cst
from pytest_aiml.engine.rule import Category, Effort, Example, FileRule, Priority
from pytest_aiml.engine.walk import Visitor, walk
from pytest_aiml.fixes.codemods import DataLoaderPinMemoryFixer

#: Text that every module with GPU use contains; files without it are never parsed for these rules.
GPU_TEXT = re.compile(
    r"\.cuda\(|['\"]cuda|torch\.cuda|cuda\.is_available|torch\.accelerator|accelerator\s*=\s*['\"](gpu|cuda)|"
    r"Accelerator\(|gpus\s*="
)
_CUDA_DEVICE = re.compile(r"^cuda(:\d+)?$")
_DATALOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
_LIGHTNING_TRAINERS = frozenset(
    {"lightning.Trainer", "lightning.pytorch.Trainer", "pytorch_lightning.Trainer", "lightning.pytorch.trainer.Trainer"}
)
_MAX_SHOWN = 60


def shorten(module: cst.Module, node: cst.CSTNode) -> str:
    """Return the source of ``node`` on one line, cut to a readable length for a message."""
    text = " ".join(module.code_for_node(node).split())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def is_cuda_string(expr: cst.BaseExpression | None) -> bool:
    value = literal_string(expr) if expr is not None else None
    return value is not None and bool(_CUDA_DEVICE.match(value))


@dataclass
class _Deferred:
    node: cst.CSTNode
    message: str
    statement: cst.CSTNode | None


class GpuModuleRule(FileRule):
    """A rule whose findings count only if the module turns out to use a GPU.

    GPU use may be established after the flagged code (a ``device`` chosen in
    ``main()`` at the end of the file), so findings wait until the whole module is seen.
    """

    applies_to_tests = False
    prefilter = (".cuda(", "cuda", "Accelerator(", "accelerator", "gpus")

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self.uses_gpu = False
        self._deferred: list[_Deferred] = []

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and bool(GPU_TEXT.search(text))

    def defer(self, node: cst.CSTNode, message: str, statement: cst.CSTNode | None = None) -> None:
        """Keep a finding until the module is seen; ``statement`` defaults to the one being visited."""
        if statement is None and self.context.statements:
            statement = self.context.statements[-1]
        self._deferred.append(_Deferred(node, message, statement))

    # -- GPU use ---------------------------------------------------------------------

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if not self.uses_gpu and is_cuda_string(node):
            self.uses_gpu = True

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self.uses_gpu or node.attr.value not in ("cuda", "accelerator"):
            return
        name = self.context.qualified_name(node)
        if node.attr.value == "cuda":
            # ``x.cuda`` on any object is the tensor and module method; ``torch.cuda`` is the package.
            self.uses_gpu = name is None or name.startswith("torch.")
        else:
            # ``torch.accelerator`` (torch 2.6 and later) picks CUDA, XPU or MPS, whichever is present.
            self.uses_gpu = name == "torch.accelerator"

    def visit_Call(self, node: cst.Call) -> None:
        if not self.uses_gpu:
            self.uses_gpu = self._call_uses_gpu(node)

    def _call_uses_gpu(self, node: cst.Call) -> bool:
        if self.context.qualified_name(node.func) == "accelerate.Accelerator":
            return True
        accelerator = keyword_value(node, "accelerator")
        if accelerator is not None and literal_string(accelerator) in ("gpu", "cuda"):
            return True
        gpus = keyword_value(node, "gpus")
        return gpus is not None and not (isinstance(gpus, cst.Integer) and gpus.value == "0") and not (
            isinstance(gpus, cst.Name) and gpus.value == "None"
        )

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self.uses_gpu:
            return
        for deferred in self._deferred:
            self.context.pending.append(PendingFinding(self.code, deferred.node, deferred.message, deferred.statement))


# -- ast candidate checks --------------------------------------------------------------
# What the rules below need before libcst parses a file (see FileRule.candidate): each is a
# looser version of the libcst check, so that a file it rules out has no finding.

_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def may_use_gpu(facts: AstFacts) -> bool:
    """Tell whether ``GpuModuleRule`` may find GPU use in the module."""
    # ast joins implicitly concatenated literals, whose pieces libcst checks one by one.
    if any("cuda" in value for value in facts.strings):
        return True
    for node in facts.nodes(ast.Attribute):
        if node.attr == "cuda" and any(name is None or name.startswith("torch.") for name in facts.resolutions(node)):
            return True
        if node.attr == "accelerator" and "torch.accelerator" in facts.resolutions(node):
            return True
    # libcst also reads a dotted import (``from torch.cuda import amp``) as attribute nodes.
    for node in facts.nodes(ast.Import, ast.ImportFrom):
        dotted = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        if any(part in ("cuda", "accelerator") for name in dotted for part in name.split(".")[1:]):
            return True
    return any(_call_may_use_gpu(node, names) for node, names in facts.resolved_calls)


def _call_may_use_gpu(node: ast.Call, names: frozenset[str | None]) -> bool:
    if "accelerate.Accelerator" in names:
        return True
    accelerator = argument(node, None, "accelerator")
    if isinstance(accelerator, ast.Constant) and accelerator.value in ("gpu", "cuda"):
        return True
    # ``gpus=0`` is no GPU, but ast cannot tell ``0`` from ``0x0``, which libcst counts as one.
    gpus = argument(node, None, "gpus")
    return gpus is not None and not (isinstance(gpus, ast.Constant) and gpus.value is None)


def _is_int(expr: ast.expr | None, value: int) -> bool:
    return isinstance(expr, ast.Constant) and type(expr.value) is int and expr.value == value


def _calls_backward(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "backward"


def scan_loop(loop: ast.For | ast.AsyncFor | ast.While) -> tuple[bool, bool]:
    """Return what :class:`LoopBody` needs on ``ast``: a backward pass in the body itself, and a host read each step.

    Like ``LoopBody``, code under an ``if`` is not per-step, a backward pass in an inner loop
    is not this loop's, and nested functions, classes and lambdas are left out.
    """
    backward = reads = False
    stack: list[tuple[ast.AST, bool, bool]] = [(node, False, False) for node in loop.body]
    while stack:
        node, conditional, inner = stack.pop()
        if isinstance(node, NESTED_SCOPES):
            continue
        if isinstance(node, ast.Call):
            backward = backward or (not inner and _calls_backward(node))
            func = node.func
            sync = isinstance(func, ast.Attribute) and func.attr in SYNC_METHODS and not node.args and not node.keywords
            printed = isinstance(func, ast.Name) and func.id == "print" and bool(node.args or node.keywords)
            reads = reads or (not conditional and (sync or printed))
        if isinstance(node, ast.If):
            stack.append((node.test, conditional, inner))
            stack.extend((child, True, inner) for child in [*node.body, *node.orelse])
            continue
        in_loop = inner or isinstance(node, _LOOPS)
        stack.extend((child, conditional, in_loop) for child in ast.iter_child_nodes(node))
    return backward, reads


# -- loop analysis ---------------------------------------------------------------------

SYNC_METHODS = frozenset({"item", "cpu", "numpy", "tolist"})
#: Methods only an ``nn.Module`` has: ``m.cpu().parameters()`` moves a model, which a
#: design such as a parameter server may need, and is not a tensor read.
MODULE_METHODS = frozenset({"parameters", "named_parameters", "state_dict", "buffers", "modules", "children"})
#: Names that hold the tensors of a training step, for ``print(loss)``.
_TENSOR_NAME = re.compile(r"(^|_)(loss|losses|logits|outputs?|preds?|predictions|scores)(_|\d|$)", re.IGNORECASE)


def sync_method(call: cst.Call) -> str | None:
    """Return ``item`` for ``x.item()`` and the like: the tensor methods that copy to the host."""
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in SYNC_METHODS and not call.args:
        return func.attr.value
    return None


def receiver_syncs(call: cst.Call) -> bool:
    """Tell whether the receiver chain of a call already contains a sync call: ``x.cpu().numpy()``."""
    expr: cst.BaseExpression = call.func
    while True:
        if isinstance(expr, cst.Attribute):
            expr = expr.value
        elif isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Call):
            if expr is not call and sync_method(expr):
                return True
            expr = expr.func
        else:
            return False


class StatementVisitor(Visitor):
    """A visitor of a loop body that tracks the innermost statement around each node.

    A finding anchors to that statement, so that an inline waiver on it applies. In a
    one-line loop (``for x in xs: f(x)``) there is none inside the loop, and the loop is the anchor.
    """

    def __init__(self) -> None:
        super().__init__()
        self._statements: list[cst.CSTNode] = []

    @property
    def statement(self) -> cst.CSTNode | None:
        return self._statements[-1] if self._statements else None

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._statements.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if isinstance(original_node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            self._statements.pop()


class LoopBody(StatementVisitor):
    """The per-iteration work of one loop body: backward passes, host syncs, prints.

    Code under an ``if`` runs only on some iterations (logging every N steps), and code
    inside nested functions runs when called, so neither counts as per-step.
    """

    def __init__(self) -> None:
        super().__init__()
        #: A ``.backward()`` call in the body itself; ``nested_backward`` is one in an inner loop.
        self.backward = False
        self.nested_backward = False
        #: Per-step calls, each with its innermost enclosing statement (where an inline waiver sits).
        self.syncs: list[tuple[cst.Call, cst.CSTNode | None]] = []
        self.prints: list[tuple[cst.Call, cst.CSTNode | None]] = []
        #: Names of the step's tensors: the loss that ``.backward()`` runs on, and loss- or output-like names.
        self.tensor_names: set[str] = set()
        self._conditional = 0
        self._loops = 0
        self._module_moves: set[int] = set()

    @classmethod
    def of(cls, loop: cst.For | cst.While) -> LoopBody:
        scan = cls()
        walk(loop.body, scan)
        return scan

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_For(self, node: cst.For) -> None:
        self._loops += 1

    def leave_For(self, original_node: cst.For) -> None:
        self._loops -= 1

    def visit_While(self, node: cst.While) -> None:
        self._loops += 1

    def leave_While(self, original_node: cst.While) -> None:
        self._loops -= 1

    def visit_If(self, node: cst.If) -> bool:
        walk(node.test, self)
        self._conditional += 1
        walk(node.body, self)
        if node.orelse is not None:
            walk(node.orelse, self)
        self._conditional -= 1
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and not sync_method(node.value):
            for target in node.targets:
                if isinstance(target.target, cst.Name) and _TENSOR_NAME.search(target.target.value):
                    self.tensor_names.add(target.target.value)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "backward":
            if self._loops:
                self.nested_backward = True
            else:
                self.backward = True
            if isinstance(func.value, cst.Name):
                self.tensor_names.add(func.value.value)
        if isinstance(func, cst.Attribute) and func.attr.value in MODULE_METHODS and isinstance(func.value, cst.Call):
            self._module_moves.add(id(func.value))
        if self._conditional:
            return
        if sync_method(node) and not receiver_syncs(node) and id(node) not in self._module_moves:
            self.syncs.append((node, self.statement))
        elif isinstance(func, cst.Name) and func.value == "print":
            self.prints.append((node, self.statement))


def names_in(expr: cst.CSTNode) -> set[str]:
    """Return every plain name read inside an expression, f-strings included."""
    found: set[str] = set()

    class _Names(Visitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

        def visit_Call(self, node: cst.Call) -> bool:
            # ``len(loss)`` or ``loss.item()`` inside a print is not the tensor printed.
            return False

    walk(expr, _Names())
    return found


# -- AIML451 dataloader-underused --------------------------------------------------------


class DataLoaderUnderused(GpuModuleRule):
    """Flag ``DataLoader(...)`` in GPU code without worker processes or pinned memory."""

    code = "AIML451"
    slug = "dataloader-underused"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "GPU underutilization"
    message = "DataLoader in GPU code loads batches in the main process or from pageable memory"
    impact = (
        "With num_workers=0 every batch is read, decoded and collated in the training process while the "
        "GPU waits; without pin_memory=True each host-to-device copy goes through pageable memory and "
        "cannot overlap with compute. Both leave the GPU idle for part of every step."
    )
    fix = (
        "Pass num_workers (start from the number of CPU cores per GPU, e.g. 4 to 8) and pin_memory=True "
        "to DataLoader, and copy batches with .to(device, non_blocking=True); add persistent_workers=True "
        "when epochs are short."
    )
    prefilter = ("DataLoader",)
    fixer = DataLoaderPinMemoryFixer

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return "DataLoader" in text and bool(GPU_TEXT.search(text))

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a torch DataLoader without workers or without pinned memory, in GPU code.
        return any(_underused_loader(node, names) for node, names in facts.resolved_calls) and may_use_gpu(facts)

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        if self.context.qualified_name(node.func) not in _DATALOADERS or has_star_kwargs(node):
            return
        workers = call_argument(node, 5, "num_workers")
        pin_memory = call_argument(node, 7, "pin_memory")
        no_workers = workers is None or (isinstance(workers.value, cst.Integer) and workers.value.value == "0")
        no_pinning = pin_memory is None or is_false(pin_memory.value)
        if no_workers and no_pinning:
            problem = "sets neither num_workers nor pin_memory=True"
        elif no_workers:
            problem = "has no worker processes (num_workers is 0)" if workers is not None else "does not set num_workers"
        elif no_pinning:
            problem = "sets pin_memory=False" if pin_memory is not None else "does not set pin_memory=True"
        else:
            return
        self.defer(node, f"DataLoader() in GPU code {problem}, so the GPU waits for its batches")


def _underused_loader(node: ast.Call, names: frozenset[str | None]) -> bool:
    """Tell whether a call may be a DataLoader that AIML451 reports."""
    if names.isdisjoint(_DATALOADERS) or unpacks_kwargs(node):
        return False
    pin_memory = argument(node, 7, "pin_memory")
    no_pinning = pin_memory is None or (isinstance(pin_memory, ast.Constant) and pin_memory.value is False)
    workers = argument(node, 5, "num_workers")
    return no_pinning or workers is None or _is_int(workers, 0)


_TRAIN_PREFIX = (
    "import torch\nfrom torch.utils.data import DataLoader\n\ndevice = torch.device('cuda')\n\n"
)

DataLoaderUnderused.VALID = (
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, num_workers=8, pin_memory=True)\n"),
    # Values known only at run time are not findings.
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, num_workers=args.workers, pin_memory=use_cuda)\n"),
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, **loader_kwargs)\n"),
    # Positional arguments: dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory.
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, 64, True, None, None, 4, None, True)\n"),
    # No GPU in the module: data loading cost is the CPU's own.
    Example(source="from torch.utils.data import DataLoader\nloader = DataLoader(ds, batch_size=64)\n"),
    # A comment or unrelated name mentioning cuda is not GPU use.
    Example(source="# runs on cuda machines too\nfrom torch.utils.data import DataLoader\nloader = DataLoader(ds)\n"),
    # Another library's DataLoader is not torch's.
    Example(source="import torch\nfrom torch_geometric.loader import DataLoader\nmodel.cuda()\nloader = DataLoader(graphs)\n"),
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds)\n", path="tests/test_loader.py"),
)
DataLoaderUnderused.INVALID = (
    Example(
        source=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, num_workers=4)\n",
        lines=(6,),
        fixed=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, num_workers=4, pin_memory=True)\n",
    ),
    Example(
        source="import torch.utils.data as tud\n\nmodel = Net().cuda()\n"
        "loader = tud.DataLoader(\n    train_set,\n    batch_size=32,\n    shuffle=True,\n    num_workers=6,\n)\n",
        lines=(4,),
        fixed="import torch.utils.data as tud\n\nmodel = Net().cuda()\n"
        "loader = tud.DataLoader(\n    train_set,\n    batch_size=32,\n    shuffle=True,\n    num_workers=6,\n    pin_memory=True,\n)\n",
    ),
    Example(
        source="import torch\nfrom torch.utils.data import DataLoader\n\n"
        "def loaders(ds):\n    return DataLoader(ds, batch_size=8, num_workers=2, pin_memory=False)\n\n"
        "if torch.cuda.is_available():\n    model.to('cuda')\n",
        lines=(5,),
    ),
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, shuffle=True)\n", lines=(6,)),
    Example(source=_TRAIN_PREFIX + "loader = DataLoader(ds, batch_size=64, num_workers=0, pin_memory=True)\n", lines=(6,)),
    # ``torch.accelerator`` selects whichever accelerator is present.
    Example(
        source="import torch\nfrom torch.utils.data import DataLoader\n\ndevice = torch.accelerator.current_accelerator()\n"
        "loader = DataLoader(images, batch_size=4)\n",
        lines=(5,),
    ),
    Example(
        source="from torch.utils.data import DataLoader\nimport lightning as L\n\n"
        "trainer = L.Trainer(accelerator='gpu', devices=1)\nval = DataLoader(val_set, batch_size=128)\n",
        lines=(5,),
    ),
)


# -- AIML452 host-sync-in-training-loop --------------------------------------------------


class HostSyncInTrainingLoop(GpuModuleRule):
    """Flag tensor copies to the host (``.item()``, ``.cpu()``, ``print(loss)``) on every training step."""

    code = "AIML452"
    slug = "host-sync-in-training-loop"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.LOW
    anti_pattern = "GPU underutilization"
    message = "a tensor is copied to the host on every training step, which synchronises the GPU"
    impact = (
        "CUDA runs asynchronously: the Python loop queues kernels ahead of the GPU. .item(), .cpu(), "
        ".numpy(), .tolist() and print(tensor) wait for every queued kernel and copy the result back, "
        "so the queue drains each step and the GPU idles while Python prepares the next one."
    )
    fix = (
        "Keep running metrics on the device (total_loss += loss.detach()) and read them once per log "
        "interval under a condition (if step % log_every == 0: print(loss.item())) or after the loop."
    )
    prefilter = (".backward(",)

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return ".backward(" in text and bool(GPU_TEXT.search(text))

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a loop that calls backward() itself and reads a tensor or prints
        # outside any ``if`` on every iteration, in GPU code.
        return any(all(scan_loop(loop)) for loop in facts.nodes(*_LOOPS)) and may_use_gpu(facts)

    def __init__(self, context: ModuleContext) -> None:
        super().__init__(context)
        self._reported: set[int] = set()

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._check_loop(node)

    def _check_loop(self, loop: cst.For | cst.While) -> None:
        body = LoopBody.of(loop)
        if not body.backward:
            return
        for call, statement in body.syncs:
            message = f"{shorten(self.context.module, call)} runs on every training step and waits for the GPU"
            self._flag(call, message, statement)
        for call, statement in body.prints:
            printed = set().union(*(names_in(arg.value) for arg in call.args)) if call.args else set()
            tensors = sorted(printed & body.tensor_names)
            if tensors:
                message = f"print({tensors[0]}) copies a tensor to the host on every training step, waiting for the GPU"
                self._flag(call, message, statement)

    def _flag(self, node: cst.Call, message: str, statement: cst.CSTNode | None) -> None:
        if id(node) not in self._reported:
            self._reported.add(id(node))
            self.defer(node, message, statement)


_LOOP_HEAD = (
    "import torch\n\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n\n"
    "def train(model, loader, optimizer, criterion):\n"
    "    for step, (x, y) in enumerate(loader):\n"
    "        x, y = x.to(device), y.to(device)\n"
    "        loss = criterion(model(x), y)\n"
    "        optimizer.zero_grad()\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
)

HostSyncInTrainingLoop.VALID = (
    # Logging every N steps under a condition.
    Example(source=_LOOP_HEAD + "        if step % 100 == 0:\n            print(step, loss.item())\n"),
    # After the loop.
    Example(source=_LOOP_HEAD + "    print(loss.item())\n    return loss.cpu().numpy()\n"),
    # Running totals stay on the device.
    Example(source=_LOOP_HEAD + "        total = total + loss.detach()\n"),
    # An evaluation loop has no backward pass.
    Example(
        source="import torch\nmodel.cuda()\nwith torch.no_grad():\n    for x, y in loader:\n"
        "        correct += (model(x.cuda()).argmax(1) == y.cuda()).sum().item()\n"
    ),
    # No GPU in the module.
    Example(source="def train(model, loader, opt):\n    for x, y in loader:\n        loss = model(x, y)\n"
            "        loss.backward()\n        opt.step()\n        print(loss.item())\n"),
    # Printing plain Python values is free.
    Example(source=_LOOP_HEAD + "        print(step, len(x))\n"),
    # The epoch loop: the sync happens once per epoch, after the step loop.
    Example(
        source="import torch\nmodel.cuda()\nfor epoch in range(10):\n    for x, y in loader:\n"
        "        loss = model(x.cuda(), y.cuda())\n        loss.backward()\n        opt.step()\n"
        "    print(epoch, loss.item())\n"
    ),
    # A nested helper function runs when it is called, not each step.
    Example(source=_LOOP_HEAD + "        def report():\n            return loss.item()\n"),
    # Moving a model to the host to send its gradients (a parameter server) is the design, not a tensor read.
    Example(source=_LOOP_HEAD + "        grads = [p.grad for p in model.cpu().parameters()]\n"),
)
HostSyncInTrainingLoop.INVALID = (
    Example(source=_LOOP_HEAD + "        running_loss += loss.item()\n", lines=(12,)),
    Example(source=_LOOP_HEAD + "        preds = model(x).argmax(1).cpu().numpy()\n", lines=(12,)),
    Example(source=_LOOP_HEAD + "        print(loss)\n", lines=(12,)),
    Example(source=_LOOP_HEAD + "        print(f'step {step}: {loss}')\n        history.append(loss.tolist())\n", lines=(12, 13)),
    # The condition itself runs every step.
    Example(source=_LOOP_HEAD + "        if loss.item() > 1e3:\n            break\n", lines=(12,)),
    Example(
        source="import torch\nfrom accelerate import Accelerator\n\naccelerator = Accelerator()\n"
        "step = 0\nwhile step < max_steps:\n    outputs = model(**next(batches))\n"
        "    accelerator.backward(outputs.loss)\n    optimizer.step()\n    bar.set_postfix(loss=outputs.loss.item())\n"
        "    step += 1\n",
        lines=(10,),
    ),
)


# -- AIML453 per-sample-inference-loop ---------------------------------------------------

_MODEL_NAME = re.compile(
    r"(^|_)(model|net|network|classifier|encoder|decoder|detector|predictor|backbone|generator|policy|clf)s?$"
    r"|^[a-z]*net\d*$",
    re.IGNORECASE,
)
_MODEL_METHODS = frozenset({"forward", "predict", "infer", "generate", "encode"})
#: Tensor methods that change dtype or device and keep the batch of one.
_KEEPING_METHODS = frozenset({"to", "cuda", "float", "half", "double", "long", "int", "bfloat16", "contiguous", "detach"})
_RESHAPES = frozenset({"view", "reshape"})


def model_callee(call: cst.Call) -> str | None:
    """Return the model's name when a call runs a model: ``model(x)``, ``self.net(x)``, ``model.predict(x)``."""
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in _MODEL_METHODS:
        func = func.value
    if isinstance(func, cst.Attribute):
        name = func.attr.value
    elif isinstance(func, cst.Name):
        name = func.value
    else:
        return None
    return name if _MODEL_NAME.search(name) else None


def _is_zero(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == "0"


def _is_one(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == "1"


@dataclass
class BatchOfOne:
    """Recognises expressions that wrap one sample into a batch of one, and what they wrap."""

    context: ModuleContext

    def base(self, expr: cst.BaseExpression) -> cst.BaseExpression | None:
        """Return the sample inside ``x.unsqueeze(0)``, ``x[None]``, ``x.view(1, -1)`` or ``np.expand_dims(x, 0)``."""
        while (
            isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value in _KEEPING_METHODS
        ):
            expr = expr.func.value
        if isinstance(expr, cst.Subscript):
            first = expr.slice[0].slice if expr.slice else None
            if isinstance(first, cst.Index) and isinstance(first.value, cst.Name) and first.value.value == "None":
                return expr.value
            if isinstance(first, cst.Index) and self.context.qualified_name(first.value) == "numpy.newaxis":
                return expr.value
            return None
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        # The functions first: ``torch.unsqueeze(x, 0)`` is an attribute call too, whose first argument is the sample.
        name = self.context.qualified_name(func)
        if name in ("torch.unsqueeze", "numpy.expand_dims"):
            sample = call_argument(expr, 0, "input" if name == "torch.unsqueeze" else "a")
            dim = call_argument(expr, 1, "dim" if name == "torch.unsqueeze" else "axis")
            if sample is not None and dim is not None and _is_zero(dim.value):
                return sample.value
            return None
        if isinstance(func, cst.Attribute) and func.attr.value == "unsqueeze":
            dim = call_argument(expr, 0, "dim")
            return func.value if dim is not None and _is_zero(dim.value) else None
        if isinstance(func, cst.Attribute) and func.attr.value in _RESHAPES:
            first_arg = call_argument(expr, 0, None)
            return func.value if first_arg is not None and _is_one(first_arg.value) else None
        return None


def loop_targets(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return set().union(*(loop_targets(element.value) for element in target.elements))
    return set()


class PerSampleInferenceLoop(GpuModuleRule):
    """Flag loops that run a model on one sample at a time: ``for x in xs: model(x.unsqueeze(0))``."""

    code = "AIML453"
    slug = "per-sample-inference-loop"
    category = Category.TRAINING
    priority = Priority.HIGH
    effort = Effort.MEDIUM
    anti_pattern = "GPU underutilization"
    message = "a model runs on one sample per loop iteration instead of on batches"
    impact = (
        "A GPU needs many samples per kernel launch to fill its cores; a batch of one pays the full "
        "launch, transfer and Python overhead for a sliver of work, so inference runs many times slower "
        "than batched inference on the same hardware."
    )
    fix = (
        "Stack the samples into batches (torch.stack, a DataLoader with batch_size > 1, or "
        "pipeline(..., batch_size=N)) and run the model once per batch under torch.inference_mode(); "
        "keep per-sample loops only where each step depends on the previous output."
    )
    prefilter = ("unsqueeze", "None]", "expand_dims", "newaxis", "view(1", "reshape(1")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and bool(GPU_TEXT.search(text))

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs a for loop without a backward pass whose own body (inner for loops and
        # functions aside) calls something named like a model and builds a batch of one, in GPU code.
        loops = facts.nodes(ast.For, ast.AsyncFor)
        return any(_may_run_per_sample(loop, facts) for loop in loops) and may_use_gpu(facts)

    def visit_For(self, node: cst.For) -> None:
        targets = loop_targets(node.target)
        if not targets:
            return
        body = LoopBody.of(node)
        if body.backward or body.nested_backward:
            return
        finder = _SampleCalls(self.context, targets)
        walk(node.body, finder)
        loop_names = ", ".join(sorted(targets))
        for call, model, statement in finder.calls:
            self.defer(
                call,
                f"{shorten(self.context.module, call)} runs {model} on one sample per iteration of the loop over "
                f"{loop_names}; batch the samples instead",
                statement,
            )


def _may_run_per_sample(loop: ast.For | ast.AsyncFor, facts: AstFacts) -> bool:
    if not isinstance(loop.target, (ast.Name, ast.Tuple, ast.List)):
        return False
    if any(_calls_backward(node) for node in own_nodes(loop.body)):
        return False
    nodes = own_nodes(loop.body, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.For, ast.AsyncFor))
    calls = [node for node in nodes if isinstance(node, ast.Call) and (node.args or node.keywords)]
    return any(_runs_model(call) for call in calls) and any(_batch_of_one(node, facts) for node in nodes)


def _runs_model(call: ast.Call) -> bool:
    """The ``ast`` version of :func:`model_callee`."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _MODEL_METHODS:
        func = func.value
    if isinstance(func, ast.Attribute):
        return _MODEL_NAME.search(func.attr) is not None
    return isinstance(func, ast.Name) and _MODEL_NAME.search(func.id) is not None


def _batch_of_one(node: ast.AST, facts: AstFacts) -> bool:
    """Tell whether ``BatchOfOne.base`` may recognise the node: ``x[None]``, ``x.unsqueeze(0)``, ``x.view(1, ...)``."""
    if isinstance(node, ast.Subscript):
        first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
        return (isinstance(first, ast.Constant) and first.value is None) or "numpy.newaxis" in facts.resolutions(first)
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if not facts.resolutions(func).isdisjoint({"torch.unsqueeze", "numpy.expand_dims"}):
        return True
    if isinstance(func, ast.Attribute) and func.attr == "unsqueeze":
        return _is_int(argument(node, 0, "dim"), 0)
    if isinstance(func, ast.Attribute) and func.attr in _RESHAPES:
        return _is_int(argument(node, 0, None), 1)
    return False


class _SampleCalls(StatementVisitor):
    """Finds model calls on a batch of one built from the loop's own sample."""

    def __init__(self, context: ModuleContext, targets: set[str]) -> None:
        super().__init__()
        self.batch = BatchOfOne(context)
        self.targets = targets
        #: Names bound in the loop to a batch of one of the sample: ``x = img.unsqueeze(0)``.
        self.sample_names: set[str] = set()
        self.calls: list[tuple[cst.Call, str, cst.CSTNode | None]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_For(self, node: cst.For) -> bool:
        # An inner loop is checked on its own visit.
        return False

    def _from_sample(self, expr: cst.BaseExpression) -> bool:
        base = self.batch.base(expr)
        return base is not None and bool(names_in_all(base) & (self.targets | self.sample_names))

    def visit_Assign(self, node: cst.Assign) -> None:
        if self._from_sample(node.value):
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self.sample_names.add(target.target.value)

    def visit_Call(self, node: cst.Call) -> None:
        model = model_callee(node)
        if model is None or not node.args:
            return
        for arg in node.args:
            value = arg.value
            while (
                isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                and value.func.attr.value in _KEEPING_METHODS
            ):
                value = value.func.value
            if self._from_sample(arg.value) or (isinstance(value, cst.Name) and value.value in self.sample_names):
                self.calls.append((node, model, self.statement))
                return


def names_in_all(expr: cst.CSTNode) -> set[str]:
    """Return every plain name inside an expression, calls included: ``transform(img)`` reads ``img``."""
    found: set[str] = set()

    class _Names(Visitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    walk(expr, _Names())
    return found


_INFER_HEAD = "import torch\n\nmodel = load_model().cuda().eval()\n\n"

PerSampleInferenceLoop.VALID = (
    Example(source=_INFER_HEAD + "batch = torch.stack(images).cuda()\nwith torch.no_grad():\n    out = model(batch)\n"),
    # A DataLoader's batches.
    Example(source=_INFER_HEAD + "for x, _ in loader:\n    out = model(x.cuda())\n"),
    # Autoregressive decoding: each step needs the previous output.
    Example(
        source=_INFER_HEAD + "for _ in range(max_new_tokens):\n    logits = model(idx[:, -block:])\n"
        "    idx = torch.cat([idx, logits[:, -1:].argmax(-1)], dim=1)\n"
    ),
    # Not a model: a preprocessing function.
    Example(source=_INFER_HEAD + "for img in images:\n    feats.append(normalize(img.unsqueeze(0)))\n"),
    # Training one sample at a time is another concern.
    Example(source=_INFER_HEAD + "for x in samples:\n    loss = model(x.unsqueeze(0)).sum()\n    loss.backward()\n"),
    # No GPU in the module.
    Example(source="for x in samples:\n    print(model(x.unsqueeze(0)))\n"),
    # Reinforcement learning: each state is the environment's response to the previous action.
    Example(
        source=_INFER_HEAD + "for t in range(10000):\n    state = torch.from_numpy(state).float().unsqueeze(0).cuda()\n"
        "    action = policy(state).argmax()\n    state, reward, done, _ = env.step(action.item())\n"
    ),
    # unsqueeze(1) adds a channel, not a batch dimension.
    Example(source=_INFER_HEAD + "for batch in loader:\n    out = model(torch.unsqueeze(batch, 1).cuda())\n"),
    Example(source=_INFER_HEAD + "for batch in loader:\n    out = model(batch.unsqueeze(1).cuda())\n"),
)
PerSampleInferenceLoop.INVALID = (
    Example(source=_INFER_HEAD + "for x in samples:\n    preds.append(model(x.unsqueeze(0)))\n", lines=(6,)),
    Example(source=_INFER_HEAD + "for x in samples:\n    preds.append(model(torch.unsqueeze(x, 0)))\n", lines=(6,)),
    Example(source=_INFER_HEAD + "for x in samples:\n    preds.append(model(torch.unsqueeze(x, dim=0)))\n", lines=(6,)),
    Example(
        source=_INFER_HEAD + "with torch.no_grad():\n    for img, label in dataset:\n"
        "        out = model(img[None].to('cuda'))\n",
        lines=(7,),
    ),
    Example(
        source=_INFER_HEAD + "for path in paths:\n    x = transform(open_image(path)).unsqueeze(0)\n"
        "    scores.append(model(x.cuda()))\n",
        lines=(7,),
    ),
    Example(
        source="import numpy as np\nimport torch\n\nclassifier = Classifier().to('cuda')\n"
        "for row in rows:\n    y = classifier.predict(np.expand_dims(row, 0))\n",
        lines=(6,),
    ),
    Example(
        source="import torch\nresnet = resnet50().cuda()\nfor x in xs:\n    out = resnet(x.view(1, 3, 224, 224))\n",
        lines=(4,),
    ),
)


# -- AIML454 no-mixed-precision ----------------------------------------------------------

#: Text of any precision choice: autocast, a GradScaler, a Lightning or accelerate
#: precision setting, half or bfloat16 weights, TF32 matmuls. A module that makes one
#: has decided on precision on purpose.
PRECISION_TEXT = re.compile(
    r"autocast|GradScaler|\bamp\b|mixed_precision|precision\s*=|\.half\(|bfloat16|float16|\bfp16\b|\bbf16\b|"
    r"allow_tf32|set_float32_matmul_precision|set_global_policy"
)


class NoMixedPrecision(GpuModuleRule):
    """Flag GPU training loops that run entirely in float32."""

    code = "AIML454"
    slug = "no-mixed-precision"
    category = Category.TRAINING
    priority = Priority.MEDIUM
    effort = Effort.LOW
    anti_pattern = "GPU underutilization"
    message = "a GPU training loop runs in float32 without mixed precision"
    impact = (
        "Tensor cores of GPUs since Volta run float16 and bfloat16 matrix products several times faster "
        "than float32 and halve activation memory; a float32-only loop leaves most of that throughput unused."
    )
    fix = (
        "Wrap the forward pass and loss in torch.autocast('cuda', dtype=torch.bfloat16) (or float16 with "
        "torch.amp.GradScaler), set Trainer(precision='bf16-mixed') in Lightning, Accelerator(mixed_precision="
        "'bf16') in accelerate, or keras.mixed_precision.set_global_policy('mixed_float16')."
    )
    prefilter = (".backward(", "Trainer(")

    @classmethod
    def applies_to(cls, path: str, text: str) -> bool:
        return cls.matches_text(text) and bool(GPU_TEXT.search(text)) and not PRECISION_TEXT.search(text)

    has_candidate_check = True

    @classmethod
    def candidate(cls, facts: AstFacts) -> bool:
        # Every report needs, in GPU code, a loop that calls backward() itself, or a Lightning
        # Trainer that requests a GPU without precision=.
        loops = any(scan_loop(loop)[0] for loop in facts.nodes(*_LOOPS))
        trainers = any(_float32_trainer(node, names) for node, names in facts.resolved_calls)
        return (loops or trainers) and may_use_gpu(facts)

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self._check_loop(node)

    def _check_loop(self, loop: cst.For | cst.While) -> None:
        if LoopBody.of(loop).backward:
            self.defer(loop, "this training loop runs on the GPU in float32: no torch.autocast or GradScaler in the module")

    def visit_Call(self, node: cst.Call) -> None:
        super().visit_Call(node)
        if self.context.qualified_name(node.func) not in _LIGHTNING_TRAINERS or has_star_kwargs(node):
            return
        if self._call_uses_gpu(node) and keyword_value(node, "precision") is None:
            self.defer(node, "Trainer() trains on the GPU without precision=, so Lightning uses float32")


def _float32_trainer(node: ast.Call, names: frozenset[str | None]) -> bool:
    if names.isdisjoint(_LIGHTNING_TRAINERS) or unpacks_kwargs(node) or argument(node, None, "precision") is not None:
        return False
    return _call_may_use_gpu(node, names)


_FP32_LOOP = (
    "import torch\n\nmodel = Net().cuda()\n"
    "for x, y in loader:\n"
    "    loss = criterion(model(x.cuda()), y.cuda())\n"
    "    optimizer.zero_grad()\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
)

NoMixedPrecision.VALID = (
    Example(
        source="import torch\n\nmodel = Net().cuda()\nscaler = torch.amp.GradScaler()\nfor x, y in loader:\n"
        "    with torch.autocast('cuda', dtype=torch.float16):\n        loss = criterion(model(x.cuda()), y.cuda())\n"
        "    scaler.scale(loss).backward()\n    scaler.step(optimizer)\n    scaler.update()\n"
    ),
    Example(source=_FP32_LOOP.replace("model = Net().cuda()", "model = Net().cuda().to(torch.bfloat16)")),
    Example(source="import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n" + _FP32_LOOP.split("\n", 1)[1]),
    Example(source="import lightning as L\ntrainer = L.Trainer(accelerator='gpu', precision='bf16-mixed')\ntrainer.fit(model)\n"),
    Example(source="from accelerate import Accelerator\naccelerator = Accelerator(mixed_precision='fp16')\n"
            "for batch in loader:\n    loss = model(**batch).loss\n    accelerator.backward(loss)\n"),
    # A CPU loop.
    Example(source="for x, y in loader:\n    loss = criterion(model(x), y)\n    loss.backward()\n    optimizer.step()\n"),
    # GPU inference without a backward pass.
    Example(source="import torch\nmodel = Net().cuda()\nfor x in loader:\n    out = model(x.cuda())\n"),
    Example(source="import lightning as L\ntrainer = L.Trainer(accelerator='cpu')\ntrainer.fit(model)\n"),
)
NoMixedPrecision.INVALID = (
    Example(source=_FP32_LOOP, lines=(4,)),
    Example(
        source="import torch\n\ndef train(model, loader, opt, device='cuda'):\n    model.to(device)\n"
        "    for epoch in range(3):\n        for x, y in loader:\n            loss = model(x.to(device), y.to(device))\n"
        "            loss.backward()\n            opt.step()\n",
        lines=(6,),
    ),
    Example(
        source="import lightning as L\n\ntrainer = L.Trainer(accelerator='gpu', devices=4, max_epochs=10)\ntrainer.fit(model, dm)\n",
        lines=(3,),
    ),
    Example(
        source="import pytorch_lightning as pl\n\ntrainer = pl.Trainer(gpus=2)\ntrainer.fit(model)\n",
        lines=(3,),
    ),
)

RULES = (DataLoaderUnderused, HostSyncInTrainingLoop, PerSampleInferenceLoop, NoMixedPrecision)
