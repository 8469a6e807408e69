# Copyright 2026 The vreason-hf contributors. Licensed under the Apache License, Version 2.0.
"""Integrations with evaluation harnesses. Each lives in its own module and imports its harness only there.

- ``lmms_eval``: the lmms-eval model ``vreason`` (``python -m vreason_hf.integrations.lmms_eval ...``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["lmms_eval_manifest"]


def lmms_eval_manifest() -> Any:
    """lmms-eval's model manifest for ``vreason``: the payload of this package's ``lmms_eval.models`` entry point.

    lmms-eval loads the entry points of the ``lmms_eval.models`` group while it builds its model registry, so this
    function must not import ``vreason_hf.integrations.lmms_eval`` (which imports lmms-eval's model package): the
    manifest names the class by its path and lmms-eval imports it when the model is asked for.

    Returns:
        `lmms_eval.models.registry_v2.ModelManifest`: ``vreason`` →
        ``vreason_hf.integrations.lmms_eval.VReasonLMM`` (a "simple" model).
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="vreason", simple_class_path="vreason_hf.integrations.lmms_eval.VReasonLMM")
