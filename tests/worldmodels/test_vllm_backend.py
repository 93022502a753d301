"""The vllm backend: a clear error without vLLM; the real engine where the CPU wheel's venv exists."""

from __future__ import annotations

import importlib.util

import pytest

from wmgym.worldmodels import load_world_model


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_names_the_extra(tiny_model_dir):
    with pytest.raises(ImportError, match=r"pip install wmgym\[gpu\]"):
        load_world_model(tiny_model_dir, backend="vllm")
