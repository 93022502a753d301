"""Trainer callbacks of SFT: a progress file other processes can read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_progress(out: str | Path, progress: dict[str, Any]) -> None:
    """Replace ``OUT/progress.json`` atomically (a reader never sees half a file)."""
    path = Path(out) / "progress.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(progress))
    os.replace(tmp, path)


def progress_callback(out: str | Path):
    """A callback keeping ``OUT/progress.json`` up to date (step, max_steps, loss, held-out EM)."""
    from transformers import TrainerCallback

    class ProgressFile(TrainerCallback):
        """Writes step, loss and held-out EM to OUT/progress.json (what the quickstart's bars show)."""

        def __init__(self) -> None:
            self.last: dict[str, Any] = {}

        def _write(self, state, **extra: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.last.update({"step": state.global_step, "max_steps": state.max_steps, **extra})
            write_progress(out, self.last)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self._write(state, loss=float(logs["loss"]))

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if metrics and "eval_em" in metrics:
                self._write(state, eval_em=float(metrics["eval_em"]))

    return ProgressFile()


def mlp_output_params(model: Any) -> list:
    """The MLP output projections of a Llama-style model (``*.mlp.down_proj.weight``)."""
    return [p for name, p in model.named_parameters() if name.endswith("mlp.down_proj.weight")]


def attention_only_warmup_callback(steps: int):
    """A callback that keeps the MLPs switched off (output projection zero and frozen) for the first ``steps``.

    Early on, MLPs lower the loss fastest by learning n-gram statistics, and the
    attention circuits that copy names from the action or the initial state
    form late. Zero MLP outputs leave attention alone with that job until
    ``steps``; then the MLPs train from zero, like a zero-initialised residual
    branch.
    """
    from transformers import TrainerCallback

    class AttentionOnlyWarmup(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            if model is not None and state.global_step < steps:
                import torch

                with torch.no_grad():
                    for p in mlp_output_params(model):
                        p.zero_()

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            if model is not None and state.global_step < steps:
                for p in mlp_output_params(model):
                    p.grad = None

    return AttentionOnlyWarmup()
