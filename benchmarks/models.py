"""The world-model flags of the model benchmarks, and loading the models they name.

- :func:`add_model_args`: ``--model`` (a directory, a hub id, or ``ENV=DIR``
  per env; default: each env's embedded model under
  ``WMGYM_HOME/models/<env>``), ``--backend`` (hf | openai | vllm) and
  ``--wm-arg KEY=VALUE`` for backend and generation settings, ``--wm-endpoint URL``
  (repeatable: twin inference spread round-robin over several OpenAI-compatible
  servers of the same model; implies ``--backend openai``).
- :func:`wm_settings`: the backend and its settings those flags give.
- :func:`model_names` / :func:`load_models` / :func:`describe_models`: which
  model each env uses, loaded once per distinct model.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The world-model flags every model benchmark takes."""
    parser.add_argument("--model", action="append", default=None, metavar="DIR|HUB_ID|ENV=DIR",
                        help="world model: one for every env, or ENV=DIR per env (repeatable); "
                             "default: each env's embedded model (wmgym train default --env ID)")
    parser.add_argument("--backend", default="hf", help="world-model backend: hf | openai | vllm")
    parser.add_argument("--wm-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="backend/generation setting, e.g. max_new_tokens=128 or base_url=http://... "
                             "(repeatable; values are read as JSON when they parse)")
    parser.add_argument("--wm-endpoint", action="append", default=[], metavar="URL",
                        help="OpenAI-compatible world-model server, e.g. http://host:8000/v1 (repeatable: requests "
                             "go round-robin, a dead endpoint's go to the others; implies --backend openai; "
                             "--model names the served model)")


def wm_settings(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The backend and its keyword arguments from ``--backend``, ``--wm-arg`` and ``--wm-endpoint``."""
    kwargs = parse_kv(args.wm_arg)
    endpoints = list(getattr(args, "wm_endpoint", None) or [])
    if not endpoints:
        return args.backend, kwargs
    if args.backend not in ("hf", "openai"):  # hf is the default: endpoints alone mean openai
        raise ValueError(f"--wm-endpoint needs --backend openai, got --backend {args.backend}")
    if "base_url" in kwargs:
        raise ValueError("give the endpoints either as --wm-endpoint URL (repeatable) or --wm-arg base_url=URL, "
                         "not both")
    return "openai", {**kwargs, "base_url": endpoints}


def parse_kv(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values parsed as JSON when they parse)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def model_names(models: list[str] | None, envs: list[str]) -> dict[str, str | None]:
    """Which model each env uses: ``None`` means the env's embedded default."""
    out: dict[str, str | None] = dict.fromkeys(envs)
    for spec in models or []:
        env, sep, path = spec.partition("=")
        if sep and env in out:
            out[env] = path
        elif sep and not os.path.exists(spec):
            raise ValueError(f"--model {spec!r} names env {env!r}, which is not benchmarked; envs: {envs}")
        else:
            for e in envs:
                out[e] = spec
    return out


def load_models(names: dict[str, str | None], backend: str = "hf", **kwargs: Any) -> dict[str, Any]:
    """Load each env's world model once (envs naming the same model share it)."""
    from wmgym.worldmodels import load_world_model
    from wmgym.worldmodels.loading import trained_default_dir

    loaded: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for env, name in names.items():
        if name is None and backend != "openai":
            name = str(trained_default_dir(env, "--model DIR"))
        if name is None:
            raise ValueError("--backend openai needs --model NAME (the served model) and --wm-arg base_url=URL")
        if name not in loaded:
            loaded[name] = load_world_model(name, backend=backend, **kwargs)
        out[env] = loaded[name]
    return out


def describe_models(names: dict[str, str | None], backend: str) -> dict[str, str]:
    """Model names for the results (the embedded default spelled out)."""
    from wmgym.worldmodels.loading import default_model_dir

    return {env: f"{name or default_model_dir(env)} ({backend})" for env, name in names.items()}
