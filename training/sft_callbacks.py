"""Trainer callbacks of SFT: held-out exact match at each evaluation, and a progress file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def em_callback(episodes: list, tokenizer: Any, max_length: int):
    """A callback adding teacher-forced EM on ``episodes`` (one pass each) to every evaluation."""
    from transformers import TrainerCallback

    from wmgym.training.evaluate import argmax_em

    subset = [ep for ep in episodes if ep.steps]

    class EMCallback(TrainerCallback):
        """Teacher-forced exact match on held-out episodes at each evaluation."""

        def on_evaluate(self, args, state, control, model=None, metrics=None, **kw):
            if not subset or model is None:
                return
            res = argmax_em(model, tokenizer, subset, max_length=max_length, autocast=bool(args.bf16))
            metrics["eval_em"] = res.em
            metrics["eval_token_acc"] = res.token_accuracy
            for env, v in res.per_env.items():
                metrics[f"eval_em_{env}"] = v
            state.log_history.append({"step": state.global_step, "eval_em": res.em,
                                      "eval_token_acc": res.token_accuracy, "eval_em_per_env": res.per_env,
                                      "num_input_tokens_seen": state.num_input_tokens_seen})
            if state.is_world_process_zero:
                print(f"step {state.global_step}: held-out teacher-forced EM {res.em:.3f} "
                      f"(token acc {res.token_accuracy:.3f}, {res.n_steps} steps)", flush=True)

    return EMCallback()


def progress_callback(out: str | Path):
    """A callback keeping ``OUT/progress.json`` up to date (step, max_steps, loss, held-out EM)."""
    from transformers import TrainerCallback

    path = Path(out) / "progress.json"

    class ProgressFile(TrainerCallback):
        """Writes step, loss and held-out EM to OUT/progress.json (what the quickstart's bars show)."""

        def __init__(self) -> None:
            self.last: dict[str, Any] = {}

        def _write(self, state, **extra: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.last.update({"step": state.global_step, "max_steps": state.max_steps, **extra})
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.last))
            os.replace(tmp, path)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self._write(state, loss=float(logs["loss"]))

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            if metrics and "eval_em" in metrics:
                self._write(state, eval_em=float(metrics["eval_em"]))

    return ProgressFile()
