"""Serving checks: model loading, ONNX/Torch parity, input-validation probes, latency.

This package is part of the engine and imports no pytest. Its modules, one concern
each, and their entry points:

- :mod:`~pytest_aiml.serving.spec`: ``parse_model_specs``, ``pair_artifacts`` and
  ``resolve_reference`` for the ``[tool.pytest-aiml.models.<name>]`` tables;
- :mod:`~pytest_aiml.serving.tolerance`: default tolerances per dtype and
  ``compare_outputs``;
- :mod:`~pytest_aiml.serving.inputs`: ``generate_input_groups`` from the ONNX
  signature or declared inputs;
- :mod:`~pytest_aiml.serving.loading`: TorchScript, ``torch.export``, factory plus
  state dict, and onnxruntime sessions;
- :mod:`~pytest_aiml.serving.runtime`: running either model on an input group;
- :mod:`~pytest_aiml.serving.parity`: ``check_parity`` and ``check_model_parity``;
- :mod:`~pytest_aiml.serving.probes`: ``run_probes`` and the per-target probe
  functions;
- :mod:`~pytest_aiml.serving.latency`: ``check_latency`` and
  ``check_model_latency``.

Importing this package imports nothing. torch, onnx and onnxruntime are imported
only inside the functions that need them, and numpy by the modules that use it.
"""
