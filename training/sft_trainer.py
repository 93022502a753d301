"""SFT's pieces of the HF ``Trainer``: the loss on observation tokens, held-out EM at each evaluation, the
progress file other processes read, the training arguments and checkpoint lookup."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wmgym.training.data import IGNORE_INDEX

if TYPE_CHECKING:
    from wmgym.training.sft import SFTConfig


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


def time_budget_callback(minutes: float):
    """A callback that ends training at the first step end after ``minutes`` of this run (then saved as usual)."""
    import time

    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def __init__(self) -> None:
            self.start: float | None = None
            self.stopped_at: int | None = None

        def on_train_begin(self, args, state, control, **kw):
            self.start = time.monotonic()

        def on_step_end(self, args, state, control, **kw):
            if self.start is not None and time.monotonic() - self.start >= 60 * minutes:
                control.should_training_stop = control.should_save = True
                self.stopped_at = state.global_step

    return TimeBudget()


def make_trainer_class():
    from transformers import Trainer

    class ObservationLossTrainer(Trainer):
        """Cross-entropy on labelled positions only, with the LM head applied only there."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            import torch.nn.functional as F

            labels = inputs["labels"]
            base = model.module if hasattr(model, "module") else model
            base = base.get_base_model() if hasattr(base, "get_base_model") else base
            decoder, head = base.get_decoder(), base.get_output_embeddings()
            # No attention mask: padding is on the right and attention is causal, so no real token sees a pad,
            # and without a mask attention stays on its fast causal kernel (a mask costs ~30% on CPU).
            hidden = decoder(input_ids=inputs["input_ids"]).last_hidden_state
            # Position t predicts token t + 1.
            target = labels[:, 1:]
            keep = target != IGNORE_INDEX
            logits = head(hidden[:, :-1][keep]).float()
            total = F.cross_entropy(logits, target[keep], reduction="sum")
            n = num_items_in_batch if num_items_in_batch is not None else keep.sum()
            loss = total / n
            if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs and num_items_in_batch:
                loss = loss * self.accelerator.num_processes
            return (loss, {"logits": logits}) if return_outputs else loss

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            """Held-out loss and teacher-forced EM from one forward pass per held-out episode."""
            episodes = getattr(self, "wm_eval_episodes", None)
            if not episodes:
                return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            from wmgym.training.evaluate import argmax_em

            res = argmax_em(self.model, self.processing_class, episodes, max_length=self.wm_max_length,
                            autocast=bool(self.args.bf16))
            p = metric_key_prefix
            metrics = {f"{p}_loss": res.loss, f"{p}_em": res.em, f"{p}_token_acc": res.token_accuracy,
                       f"{p}_steps": res.n_steps, **{f"{p}_em_{env}": v for env, v in res.per_env.items()}}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return ObservationLossTrainer


def latest_checkpoint(out: str | Path) -> str | None:
    """Newest ``checkpoint-N`` directory in ``out`` that finished saving (has its trainer state)."""
    out = Path(out)
    found = []
    for d in out.glob("checkpoint-*"):
        if d.name.split("-")[-1].isdigit() and (d / "trainer_state.json").exists():
            found.append((int(d.name.split("-")[-1]), d))
    return str(max(found)[1]) if found else None


def bf16_supported() -> bool:
    """Whether bf16 autocast is fast here (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def training_args(cfg: SFTConfig, total_steps: int, use_bf16: bool, has_eval: bool, accum: int):
    """``TrainingArguments`` for this run (TensorBoard logs go under OUT/runs)."""
    import torch
    from transformers import TrainingArguments

    kw: dict[str, Any] = {}
    if "logging_dir" in TrainingArguments.__dataclass_fields__:  # transformers < 5
        kw["logging_dir"] = str(Path(cfg.out) / "runs")
    else:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(Path(cfg.out) / "runs"))
    if getattr(cfg, "gradient_checkpointing", False):  # renamed activation_checkpointing in transformers 5
        name = ("activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
                else "gradient_checkpointing")
        kw[name], kw[f"{name}_kwargs"] = True, {"use_reentrant": False}
    return TrainingArguments(
        output_dir=cfg.out, per_device_train_batch_size=1, per_device_eval_batch_size=1,
        gradient_accumulation_steps=accum, max_steps=total_steps, learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler, warmup_steps=int(cfg.warmup * total_steps), weight_decay=cfg.weight_decay,
        bf16=use_bf16, use_cpu=not torch.cuda.is_available(), logging_steps=cfg.logging_steps,
        eval_strategy="steps" if has_eval else "no", eval_steps=cfg.eval_steps, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, report_to=cfg.report_to,
        seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=not cfg.progress, remove_unused_columns=False,
        dataloader_num_workers=0, include_num_input_tokens_seen="non_padding", max_grad_norm=1.0,
        train_sampling_strategy="sequential", **kw,  # the order is built by schedule()
    )
