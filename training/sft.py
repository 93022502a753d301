"""Dynamics-aligned SFT of a world model: trajectories in, an HF model directory out.

``wmgym train sft --data tw.jsonl --model tiny --out runs/tw``

Reads top to bottom: config, data (episodes -> chats -> labelled token ids,
held-out games), model (tiny from scratch, or a local/hub causal LM, full or
LoRA), the HF ``Trainer`` (checkpoints in safetensors every ``save_steps``,
resumed automatically from the newest one in ``out``), and the final save.
The same command runs under ``accelerate launch`` / DeepSpeed on GPUs; the
defaults are for this CPU.

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

from wmgym.training.data import IGNORE_INDEX


@dataclasses.dataclass
class SFTConfig:
    """Settings of one SFT run (the CLI flags mirror these fields)."""

    data: list[str] = dataclasses.field(default_factory=list)
    """Trajectory files (JSON Lines) to train on."""
    out: str = "runs/sft"
    """Output directory: checkpoints, logs and the final model."""
    model: str = "tiny"
    """``tiny`` (from scratch, see --preset), a local HF model directory, or a hub id."""
    preset: str = "tiny"
    """Shape of the tiny model when --model tiny (tiny | tiny-s | tiny-m | tiny-l)."""
    eval_data: list[str] = dataclasses.field(default_factory=list)
    """Held-out trajectory files; without them ``eval_fraction`` of the training games are held out."""
    eval_fraction: float = 0.05
    """Share of games held out for eval loss when no --eval-data is given."""
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
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path."""
    lora_targets: str = "all-linear"
    """Modules to adapt (comma-separated names, or all-linear)."""
    max_length: int = 2048
    """Longest training sequence in tokens; longer chats are cut into windows of whole turns."""
    batch_tokens: int = 4096
    """Tokens per batch (padded length x sequences); a batch groups sequences of similar length, and a
    sequence longer than this is a batch of its own. Small batches (more updates per token) learn faster here."""
    grad_accum: int = 1
    """Batches per optimizer step."""
    epochs: float = 3.0
    """Passes over the training data (ignored when --max-steps > 0)."""
    max_steps: int = 0
    """Optimizer steps to run (0: use --epochs)."""
    lr: float | None = None
    """Peak learning rate (default 2e-3 for tiny, 2e-4 for LoRA, 2e-5 for full fine-tuning)."""
    warmup: float = 0.05
    """Warmup as a fraction of the steps."""
    curriculum: float = 0.0
    """Fraction of the steps trained first on short windows of --curriculum-turns turns without the system
    prompt (copying from the action is learnt far faster in short contexts), before the full chats."""
    curriculum_turns: int = 3
    """Turns per window in the curriculum phase."""
    curriculum_prefix: float = 0.0
    """Fraction of the steps trained next (after --curriculum) on the start of each chat: its system prompt and
    first --prefix-turns turns, where looking the initial state up is learnt fast."""
    prefix_turns: int = 6
    """Turns per chat start in the --curriculum-prefix phase."""
    curriculum_all_tokens: bool = False
    """In the curriculum phase every token is a label, actions included (a continued-pretraining stage on the
    env's text, as in Qwen-AgentWorld's CPT -> SFT); the SFT phase after it keeps labels on observations only."""
    induction_warmup: int = 0
    """--model tiny: before SFT, train up to this many steps on a synthetic copying task (stopping early once the
    model copies 95% right), so content-based induction heads exist before the chats are seen (see
    ``tiny.induction_warmup``). The warmed-up weights are saved in OUT/init, so a resumed run does not redo it."""
    list_warmup: int = 0
    """With --induction-warmup: then up to this many steps of a second warm-up on lists, where the next item is
    found by the item two tokens back, as a listed object follows its receptacle in ``tiny-phrases`` tokens (see
    ``tiny.induction_warmup``; mixed into the first warm-up instead, the copying heads never formed)."""
    recall_warmup: int = 0
    """With --induction-warmup: then this many steps of a third warm-up on the env's own text: a window of a
    training chat's initial state, then spans of it to continue from a few given tokens (see
    ``tiny.recall_warmup``), so copies keyed on several recurring words win over what the words usually say."""
    recall_mix: float = 0.0
    """Fraction of the SFT batches (evenly spread) replaced by batches of the recall task (``tiny.recall_task_batch``
    on windows of the training chats), so copying from earlier text is kept up while the chats are learnt: without
    it SFT unlearns it (TextWorld: recall accuracy 0.84 after --recall-warmup, 0.46 after SFT; 0.89 with 0.25)."""
    attn_only: float = 0.0
    """Fraction of the steps trained with the MLPs off (zero, frozen output projection), so attention learns
    to copy before MLPs learn n-gram shortcuts (Llama-style models)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    scheduler: str = "cosine"
    """LR schedule (any transformers scheduler name: cosine, linear, constant_with_warmup, ...)."""
    bf16: bool | None = None
    """bf16 autocast (default: on where the hardware has bf16: CPUs with AVX512-BF16/AMX, Ampere+ GPUs)."""
    threads: int = 1
    """Torch CPU threads; 1 is fastest on this 2-vCPU machine (2 threads share one core's FPUs)."""
    compile: bool = False
    """torch.compile the decoder's forward (dynamic shapes): ~1.2x on CPU after ~30 s of compiling."""
    save_steps: int = 200
    """Checkpoint every this many steps (resume after a kill loses at most this much)."""
    eval_steps: int = 200
    """Held-out loss (and EM) every this many steps."""
    save_total_limit: int = 2
    """Checkpoints kept."""
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

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give at least one trajectory file (--data FILE ...)")
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
        if not 0 <= self.curriculum_prefix < 1 - self.curriculum or self.prefix_turns < 1:
            raise ValueError(f"curriculum_prefix must be in [0, 1 - curriculum) and prefix_turns >= 1, got "
                             f"{self.curriculum_prefix} and {self.prefix_turns}")
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
        if not 0 <= self.attn_only < 1:
            raise ValueError(f"attn_only must be a fraction of the steps in [0, 1), got {self.attn_only}")
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


# --------------------------------------------------------------------- data
def token_batches(examples: list[dict[str, Any]], batch_tokens: int, seed: int) -> list[list[dict[str, Any]]]:
    """Group examples of similar length into batches of at most ``batch_tokens`` padded tokens."""
    import numpy as np

    rng = np.random.default_rng(seed)
    # Sort by length with a little noise so batches differ between runs of similar lengths.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]) * (1 + 0.1 * rng.random()))
    batches, cur, width = [], [], 0
    for i in order:
        n = len(examples[i]["input_ids"])
        if cur and max(width, n) * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, width = [], 0
        cur.append(examples[i])
        width = max(width, n)
    if cur:
        batches.append(cur)
    return batches


def schedule(examples: list[dict[str, Any]], phases: list[tuple[list[dict[str, Any]], float]], cfg: SFTConfig,
             n_batches: int) -> list[list[dict[str, Any]]]:
    """Every batch of the run in order: each curriculum phase ``(examples, fraction of the batches)`` in turn,
    then shuffled epochs of the chats.

    The order is fixed by ``cfg.seed`` (the Trainer reads it sequentially), so a resumed run skips exactly
    the batches it already trained on.
    """
    import numpy as np

    rng = np.random.default_rng(cfg.seed)
    out: list[list[dict[str, Any]]] = []
    for k, (ex, fraction) in enumerate(phases):
        end = min(n_batches, len(out) + int(fraction * n_batches)) if ex else len(out)
        epoch = 0
        while len(out) < end:
            group = token_batches(ex, cfg.batch_tokens, cfg.seed + 1000 * (k + 1) + epoch)
            if not group:
                raise ValueError(f"curriculum phase {k + 1} has no example that fits max_length={cfg.max_length}")
            out.extend(group[i] for i in rng.permutation(len(group)))
            epoch += 1
        del out[end:]
    epoch = 0
    while len(out) < n_batches:
        group = token_batches(examples, cfg.batch_tokens, cfg.seed + epoch)
        out.extend(group[i] for i in rng.permutation(len(group)))
        epoch += 1
    return out[:n_batches]


def mix_recall(batches: list[list[dict[str, Any]]], examples: list[dict[str, Any]], fraction: float,
               batch_tokens: int, seed: int) -> int:
    """Replace every ``1 / fraction``-th batch (in place) by a recall batch drawn from the examples' token ids,
    the same ones for the same seed (so a resumed run trains on the batches it would have); returns how many."""
    import torch

    from wmgym.training import tiny

    texts = [torch.tensor(e["input_ids"]) for e in examples]
    g = torch.Generator().manual_seed(seed + 3)
    every = max(1, round(1 / fraction))
    picks = range(every - 1, len(batches), every)
    for i in picks:
        ids, labels = tiny.recall_task_batch(texts, g, batch_tokens, window=1024, span=24, spans=16, cue=3)
        batches[i] = [{"input_ids": a.tolist(), "labels": b.tolist()} for a, b in zip(ids, labels)]
    return len(picks)


class _Batches:
    """A map-style dataset whose items are whole pre-grouped batches (the Trainer's batch size is 1)."""

    def __init__(self, batches: list[list[dict[str, Any]]]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[dict[str, Any]]:
        return self.batches[i]


class _BatchCollator:
    def __init__(self, pad_id: int):
        from wmgym.training.data import Collator

        self.inner = Collator(pad_id)

    def __call__(self, items: list[list[dict[str, Any]]]) -> dict[str, Any]:
        return self.inner([ex for batch in items for ex in batch])


def load_data(cfg: SFTConfig) -> tuple[list, list, Any]:
    """Training and held-out episodes (after the mix) and the mix report (or ``None``)."""
    from wmgym.training.data import check_mix, group_by_env, mix_sample, parse_mix, split_by_game
    from wmgym.training.trajectories import canonical_order, load_episodes

    # In a canonical order, so the same episodes train the same model whatever order their files hold them in.
    episodes = canonical_order(load_episodes(cfg.data))
    if cfg.eval_data:
        train, held = episodes, canonical_order(load_episodes(cfg.eval_data))
    else:
        train, held = split_by_game(episodes, cfg.eval_fraction, cfg.seed)
    report = None
    if cfg.mix:
        by_env = group_by_env(train)
        report = check_mix(parse_mix(cfg.mix), by_env, cfg.allow_missing)
        train = mix_sample(by_env, report.weights, cfg.seed)
        held = [ep for ep in held if ep.env_id in report.weights]
    if not any(ep.steps for ep in train):
        raise ValueError(f"no episode with steps in {cfg.data}: nothing to train on")
    return train, held, report


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

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.chat_template is None:
        raise ValueError(f"{cfg.model} has no chat template; use an instruct/chat model or add one to its "
                         "tokenizer_config.json")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(cfg.model, trust_remote_code=cfg.trust_remote_code,
                                                 use_safetensors=True)
    if cfg.lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as e:  # pragma: no cover - peft is a core dependency
            raise ImportError("LoRA needs peft: pip install wmgym[lora] (or pip install peft)") from e
        targets: Any = cfg.lora_targets if cfg.lora_targets == "all-linear" else cfg.lora_targets.split(",")
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                 lora_dropout=cfg.lora_dropout, target_modules=targets,
                                                 task_type="CAUSAL_LM"))
    return model, tokenizer


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
    from wmgym.training.sft_callbacks import write_progress

    def reporter(phase: str, max_steps: int):
        def report(step: int, loss: float, accuracy: float) -> None:  # what the quickstart's bars show
            if step % 10 == 0:
                write_progress(cfg.out, {"phase": phase, "step": step, "loss": loss, "max_steps": max_steps,
                                         "copy_accuracy": accuracy})
        return report

    def run(phase: str, max_steps: int, seed: int, separators: int = 0) -> dict[str, Any]:
        done = tiny.induction_warmup(model, tokenizer, max_steps, seed=seed, progress=cfg.progress,
                                     on_step=reporter(phase, max_steps), separators=separators)
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
                                    on_step=reporter("recall warm-up", cfg.recall_warmup))
        print(f"recall warm-up: {recall['steps']} steps, copy accuracy {recall['accuracy']:.2f}, "
              f"{recall['seconds']:.0f} s")
        stats["recall"] = recall
    model.save_pretrained(init, safe_serialization=True)
    done.write_text(json.dumps(stats))  # written last: its presence means the weights beside it are complete
    return stats


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


# ------------------------------------------------------------------ trainer
def _make_trainer_class():
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


def train(cfg: SFTConfig) -> dict[str, Any]:
    """Run SFT; returns a summary (steps, losses, EM, tokens/s, where the model is)."""
    import time

    import torch
    from transformers import TrainingArguments

    from wmgym.training import tiny
    from wmgym.training.data import build_examples
    from wmgym.training.sft_callbacks import attention_only_warmup_callback, progress_callback

    torch.set_num_threads(cfg.threads)
    train_eps, held_eps, report = load_data(cfg)
    if report is not None:
        print("mix:\n" + str(report))
    model, tokenizer = load_model(cfg, train_eps)
    if cfg.compile:
        # Compile the forward function, not the module: parameter names (and so checkpoints) stay the same.
        decoder = (model.get_base_model() if cfg.lora else model).get_decoder()
        decoder.forward = torch.compile(decoder.forward, dynamic=True)
    train_ex, tstats = build_examples(tokenizer, train_eps, cfg.max_length)
    if not train_ex:
        raise ValueError(f"no turn of the {tstats['chats']} training chats fits max_length={cfg.max_length} tokens "
                         f"with its system prompt ({tstats['skipped_turns']} turns skipped); raise --max-length")
    eval_ex, _ = build_examples(tokenizer, held_eps, cfg.max_length) if held_eps else ([], {})
    accum = cfg.grad_accum
    steps_per_epoch = math.ceil(len(token_batches(train_ex, cfg.batch_tokens, cfg.seed)) / accum)
    total_steps = cfg.max_steps if cfg.max_steps > 0 else max(1, int(round(cfg.epochs * steps_per_epoch)))
    phases = [
        (build_examples(tokenizer, train_eps, cfg.max_length, cfg.curriculum_turns, cfg.curriculum_all_tokens)[0]
         if cfg.curriculum else [], cfg.curriculum),
        (build_examples(tokenizer, train_eps, cfg.max_length, prefix_turns=cfg.prefix_turns)[0]
         if cfg.curriculum_prefix else [], cfg.curriculum_prefix),
    ]
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
    args = _training_args(cfg, total_steps, use_bf16, bool(eval_ex), accum)
    trainer = _make_trainer_class()(
        model=model, args=args, data_collator=_BatchCollator(tokenizer.pad_token_id), processing_class=tokenizer,
        train_dataset=_Batches(batches),
        eval_dataset=_Batches(token_batches(eval_ex, cfg.batch_tokens, cfg.seed)) if eval_ex else None,
        callbacks=[progress_callback(cfg.out)]
        + ([attention_only_warmup_callback(int(cfg.attn_only * total_steps))] if cfg.attn_only > 0 else []),
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
        "wall_s": wall, "cpu_s": cpu, "data": cfg.data, "mix": report.weights if report else None,
        "eval_em_episodes": len(trainer.wm_eval_episodes),
        "eval_history": [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)],
        "loss_history": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h],
    }
    if summary["tokens_seen_this_run"] and wall > 0:
        summary["tokens_per_s"] = summary["tokens_seen_this_run"] / wall
    tiny.save_pretrained(model, tokenizer, cfg.out, extra={"sft": summary, "config": dataclasses.asdict(cfg)})
    return summary


def _training_args(cfg: SFTConfig, total_steps: int, use_bf16: bool, has_eval: bool, accum: int):
    """``TrainingArguments`` for this run (TensorBoard logs go under OUT/runs)."""
    import torch
    from transformers import TrainingArguments

    kw: dict[str, Any] = {}
    if "logging_dir" in TrainingArguments.__dataclass_fields__:  # transformers < 5
        kw["logging_dir"] = str(Path(cfg.out) / "runs")
    else:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(Path(cfg.out) / "runs"))
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


def write_summary(summary: dict[str, Any], out: str | Path) -> None:
    (Path(out) / "sft_summary.json").write_text(json.dumps(summary, indent=2, default=str))
