"""Loading the runnable models a repository declares.

Four sources are supported, each the repository's own declaration:

- a TorchScript file (``torch.jit.save``), loaded with ``torch.jit.load``;
- a ``torch.export`` program (``torch.export.save``, usually ``.pt2``), loaded with
  ``torch.export.load(...).module()``;
- a factory ``module:callable`` that returns an ``nn.Module``, plus a state dict
  loaded with ``torch.load(weights, weights_only=True)`` so that the weights file
  cannot run code while it is unpickled;
- an ONNX file, opened as an onnxruntime ``InferenceSession`` on the CPU provider,
  with the CUDA provider first when onnxruntime has it and the caller asks for it.

TorchScript and ``torch.export`` files are both zip archives. They are
distinguished by their entries, not by the suffix: TorchScript has ``code/`` and
``constants.pkl``, and ``torch.export`` has ``archive_format`` and ``models/``. Note that loading
TorchScript runs the TorchScript code stored in the file, which is why only
declared or paired files are loaded.

Every failure raises :class:`ModelLoadError` naming the file or reference. torch and
onnxruntime are imported inside the functions, never at module import.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from pytest_aiml.serving.spec import ModelSpec, resolve_reference

__all__ = [
    "ModelLoadError",
    "build_from_factory",
    "load_onnx_session",
    "load_torch_file",
    "load_torch_model",
    "onnx_providers",
    "torch_file_format",
]

logger = logging.getLogger("pytest_aiml.serving")

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


class ModelLoadError(RuntimeError):
    """A declared model could not be loaded; ``source`` is the file or reference."""

    def __init__(self, source: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.problem = problem
        self.fix = fix
        text = f"cannot load model {source}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


def torch_file_format(path: Path) -> str:
    """Return ``"torchscript"``, ``"torch.export"`` or ``"state_dict"`` for a Torch zip file.

    ``"state_dict"`` covers any other ``torch.save`` archive (state dicts, pickled
    modules). Raises ``ModelLoadError`` for a file that is not a zip archive, such
    as a legacy (pre-1.6) ``torch.save`` file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(str(path), f"not a zip archive ({exc})",
                             "save the model with torch.jit.save or torch.export.save") from exc
    if any(name.endswith("/archive_format") for name in names) or any("/models/" in name for name in names):
        return "torch.export"
    if any(name.endswith("/constants.pkl") for name in names) and any("/code/" in name for name in names):
        return "torchscript"
    return "state_dict"


def load_torch_file(path: Path) -> Any:
    """Load a TorchScript or ``torch.export`` file to CPU and return the callable module."""
    import torch

    file_format = torch_file_format(path)
    if file_format == "state_dict":
        raise ModelLoadError(str(path), "the file is a torch.save archive (state dict or pickled "
                                        "module), not TorchScript or torch.export",
                             "declare factory = 'module:callable' with weights = this file")
    try:
        if file_format == "torchscript":
            module = torch.jit.load(str(path), map_location="cpu")
        else:
            module = torch.export.load(str(path)).module()
    except Exception as exc:  # torch raises many unrelated types for a broken archive
        raise ModelLoadError(str(path), f"{file_format} load failed: {type(exc).__name__}: {exc}",
                             "re-save the model with the torch version the tests use") from exc
    logger.debug("loaded %s model from %s", file_format, path)
    return _as_eval(module)


def build_from_factory(factory: Callable[[], Any], weights: Path | None, *, reference: str) -> Any:
    """Call ``factory()`` and load ``weights`` into the module with ``weights_only=True``.

    ``reference`` is the ``module:callable`` string, used in error messages. The
    state dict must match the module exactly (``strict=True``), so a renamed or
    missing parameter fails here instead of leaving random weights in place.
    """
    import torch

    try:
        module = factory()
    except Exception as exc:  # the factory is user code and may raise anything
        raise ModelLoadError(reference, f"factory raised {type(exc).__name__}: {exc}",
                             "make the factory callable without arguments") from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(reference, f"factory returned {type(module).__name__}, not a torch.nn.Module",
                             "return the nn.Module from the factory")
    if weights is not None:
        try:
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
        except Exception as exc:  # includes the UnpicklingError of weights_only
            raise ModelLoadError(str(weights), f"torch.load(weights_only=True) failed: "
                                               f"{type(exc).__name__}: {exc}",
                                 "save only the state dict: torch.save(model.state_dict(), path)") from exc
        if not isinstance(state, dict):
            raise ModelLoadError(str(weights), f"contains a {type(state).__name__}, not a state dict",
                                 "save only the state dict: torch.save(model.state_dict(), path)")
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(str(weights), f"state dict does not match the module from "
                                               f"{reference}: {exc}",
                                 "save the weights from the same architecture") from exc
    return _as_eval(module)


def load_torch_model(spec: ModelSpec, root: Path) -> Any:
    """Load the Torch side of ``spec``: its ``torch`` file or its ``factory`` and ``weights``.

    Raises ``ModelLoadError`` when loading fails and ``ConfigError`` when the
    factory reference cannot be imported.
    """
    if spec.torch is not None:
        return load_torch_file(spec.torch)
    if spec.factory is not None:
        factory = resolve_reference(spec.factory, root, f"{spec.key or 'models.' + spec.name}.factory")
        return build_from_factory(factory, spec.weights, reference=spec.factory)
    raise ModelLoadError(spec.name, "no Torch model declared", "set 'torch' or 'factory'")


def onnx_providers(*, use_cuda: bool = True) -> tuple[str, ...]:
    """Return the onnxruntime providers to use: CUDA first when available and wanted, then CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    providers = [CPU_PROVIDER]
    if use_cuda and CUDA_PROVIDER in available:
        providers.insert(0, CUDA_PROVIDER)
    return tuple(providers)


def load_onnx_session(
    path: Path,
    *,
    providers: Sequence[str] | None = None,
    intra_op_threads: int = 0,
) -> Any:
    """Open ``path`` as an onnxruntime ``InferenceSession``.

    ``providers`` defaults to :func:`onnx_providers` (CUDA when present, then CPU).
    ``intra_op_threads`` of 0 keeps onnxruntime's default thread count.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    # Quiet onnxruntime's own warnings (severity 3 = error and above).
    options.log_severity_level = 3
    chosen = tuple(providers) if providers is not None else onnx_providers()
    try:
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=list(chosen))
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelLoadError(str(path), f"onnxruntime could not open the file: {exc}",
                             "check that the file is a valid ONNX model (onnx.checker.check_model)") from exc
    logger.debug("opened ONNX session for %s with providers %s", path, session.get_providers())
    return session


def _as_eval(module: Any) -> Any:
    # Dropout and batch-norm statistics must be frozen for parity and latency.
    # torch.export modules reject .eval() in some torch versions, so tolerate that.
    eval_method = getattr(module, "eval", None)
    if eval_method is not None:
        try:
            eval_method()
        except NotImplementedError:
            logger.debug("module %s does not support eval(); using it as loaded", type(module).__name__)
    return module
