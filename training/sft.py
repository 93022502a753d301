"""Dynamics-aligned SFT of a world model: trajectories in, an HF model directory out.

``wmgym train sft --data tw.jsonl --model tiny --out runs/tw``

Reads top to bottom: the config, the model (tiny from scratch with its
warm-ups, or a local/hub causal LM, full or LoRA), then :func:`train`: the
data (episodes -> chats -> labelled token ids, held-out games; the batches in
:mod:`.sft_batches`), the HF ``Trainer`` (:mod:`.sft_trainer`: checkpoints in
safetensors every ``save_steps``, resumed automatically from the newest one in
``out``), and the final save with its summary. The same command runs under
``accelerate launch`` / DeepSpeed on GPUs; the defaults are for this CPU.

Loss is on assistant tokens only (see :mod:`wmgym.training.data`), and the LM
head runs only at those positions: with long system prompts most positions are
context, and the vocabulary projection there would be wasted work.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any


#: Fields set from Python only, not flags of ``wmgym train sft``: optimiser and LoRA details every recipe keeps at
#: their defaults, and the curriculum's window length. The rest are what the recipes, the tests and users set.
PYTHON_ONLY = ("curriculum_turns", "grad_accum", "warmup", "weight_decay", "scheduler", "save_total_limit",
               "lora_alpha", "lora_dropout", "lora_targets")


@dataclasses.dataclass
class SFTConfig:
    """Settings of one SFT run (the CLI flags mirror these fields, less :data:`PYTHON_ONLY`)."""

    data: list[str] = dataclasses.field(default_factory=list)
    """Trajectory files (JSON Lines) to train on."""
    out: str = "runs/sft"
    """Output directory: checkpoints, logs and the final model."""
    model: str = "tiny"
    """``tiny`` (from scratch, see --preset), a local HF model directory, or a hub id."""
    preset: str = "tiny"
    """Shape and tokenizer of the tiny model when --model tiny: a name of ``tiny.PRESETS`` (tiny, tiny-phrases,
    tiny-count, tiny-turns, tiny-s, tiny-m, tiny-l)."""
    eval_data: list[str] = dataclasses.field(default_factory=list)
    """Held-out trajectory files; without them ``eval_fraction`` of the training games are held out."""
    eval_fraction: float = 0.05
    """Share of games held out for eval loss and EM when no --eval-data is given."""
    eval_em_episodes: int = 40
    """Held-out episodes scored at each evaluation, loss and teacher-forced exact match from one forward pass
    each (0: loss only, over all held-out episodes)."""
    mix: str | None = None
    """mix3 | mix4 | mix5 | ENV=W,ENV=W: per-env weights of the training episodes (default: as in the files)."""
    allow_missing: bool = False
    """Train on the envs of --mix that have data when others are missing (default: error naming them)."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; merged into the saved model."""
    lora_r: int = 16
    """LoRA rank."""
    max_length: int = 2048
    """Longest training sequence in tokens; longer chats are cut into windows of whole turns."""
    batch_tokens: int = 4096
    """Tokens per batch (padded length x sequences); a batch groups sequences of similar length, and a
    sequence longer than this is a batch of its own. Small batches (more updates per token) learn faster here."""
    epochs: float = 3.0
    """Passes over the training data (ignored when --max-steps > 0)."""
    max_steps: int = 0
    """Optimizer steps to run (0: use --epochs)."""
    max_minutes: float = 0.0
    """Stop this run after this many minutes of training, at the end of a step (0: no limit); the model is saved
    and evaluated as at any end, and the learning-rate schedule still follows --max-steps / --epochs. For a fixed
    wall-clock budget: compare runs by what they reach in equal time."""
    lr: float | None = None
    """Peak learning rate (default 2e-3 for tiny, 2e-4 for LoRA, 2e-5 for full fine-tuning)."""
    curriculum: float = 0.0
    """Fraction of the steps trained first on short windows of ``curriculum_turns`` (3) turns without the system
    prompt (copying from the action is learnt far faster in short contexts), before the full chats."""
    induction_warmup: int = 0
    """--model tiny: before SFT, train up to this many steps on a synthetic copying task (stopping early once the
    model copies 95% right), so content-based induction heads exist before the chats are seen (see
    ``tiny.warmups``). The warmed-up weights are saved in OUT/init, so a resumed run does not redo it."""
    list_warmup: int = 0
    """With --induction-warmup: then up to this many steps of a second warm-up on lists, where the next item is
    found by the item two tokens back, as a listed object follows its receptacle in ``tiny-phrases`` tokens (mixed
    into the first warm-up instead, the copying heads never formed)."""
    recall_warmup: int = 0
    """With --induction-warmup: then this many steps of a third warm-up on the env's own text: a window of a
    training chat's initial state, then spans of it to continue from a few given tokens, so copies keyed on
    several recurring words win over what the words usually say."""
    recall_mix: float = 0.0
    """Fraction of the SFT batches (evenly spread) replaced by batches of the recall task (on windows of the
    training chats), so copying from earlier text is kept up while the chats are learnt: without it SFT unlearns
    it (TextWorld: recall accuracy 0.84 after --recall-warmup, 0.46 after SFT; 0.89 with 0.25)."""
    bf16: bool | None = None
    """bf16 autocast (default: on where the hardware has bf16: CPUs with AVX512-BF16/AMX, Ampere+ GPUs)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them (pretrained models: a 135M model on
    4,096-token chats holds about a quarter of the memory, for about a third more compute)."""
    threads: int = 1
    """Torch CPU threads; 1 was fastest on a 2-vCPU machine (2 threads share one core's FPUs)."""
    save_steps: int = 200
    """Checkpoint every this many steps (resume after a kill loses at most this much)."""
    eval_steps: int = 200
    """Held-out loss (and EM) every this many steps."""
    logging_steps: int = 10
    """Log the training loss every this many steps."""
    report_to: str = "none"
    """none | tensorboard (logs under OUT/runs) | any transformers integration name."""
    seed: int = 0
    """Seed of the model init, data order and held-out split."""
    resume: bool = True
    """Continue from the newest checkpoint in --out when there is one."""
    trust_remote_code: bool = False
    """Allow custom model code from a hub repo (off: only architectures transformers ships)."""
    progress: bool = True
    """Progress bars."""
    # PYTHON_ONLY: not on the CLI.
    curriculum_turns: int = 3
    """Turns per window in the curriculum phase."""
    grad_accum: int = 1
    """Batches per optimizer step."""
    warmup: float = 0.05
    """LR warmup as a fraction of the steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    scheduler: str = "cosine"
    """LR schedule (any transformers scheduler name: cosine, linear, constant_with_warmup, ...)."""
    save_total_limit: int = 2
    """Checkpoints kept."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    lora_targets: str = "all-linear"
    """Modules to adapt (comma-separated names, or all-linear)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give at least one trajectory file (--data FILE ...)")
        if self.max_minutes < 0:
            raise ValueError(f"--max-minutes must be >= 0 (0: no limit), got {self.max_minutes}")
        for path in [*self.data, *self.eval_data]:
            if not os.path.exists(path):
                raise FileNotFoundError(f"trajectory file not found: {path}")
        if self.model == "tiny" and self.lora:
            raise ValueError("--lora needs a pretrained --model (a local directory or hub id); the tiny model "
                             "trains from scratch, so all its weights are trained")
        from wmgym.training.tiny import get_preset

        get_preset(self.preset)
        if not 0 <= self.curriculum < 1 or self.curriculum_turns < 1:
            raise ValueError(f"curriculum must be in [0, 1) and curriculum_turns >= 1, got {self.curriculum} and "
                             f"{self.curriculum_turns}")
        if self.induction_warmup < 0:
            raise ValueError(f"induction_warmup must be >= 0 steps, got {self.induction_warmup}")
        if self.list_warmup < 0:
            raise ValueError(f"list_warmup must be >= 0 steps, got {self.list_warmup}")
        if not 0 <= self.recall_mix < 1:
            raise ValueError(f"recall_mix must be a fraction of the batches in [0, 1), got {self.recall_mix}")
        if self.recall_warmup < 0:
            raise ValueError(f"recall_warmup must be >= 0 steps, got {self.recall_warmup}")
        if (self.list_warmup or self.recall_warmup) and not self.induction_warmup:
            raise ValueError("list_warmup and recall_warmup follow the induction warm-up: set induction_warmup too")
        if self.induction_warmup and self.model != "tiny":
            raise ValueError("--induction-warmup trains a fresh --model tiny; a pretrained model already copies")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.max_length < 64:
            raise ValueError(f"max_length must be >= 64 tokens, got {self.max_length}")
        if self.batch_tokens < 1 or self.grad_accum < 1:
            raise ValueError(f"batch_tokens ({self.batch_tokens}) and grad_accum ({self.grad_accum}) must be >= 1")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("give --epochs > 0 or --max-steps > 0")
        if self.save_steps < 1 or self.eval_steps < 1:
            raise ValueError("save_steps and eval_steps must be >= 1")
        if self.lr is None:
            self.lr = 2e-3 if self.model == "tiny" else 2e-4 if self.lora else 2e-5
        if self.mix is not None:
            from wmgym.training.data import parse_mix

            parse_mix(self.mix)


# -------------------------------------------------------------------- model
def load_model(cfg: SFTConfig, train_episodes: list) -> tuple[Any, Any]:
    """The model and tokenizer to train (tiny from scratch, or pretrained, optionally with LoRA)."""
    from wmgym.training import tiny

    out = Path(cfg.out)
    if cfg.model == "tiny":
        preset = tiny.get_preset(cfg.preset)
        if (out / "init" / "tokenizer.json").exists():  # resuming: the same tokenizer and shape as before
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(out / "init")
        else:
            from wmgym.training.data import episode_chats

            tokenizer = tiny.build_tokenizer((m for _, m in episode_chats(train_episodes)), preset)
            tiny.save_tokenizer(tokenizer, out / "init")
        model = tiny.build_model(tokenizer, preset, seed=cfg.seed)
        if cfg.induction_warmup:
            warm_up(model, tokenizer, cfg, out / "init", train_episodes)
        return model, tokenizer

    model, tokenizer = load_pretrained(cfg.model, cfg.trust_remote_code)
    if cfg.lora:
        model = add_lora(model, cfg)
    return model, tokenizer


def load_pretrained(name: str, trust_remote_code: bool = False, require_chat_template: bool = True
                    ) -> tuple[Any, Any]:
    """A local or hub causal LM and its tokenizer (safetensors only; the end-of-turn token pads when the tokenizer
    has no pad token), for every trainer here: SFT, agent SFT, agent GRPO and RWML."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    if require_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{name} has no chat template; use an instruct/chat model or add one to its "
                         "tokenizer_config.json")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(name, trust_remote_code=trust_remote_code, use_safetensors=True)
    return model, tokenizer


def lora_config(cfg: Any) -> Any:
    """peft's ``LoraConfig`` from a config's ``lora_r``, ``lora_alpha``, ``lora_dropout`` and ``lora_targets``
    (``all-linear`` or comma-separated module names)."""
    from peft import LoraConfig

    targets: Any = cfg.lora_targets if cfg.lora_targets == "all-linear" else cfg.lora_targets.split(",")
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")


def add_lora(model: Any, cfg: Any) -> Any:
    """``model`` wrapped with fresh LoRA adapters (:func:`lora_config`), initialised from ``cfg.seed``: the
    adapters' random init would otherwise depend on whatever drew from torch's generator before."""
    import torch
    from peft import get_peft_model

    torch.manual_seed(cfg.seed)
    return get_peft_model(model, lora_config(cfg))


def warm_up(model: Any, tokenizer: Any, cfg: SFTConfig, init: Path, episodes: list) -> dict[str, Any]:
    """Run (or, when ``init`` holds their result, load) the warm-ups of a fresh tiny model: induction, then lists
    and recall (on the initial states of the training ``episodes``) where the config asks for them."""
    from wmgym.training import tiny

    done = init / "warmup.json"
    if done.exists() and (init / "model.safetensors").exists():
        from safetensors.torch import load_file

        missing, unexpected = model.load_state_dict(load_file(init / "model.safetensors"), strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # the tied lm_head is the only weight not stored
            raise ValueError(f"{init} does not hold this run's tiny model (missing {missing}, unexpected "
                             f"{unexpected}); delete {cfg.out} to start over")
        model.tie_weights()
        stats = json.loads(done.read_text())
        print(f"induction warm-up: reusing {init} ({stats['steps']} steps, copy accuracy {stats['accuracy']:.2f})")
        return stats
    from wmgym.training.sft_trainer import write_progress

    def reporter(phase: str, max_steps: int):
        def report(step: int, loss: float, accuracy: float) -> None:  # what the quickstart's bars show
            if step % 10 == 0:
                write_progress(cfg.out, {"phase": phase, "step": step, "loss": loss, "max_steps": max_steps,
                                         "copy_accuracy": accuracy})
        return report

    def run(phase: str, max_steps: int, seed: int, separators: int = 0) -> dict[str, Any]:
        done = tiny.induction_warmup(model, tokenizer, max_steps, seed=seed, progress=cfg.progress,
                                     on_step=reporter(phase, max_steps), separators=separators, bf16=cfg.bf16)
        print(f"{phase}: {done['steps']} steps, copy accuracy {done['accuracy']:.2f}, {done['seconds']:.0f} s")
        return done

    stats = run("induction warm-up", cfg.induction_warmup, cfg.seed)
    if cfg.list_warmup:
        stats["lists"] = run("list warm-up", cfg.list_warmup, cfg.seed + 1, separators=4)
    if cfg.recall_warmup:
        import torch

        contexts = dict.fromkeys(ep.init_context for ep in episodes if ep.init_context)
        texts = [torch.tensor(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in contexts]
        recall = tiny.recall_warmup(model, texts, cfg.recall_warmup, seed=cfg.seed + 2, progress=cfg.progress,
                                    on_step=reporter("recall warm-up", cfg.recall_warmup), bf16=cfg.bf16)
        print(f"recall warm-up: {recall['steps']} steps, copy accuracy {recall['accuracy']:.2f}, "
              f"{recall['seconds']:.0f} s")
        stats["recall"] = recall
    model.save_pretrained(init, safe_serialization=True)
    done.write_text(json.dumps(stats))  # written last: its presence means the weights beside it are complete
    return stats


def train(cfg: SFTConfig) -> dict[str, Any]:
    """Run SFT; returns a summary (steps, losses, EM, tokens/s, where the model is)."""
    import time

    import torch

    from wmgym.training import tiny
    from wmgym.training.data import build_examples
    from wmgym.training.sft_batches import BatchCollator, Batches, load_data, mix_recall, schedule, token_batches
    from wmgym.training.sft_trainer import (bf16_supported, latest_checkpoint, make_trainer_class,
                                            progress_callback, time_budget_callback, training_args)

    torch.set_num_threads(cfg.threads)
    train_eps, held_eps, report = load_data(cfg)
    if report is not None:
        print("mix:\n" + str(report))
    model, tokenizer = load_model(cfg, train_eps)
    train_ex, tstats = build_examples(tokenizer, train_eps, cfg.max_length)
    if not train_ex:
        raise ValueError(f"no turn of the {tstats['chats']} training chats fits max_length={cfg.max_length} tokens "
                         f"with its system prompt ({tstats['skipped_turns']} turns skipped); raise --max-length")
    eval_ex, _ = build_examples(tokenizer, held_eps, cfg.max_length) if held_eps else ([], {})
    accum = cfg.grad_accum
    steps_per_epoch = math.ceil(len(token_batches(train_ex, cfg.batch_tokens, cfg.seed)) / accum)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, int(round(cfg.epochs * steps_per_epoch)))
    phases = [(build_examples(tokenizer, train_eps, cfg.max_length, cfg.curriculum_turns)[0] if cfg.curriculum
               else [], cfg.curriculum)]
    batches = schedule(train_ex, phases, cfg, total_steps * accum)
    if cfg.recall_mix:
        mixed = mix_recall(batches, train_ex, cfg.recall_mix, cfg.batch_tokens, cfg.seed)
        print(f"recall mix: {mixed} of {len(batches)} batches are recall batches")
    print(f"model: {tiny.describe(model, tokenizer) if cfg.model == 'tiny' else cfg.model}"
          f"{' + LoRA' if cfg.lora else ''}")
    print(f"data: {tstats['chats']} chats -> {tstats['examples']} sequences, {tstats['tokens']} tokens "
          f"({tstats['label_tokens']} supervised), {steps_per_epoch} steps/epoch x {accum} batches, {total_steps} steps; "
          f"held out: {len(held_eps)} episodes"
          + (f"; skipped {tstats['skipped_turns']} turns longer than max_length" if tstats["skipped_turns"] else ""))

    use_bf16 = bf16_supported() if cfg.bf16 is None else cfg.bf16
    budget = time_budget_callback(cfg.max_minutes) if cfg.max_minutes else None
    args = training_args(cfg, total_steps, use_bf16, bool(eval_ex), accum)
    trainer = make_trainer_class()(
        model=model, args=args, data_collator=BatchCollator(tokenizer.pad_token_id), processing_class=tokenizer,
        train_dataset=Batches(batches),
        eval_dataset=Batches(token_batches(eval_ex, cfg.batch_tokens, cfg.seed)) if eval_ex else None,
        callbacks=[progress_callback(cfg.out), *([budget] if budget else [])],
    )
    # Evaluation scores loss and EM on these episodes in one pass (0: the Trainer's own loss-only pass).
    trainer.wm_eval_episodes = [ep for ep in held_eps if ep.steps][: cfg.eval_em_episodes]
    trainer.wm_max_length = cfg.max_length
    resume = latest_checkpoint(cfg.out) if cfg.resume else None
    if resume:
        print(f"resuming from {resume}")
    t0, c0 = time.time(), time.process_time()
    result = trainer.train(resume_from_checkpoint=resume)
    wall, cpu = time.time() - t0, time.process_time() - c0
    final = trainer.evaluate() if eval_ex else {}
    model = trainer.model
    if cfg.lora:
        model = model.merge_and_unload()
    summary = {
        "model": cfg.model, "preset": cfg.preset if cfg.model == "tiny" else None, "lora": cfg.lora,
        "parameters": tiny.num_parameters(model), "steps": trainer.state.global_step,
        "train_loss": result.training_loss, "eval_loss": final.get("eval_loss"), "eval_em": final.get("eval_em"),
        "eval_em_per_env": {k[len("eval_em_"):]: v for k, v in final.items() if k.startswith("eval_em_")},
        "train_tokens_per_epoch": tstats["tokens"], "resumed_from": resume,
        "induction_warmup": (json.loads((Path(cfg.out) / "init" / "warmup.json").read_text())
                             if cfg.induction_warmup else None),
        "tokens_seen_this_run": int(trainer.state.num_input_tokens_seen or 0),
        "wall_s": wall, "cpu_s": cpu, "max_minutes": cfg.max_minutes or None,
        "stopped_by_time_at_step": budget.stopped_at if budget else None, "data": cfg.data,
        "mix": report.weights if report else None,
        "eval_em_episodes": len(trainer.wm_eval_episodes),
        "eval_history": [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)],
        "loss_history": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h],
    }
    if summary["tokens_seen_this_run"] and wall > 0:
        summary["tokens_per_s"] = summary["tokens_seen_this_run"] / wall
    if trainer.is_world_process_zero():  # under torchrun / accelerate launch every rank gets here; one writes
        tiny.save_pretrained(model, tokenizer, cfg.out, extra={"sft": summary, "config": dataclasses.asdict(cfg)})
    return summary


def write_summary(summary: dict[str, Any], out: str | Path) -> None:
    if int(os.environ.get("RANK", "0")) != 0:  # a data-parallel run: rank 0 writes it
        return
    (Path(out) / "sft_summary.json").write_text(json.dumps(summary, indent=2, default=str))
