"""World models: the chat protocol, model loading and the backends (hf, openai, vllm).

``load_world_model(model, backend="hf", **kwargs)`` gives an object that follows
:class:`~wmgym.worldmodels.base.WorldModel`. Backends import their heavy
dependencies only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wmgym.worldmodels.base import WMStep, WorldModel

#: Backend name -> "module:class" (imported on use).
BACKENDS = {
    "hf": "wmgym.worldmodels.hf:HFWorldModel",
    "openai": "wmgym.worldmodels.openai_backend:OpenAIWorldModel",
    "vllm": "wmgym.worldmodels.vllm_backend:VLLMWorldModel",
}


def load_world_model(model: str | Path, backend: str = "hf", **kwargs: Any) -> WorldModel:
    """Load a world model.

    Args:
        model: local model directory or hub id (``hf``, ``vllm``); for ``openai`` the served model name
            (with ``base_url=`` among the kwargs).
        backend: ``"hf"``, ``"openai"`` or ``"vllm"``.
        **kwargs: backend options and generation settings (``max_new_tokens``, ``temperature``, ...).
    """
    import importlib

    if backend not in BACKENDS:
        raise ValueError(f"unknown world-model backend {backend!r}; valid backends: {sorted(BACKENDS)}")
    module, _, cls = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module), cls)(model, **kwargs)


__all__ = ["BACKENDS", "WMStep", "WorldModel", "load_world_model"]
