"""Shared test setup: an isolated WMGYM_HOME and one torch thread per process."""

from __future__ import annotations

import os
import tempfile

# Set before wmgym is imported anywhere so every cache path lands in the test home.
# Reuse a suite-wide home across runs only when WMGYM_TEST_HOME says so (keeps games cached locally).
_HOME = os.environ.get("WMGYM_TEST_HOME") or tempfile.mkdtemp(prefix="wmgym-test-home-")
os.environ["WMGYM_HOME"] = _HOME
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

import pytest  # noqa: E402

import wmgym  # noqa: E402,F401 - registers every id


@pytest.fixture(scope="session")
def wmgym_home() -> str:
    """The WMGYM_HOME the whole test session uses."""
    return _HOME
