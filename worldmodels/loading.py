"""Where models live and how a model name resolves.

The embedded default twin of a real env id is an HF model directory at
``WMGYM_HOME/models/<real id>`` (``config.json``, ``model.safetensors``, the
tokenizer files with a chat template). ``wmgym train default --env ID`` makes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from wmgym.paths import wmgym_home


def default_model_dir(env_id: str) -> Path:
    """Directory of the embedded default world model of real env ``env_id``."""
    return wmgym_home() / "models" / env_id


def train_default_command(env_id: str) -> str:
    """The one command that trains the embedded default of ``env_id``."""
    return f"wmgym train default --env {env_id}"


def trained_default_dir(env_id: str, instead: str) -> Path:
    """:func:`default_model_dir` of ``env_id`` once trained; else a FileNotFoundError naming the command that
    trains it and ``instead``, the caller's way to pass another model (e.g. ``"--model DIR"``)."""
    path = default_model_dir(env_id)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no world model for {env_id} at {path}; train the default with "
                                f"`{train_default_command(env_id)}`, or pass {instead}")
    return path


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the hub (any of 1/true/yes/on)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model(model: str | Path) -> str:
    """Check a model name and return what ``from_pretrained`` should load.

    A local directory must hold ``config.json``. Anything else is taken for a
    hub id (``org/name``); with ``HF_HUB_OFFLINE=1`` that fails at once,
    instead of waiting on the network, with a message saying so.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model directory {str(path)!r} has no config.json; a world model directory "
                                    "holds config.json, model.safetensors and the tokenizer files")
        return str(path)
    name = str(model)
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep + os.sep in name
    if looks_like_path or not name.strip():
        raise FileNotFoundError(f"model directory {name!r} does not exist")
    if hub_offline():
        raise FileNotFoundError(f"model {name!r} is not a local directory and HF_HUB_OFFLINE=1 forbids the hub; "
                                "pass the directory of a downloaded model, or unset HF_HUB_OFFLINE")
    return name
