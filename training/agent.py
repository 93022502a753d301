"""Agent SFT: trajectories in, a policy LM out (history -> next action), optionally warm-started as a world model.

``wmgym train agent --data alf.jsonl --model tiny --out runs/agent`` then ``lm:runs/agent`` plays it
(:class:`wmgym.agents.lm.LMAgent`).

Each episode is one agent chat (:func:`wmgym.agents.lm.agent_messages`: the env's observations as user turns,
the actions as assistant turns). The loss is on the action tokens (and their end of turn) only. The model is
the tiny Llama from scratch, with a tokenizer trained on these chats (``--model tiny``), or any causal LM with a
chat template, full or LoRA; the run uses the world models' Trainer stack (:mod:`.sft_batches`,
:mod:`.sft_trainer`): batches of similar length, checkpoints every ``save_steps`` resumed automatically from
the newest one in ``out``, the same learning-rate schedule and summary in ``wmgym.json``.

``--warm-start wm`` ("early experience": implicit world modelling, Zhang et al. 2025) first trains on the same
chats with the loss on the observations instead: every user turn but the first, i.e. the next observation
given the history and the action, the chat running on to the observation the last action produced. Then the
action phase. Both phases are one schedule of one Trainer run (:func:`~.sft_batches.schedule`'s phases), so a
killed run resumes in whichever phase it was.

``--max-turns M`` bounds the history as the agent will see it: windows keep the first exchange and the last M
(see :func:`agent_messages`); a chat with more exchanges becomes several windows, each supervising the newest
``max(1, M // 2)`` exchanges not supervised before, so every action (every observation, in the warm-up) is a
target once. The value is saved in ``wmgym.json``, and ``lm:DIR`` reads it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wmgym.agents.lm import agent_messages
from wmgym.training.data import IGNORE_INDEX

#: Fields set from Python only (the rest are ``wmgym train agent`` flags).
PYTHON_ONLY = ("grad_accum", "warmup", "weight_decay", "scheduler", "save_total_limit", "lora_alpha",
               "lora_dropout", "lora_targets")
#: Values of ``--warm-start``.
WARM_STARTS = ("wm",)
#: A string no chat holds: where it lands in a rendered chat is where a message's content starts.
_SENTINEL = "\x00wmgym-content\x00"


@dataclasses.dataclass
class AgentConfig:
    """Settings of one agent SFT run (the CLI flags mirror these fields, less :data:`PYTHON_ONLY`)."""

    data: list[str] = dataclasses.field(default_factory=list)
    """Trajectory files (JSON Lines) to train on; real or synthetic (``wmgym synth``) episodes."""
    out: str = "runs/agent"
    """Output directory: checkpoints and the final model (an HF directory ``lm:OUT`` plays)."""
    model: str = "tiny"
    """``tiny`` (from scratch, tokenizer trained on the agent chats), a local HF model directory, or a hub id."""
    preset: str = "tiny"
    """Shape of the tiny model when --model tiny (a name of ``tiny.PRESETS``)."""
    policy: list[str] = dataclasses.field(default_factory=list)
    """Train only on episodes of these policies (default: all)."""
    won_only: bool = False
    """Train only on won episodes (successful demonstrations)."""
    warm_start: str | None = None
    """``wm``: first train on the world-model objective (history + action -> next observation) on the same
    chats, then on the actions."""
    warm_start_steps: int = 0
    """Optimizer steps of the warm start (0: one epoch of its examples)."""
    max_turns: int = 0
    """History the agent sees: the first exchange and the last this many (0: whole episodes)."""
    eval_fraction: float = 0.05
    """Share of games held out for the eval loss and action accuracy."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; merged into the saved model."""
    lora_r: int = 16
    """LoRA rank."""
    max_length: int = 2048
    """Longest training sequence in tokens; longer windows are skipped and counted (bound them with --max-turns)."""
    batch_tokens: int = 4096
    """Tokens per batch (padded length x sequences)."""
    epochs: float = 3.0
    """Passes over the action examples (ignored when --max-steps > 0)."""
    max_steps: int = 0
    """Optimizer steps of the action phase (0: use --epochs)."""
    lr: float | None = None
    """Peak learning rate (default 2e-3 for tiny, 2e-4 for LoRA, 2e-5 for full fine-tuning; 1e-3 for full
    fine-tuning of a model under 10M parameters, such as a default twin's world model)."""
    bf16: bool | None = None
    """bf16 autocast (default: where the hardware has bf16)."""
    threads: int = 1
    """Torch CPU threads."""
    save_steps: int = 200
    """Checkpoint every this many steps."""
    eval_steps: int = 200
    """Held-out loss every this many steps."""
    logging_steps: int = 10
    """Log the training loss every this many steps."""
    report_to: str = "none"
    """none | tensorboard | any transformers integration name."""
    seed: int = 0
    """Seed of the model init, data order and held-out split."""
    resume: bool = True
    """Continue from the newest checkpoint in --out when there is one."""
    trust_remote_code: bool = False
    """Allow custom model code from a hub repo."""
    progress: bool = True
    """Progress bars."""
    # PYTHON_ONLY
    grad_accum: int = 1
    warmup: float = 0.05
    weight_decay: float = 0.01
    scheduler: str = "cosine"
    save_total_limit: int = 2
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give at least one trajectory file (--data FILE ...)")
        for path in self.data:
            if not os.path.exists(path):
                raise FileNotFoundError(f"trajectory file not found: {path}")
        if self.model == "tiny" and self.lora:
            raise ValueError("--lora needs a pretrained --model (a local directory or hub id); the tiny model "
                             "trains from scratch, so all its weights are trained")
        from wmgym.training.tiny import get_preset

        get_preset(self.preset)
        if self.warm_start is not None and self.warm_start not in WARM_STARTS:
            raise ValueError(f"unknown --warm-start {self.warm_start!r}; valid: {list(WARM_STARTS)}")
        if self.warm_start_steps < 0 or self.max_turns < 0:
            raise ValueError(f"warm_start_steps ({self.warm_start_steps}) and max_turns ({self.max_turns}) must be >= 0")
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
        if self.lr is None and (self.model == "tiny" or self.lora):
            self.lr = 2e-3 if self.model == "tiny" else 2e-4
        # Full fine-tuning of a given model: resolved by default_lr once the model's size is known.


# ---------------------------------------------------------------------- data
def episode_turns(episode: Any) -> tuple[list[str], list[str]]:
    """``(observations, actions)`` of an episode: every observation the agent saw, the last action's result
    included (``len(observations) == len(actions) + 1``)."""
    observations = [episode.initial_observation] + [s.observation for s in episode.steps]
    return observations, [s.action for s in episode.steps]


def label_chat(tokenizer: Any, messages: Sequence[dict[str, str]], labelled: set[int]) -> dict[str, list[int]]:
    """Token ids of ``messages`` rendered with the tokenizer's chat template, labelled on the contents (and
    end-of-turn text) of the messages whose indices are in ``labelled``; other tokens get ``-100``.

    A message's content starts where a sentinel put in its place lands in the rendering of the chat up to it,
    and ends with that rendering (trailing whitespace aside): any role, any template that renders a chat as the
    concatenation of its prefixes.
    """
    render = lambda ms: tokenizer.apply_chat_template(list(ms), tokenize=False)  # noqa: E731
    full = render(messages)
    spans = []
    for i in sorted(labelled):
        before = render(messages[:i]) if i else ""
        probe = render([*messages[:i], {"role": messages[i]["role"], "content": _SENTINEL}])
        upto = render(messages[: i + 1])
        start = probe.find(_SENTINEL, len(before))
        if start < 0 or not full.startswith(upto) or not upto.startswith(before):
            raise ValueError("the tokenizer's chat template renders a chat differently from its prefixes; it "
                             "cannot be used for per-turn labels")
        spans.append((start, len(upto.rstrip())))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    labels = [IGNORE_INDEX] * len(ids)
    for t, (a, b) in enumerate(enc["offset_mapping"]):
        if any(b > s and a < e for s, e in spans):
            labels[t] = ids[t]
    return {"input_ids": ids, "labels": labels}


def chat_windows(n: int, max_turns: int) -> list[tuple[int, int]]:
    """``(end, first)`` of each window of an ``n``-exchange chat: the window holds exchanges ``[0, end)`` as
    :func:`agent_messages` cuts them with ``max_turns`` and supervises exchanges ``[first, end)``."""
    if max_turns <= 0 or n <= 1 + max_turns:
        return [(n, 0)]
    stride = max(1, max_turns // 2)
    out, end = [(1 + max_turns, 0)], 1 + max_turns
    while end < n:
        nxt = min(n, end + stride)
        out.append((nxt, end))
        end = nxt
    return out


def window_messages(observations: list[str], actions: list[str], end: int, first: int, max_turns: int,
                    phase: str) -> tuple[list[dict[str, str]], set[int]]:
    """The chat of one window and the indices of its supervised messages.

    ``phase="action"``: exchanges ``[0, end)``, labels on the actions of ``[first, end)``. ``phase="wm"``: the
    same and the observation the last action produced, labels on the observations that followed the actions of
    ``[first, end)``.
    """
    bound = max_turns or None
    if phase == "action":
        messages = agent_messages(observations[:end], actions[:end], bound)
    else:
        messages = agent_messages(observations[: end + 1], actions[:end], bound)
    kept = [0] + list(range(max(1, end - max_turns), end)) if bound and end > 1 + max_turns else list(range(end))
    labelled = set()
    for pos, k in enumerate(kept):
        if k < first:
            continue
        # Exchange k sits at messages 1 + 2 * pos (observation) and 2 + 2 * pos (action); its result is next.
        labelled.add(2 + 2 * pos if phase == "action" else 3 + 2 * pos)
    return messages, labelled


def agent_examples(tokenizer: Any, episodes: list, max_length: int, max_turns: int = 0,
                   phase: str = "action") -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Training examples of ``phase`` (``action`` or ``wm``) and counts (chats, examples, skipped windows
    longer than ``max_length``, tokens, labelled tokens)."""
    if phase not in ("action", "wm"):
        raise ValueError(f"unknown phase {phase!r}; valid: action, wm")
    examples: list[dict[str, Any]] = []
    stats = {"chats": 0, "examples": 0, "skipped_windows": 0, "tokens": 0, "label_tokens": 0}
    for ep in episodes:
        if not ep.steps:
            continue
        observations, actions = episode_turns(ep)
        stats["chats"] += 1
        for end, first in chat_windows(len(actions), max_turns):
            messages, labelled = window_messages(observations, actions, end, first, max_turns, phase)
            ex = label_chat(tokenizer, messages, labelled)
            if len(ex["input_ids"]) > max_length:
                stats["skipped_windows"] += 1
                continue
            ex["env_id"] = ep.env_id
            stats["tokens"] += len(ex["input_ids"])
            stats["label_tokens"] += sum(1 for x in ex["labels"] if x != IGNORE_INDEX)
            examples.append(ex)
    stats["examples"] = len(examples)
    return examples, stats


def load_data(cfg: AgentConfig) -> tuple[list, list]:
    """Training and held-out episodes (held out by game), in a canonical order, after the filters."""
    from wmgym.training.data import split_by_game
    from wmgym.training.trajectories import canonical_order, load_episodes

    episodes = canonical_order(load_episodes(cfg.data))
    if cfg.policy:
        have = sorted({ep.policy for ep in episodes})
        episodes = [ep for ep in episodes if ep.policy in cfg.policy]
        if not episodes:
            raise ValueError(f"no episode of policies {cfg.policy} in {cfg.data}; the files hold {have}")
    if cfg.won_only:
        episodes = [ep for ep in episodes if ep.won]
    episodes = [ep for ep in episodes if ep.steps]
    if not episodes:
        raise ValueError(f"no episode with steps in {cfg.data}" + (" that was won" if cfg.won_only else "")
                         + ": nothing to train on")
    train, held = split_by_game(episodes, cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError(f"all {len(episodes)} episodes were held out; lower --eval-fraction")
    return train, held


# ---------------------------------------------------------------------- model
def load_model(cfg: AgentConfig, train_episodes: list) -> tuple[Any, Any]:
    """The model and tokenizer to train: tiny from scratch (tokenizer trained on the agent chats, kept in
    ``OUT/init`` so a resumed run has the same), or pretrained, optionally with LoRA."""
    from wmgym.training import tiny

    init = Path(cfg.out) / "init"
    if cfg.model == "tiny":
        preset = tiny.get_preset(cfg.preset)
        if (init / "tokenizer.json").exists():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(init)
        else:
            chats = [agent_messages(*episode_turns(ep)) for ep in train_episodes]
            tokenizer = tiny.build_tokenizer(chats, preset)
            tiny.save_tokenizer(tokenizer, init)
        return tiny.build_model(tokenizer, preset, seed=cfg.seed), tokenizer

    from wmgym.training.sft import add_lora, load_pretrained

    model, tokenizer = load_pretrained(cfg.model, cfg.trust_remote_code)
    if cfg.lora:
        model = add_lora(model, cfg)
    return model, tokenizer


def action_accuracy(model: Any, tokenizer: Any, examples: list[dict[str, Any]]) -> float | None:
    """Share of supervised turns (runs of labelled tokens) whose every token, end of turn included, is the
    argmax after the gold history: teacher-forced exact match of the actions (``None`` without examples)."""
    import torch

    from wmgym.training.evaluate import _label_runs

    hits = total = 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for ex in examples:
            logits = model(input_ids=torch.tensor([ex["input_ids"]], device=device)).logits[0]
            pred = logits[:-1].argmax(-1).tolist()
            for a, b in _label_runs(list(ex["labels"])):
                total += 1
                hits += all(pred[t - 1] == ex["labels"][t] for t in range(max(a, 1), b))
    if was_training:
        model.train()
    return hits / total if total else None


#: Models with fewer parameters than this are fine-tuned at :data:`SMALL_MODEL_LR` by default (the tiny models
#: wmgym trains from scratch, e.g. a default twin's world model as the warm start; 2e-5 barely moves them).
SMALL_MODEL_PARAMS = 10_000_000
SMALL_MODEL_LR = 1e-3


def default_lr(cfg: AgentConfig, model: Any) -> float:
    """The peak learning rate of a run that gave none: :attr:`AgentConfig.lr`'s rules."""
    if cfg.lr is not None:
        return cfg.lr
    from wmgym.training import tiny

    return SMALL_MODEL_LR if tiny.num_parameters(model) < SMALL_MODEL_PARAMS else 2e-5


# ---------------------------------------------------------------------- train
def train(cfg: AgentConfig) -> dict[str, Any]:
    """Run agent SFT (with its warm start); returns a summary, also saved in ``OUT/wmgym.json``."""
    import time

    import torch

    from wmgym.training import tiny
    from wmgym.training.sft_batches import BatchCollator, Batches, schedule, token_batches
    from wmgym.training.sft_trainer import (bf16_supported, latest_checkpoint, make_trainer_class,
                                            progress_callback, training_args)

    torch.set_num_threads(cfg.threads)
    train_eps, held_eps = load_data(cfg)
    model, tokenizer = load_model(cfg, train_eps)
    cfg = dataclasses.replace(cfg, lr=default_lr(cfg, model))  # the caller's config is left as given
    train_ex, tstats = agent_examples(tokenizer, train_eps, cfg.max_length, cfg.max_turns, "action")
    if not train_ex:
        raise ValueError(f"no window of the {tstats['chats']} training chats fits max_length={cfg.max_length} "
                         f"tokens ({tstats['skipped_windows']} skipped); raise --max-length or set --max-turns")
    eval_ex = agent_examples(tokenizer, held_eps, cfg.max_length, cfg.max_turns, "action")[0] if held_eps else []
    accum = cfg.grad_accum
    steps_per_epoch = math.ceil(len(token_batches(train_ex, cfg.batch_tokens, cfg.seed)) / accum)
    action_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, int(round(cfg.epochs * steps_per_epoch)))
    wm_steps, wstats, phases = 0, None, [([], 0.0)]
    if cfg.warm_start == "wm":
        wm_ex, wstats = agent_examples(tokenizer, train_eps, cfg.max_length, cfg.max_turns, "wm")
        if not wm_ex:
            raise ValueError("no warm-start window fits max_length; raise --max-length or set --max-turns")
        wm_steps = cfg.warm_start_steps or math.ceil(len(token_batches(wm_ex, cfg.batch_tokens, cfg.seed)) / accum)
        total = wm_steps + action_steps
        phases = [(wm_ex, (wm_steps * accum + 0.5) / (total * accum))]
    total_steps = wm_steps + action_steps
    batches = schedule(train_ex, phases, cfg, total_steps * accum)  # the warm start's batches come first
    print(f"model: {tiny.describe(model, tokenizer) if cfg.model == 'tiny' else cfg.model}"
          f"{' + LoRA' if cfg.lora else ''}")
    print(f"data: {tstats['chats']} chats -> {tstats['examples']} sequences, {tstats['tokens']} tokens "
          f"({tstats['label_tokens']} action tokens), {steps_per_epoch} steps/epoch; {action_steps} action steps"
          + (f" after {wm_steps} world-model steps ({wstats['label_tokens']} observation tokens per epoch)"
             if wm_steps else "")
          + f"; held out: {len(held_eps)} episodes"
          + (f"; skipped {tstats['skipped_windows']} windows longer than max_length" if tstats["skipped_windows"]
             else ""))

    use_bf16 = bf16_supported() if cfg.bf16 is None else cfg.bf16
    args = training_args(cfg, total_steps, use_bf16, bool(eval_ex), accum)
    args.prediction_loss_only = True  # held-out loss on the actions; accuracy is scored once at the end
    trainer = make_trainer_class()(
        model=model, args=args, data_collator=BatchCollator(tokenizer.pad_token_id), processing_class=tokenizer,
        train_dataset=Batches(batches),
        eval_dataset=Batches(token_batches(eval_ex, cfg.batch_tokens, cfg.seed)) if eval_ex else None,
        callbacks=[progress_callback(cfg.out)],
    )
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
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    summary = {
        "model": cfg.model, "preset": cfg.preset if cfg.model == "tiny" else None, "lora": cfg.lora,
        "parameters": tiny.num_parameters(model), "steps": trainer.state.global_step,
        "warm_start": cfg.warm_start, "warm_start_steps": wm_steps, "action_steps": action_steps,
        "train_loss": result.training_loss, "eval_loss": final.get("eval_loss"),
        "eval_action_accuracy": action_accuracy(model, tokenizer, eval_ex[:200]),
        "train_episodes": len(train_eps), "eval_episodes": len(held_eps),
        "train_tokens_per_epoch": tstats["tokens"], "action_tokens_per_epoch": tstats["label_tokens"],
        "skipped_windows": tstats["skipped_windows"], "resumed_from": resume, "wall_s": wall, "cpu_s": cpu,
        "data": cfg.data, "loss_history": losses,
        "warm_start_loss_history": [x for x in losses if x[0] <= wm_steps],
        "eval_history": [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)],
    }
    if trainer.is_world_process_zero():
        tiny.save_pretrained(model, tokenizer, cfg.out, extra={"agent": summary, "config": dataclasses.asdict(cfg)})
    return summary


def summary_line(summary: dict[str, Any], out: str) -> str:
    """What ``wmgym train agent`` prints at the end."""
    acc = summary.get("eval_action_accuracy")
    warm = f" after {summary['warm_start_steps']} world-model steps" if summary.get("warm_start_steps") else ""
    return (f"saved the agent to {out} ({summary['action_steps']} action steps{warm}, eval loss "
            f"{summary['eval_loss']}, held-out action accuracy {'n/a' if acc is None else f'{acc:.3f}'}); "
            f"play it with the agent spec lm:{out}")


def write_summary(summary: dict[str, Any], out: str | Path) -> None:
    if int(os.environ.get("RANK", "0")) != 0:
        return
    (Path(out) / "agent_summary.json").write_text(json.dumps(summary, indent=2, default=str))
