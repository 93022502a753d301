"""Where models live and how a model name resolves.

The embedded default twin of a real env id is an HF model directory at
``WMGYM_HOME/models/<real id>`` (``config.json``, ``model.safetensors``, the
tokenizer files with a chat template). ``wmgym train default --env ID`` makes it.
"""

from __future__ import annotations

from pathlib import Path

from wmgym.envs.cache import wmgym_home


def default_model_dir(env_id: str) -> Path:
    """Directory of the embedded default world model of real env ``env_id``."""
    return wmgym_home() / "models" / env_id


def train_default_command(env_id: str) -> str:
    """The one command that trains the embedded default of ``env_id``."""
    return f"wmgym train default --env {env_id}"
