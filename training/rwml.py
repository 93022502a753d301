"""RWML: RL of a world model with a sim-to-real reward (``wmgym train rwml --model DIR --data TRAJ ...``).

RWML (Yu et al., 2026) trains the world model by RL instead of token matching:
the model predicts the next state after an action, the reward is how close that
prediction is to the real next state in a sentence-embedding space
(:mod:`wmgym.training.rewards`: binarised at a cosine-distance threshold, or
continuous), optimised with GRPO and an optional KL term to the starting model,
with the "too easy" prompts filtered out. Here GRPO is TRL's ``GRPOTrainer``.

Reads top to bottom:

1. **Transitions.** Every step of every episode is one transition: the prompt is
   the world-model chat up to the action (system = ``init_context``, the
   earlier actions and real observations, the action), rendered by TRL with the
   model's chat template and its generation prompt; the target is the real next
   assistant turn (observation, with the success marker on a winning step).
   Prompts longer than ``max_prompt_length`` tokens lose their oldest turns,
   the system prompt kept (what the twin does when its context overflows); a
   transition that does not fit even then is skipped and counted.
2. **Pre-pass** with the starting model: ``filter_samples`` completions per
   transition (temperature ``temperature``, as GRPO will sample). It measures
   the share of *effective* groups before any compute is spent on GRPO (groups
   whose rewards are not all equal: the only ones with a gradient; a reproduction
   of RWML on WebShop found most groups uniform) and feeds two filters:

   - **too easy**: every sample scores 1 -> dropped (RWML's filter).
   - **unpredictable**: no sample comes near the real state (best similarity
     under ``unpredictable_below``) *and* the samples disagree with each other
     (mean pairwise similarity under ``agreement``) -> dropped. A model that
     scatters its guesses and never lands near the truth is facing an outcome
     its context does not determine (search results, a random room) rather than
     dynamics it has wrong; the reward there is noise (binary: a uniform 0 group,
     no gradient at all; continuous: a gradient towards whichever guess happens
     to embed closer). A model that agrees with itself and is wrong is kept:
     that is a learnable error. Under the ``em`` reward the similarity is still
     measured with the embedder for this filter.

   The shares of both filters and of effective groups are logged and saved.
3. **GRPO** (``GRPOTrainer``): ``num_generations`` completions per prompt,
   ``prompts_per_step`` prompts per optimizer step, KL coefficient ``beta``.
   The reward function logs, per step, the mean reward, the mean similarity,
   the EM of the samples and the share of effective groups (also TRL's own
   ``frac_reward_zero_std``, its complement). Full fine-tuning or LoRA;
   checkpoints every ``save_steps`` and an interrupted run resumes from the
   newest one (the pre-pass is cached in ``OUT/prepass.json``).
4. **Save**: the model (LoRA merged) and tokenizer in ``out`` with
   ``rwml_summary.json`` (and ``wmgym.json``), loadable as any twin's ``model=``.

On CPU the defaults fit the tiny twins (one thread, no bf16); on a GPU name a hub
model and raise ``num_generations`` / ``prompts_per_step``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from wmgym.training.rewards import DEFAULT_EMBEDDER, KINDS, StateReward, as_text

#: Fields set from Python only, not flags of ``wmgym train rwml``.
PYTHON_ONLY = ("lora_alpha", "lora_dropout", "lora_targets", "warmup")


@dataclasses.dataclass
class RWMLConfig:
    """Settings of one RWML run (the CLI flags mirror these fields, less :data:`PYTHON_ONLY`)."""

    data: list[str] = dataclasses.field(default_factory=list)
    """Trajectory files (JSON Lines) whose transitions are trained on."""
    model: str = ""
    """The starting world model: a local HF directory (an SFT'd twin, e.g. ~/.cache/wmgym/models/ALFWorld-v0)
    or a hub id."""
    out: str = "runs/rwml"
    """Output directory: checkpoints, logs and the final model."""
    reward: str = "binary"
    """binary (RWML: 1 when the cosine distance to the real state is <= --threshold) | continuous (the cosine
    similarity) | em (exact match: the token-level baseline)."""
    threshold: float = 0.1
    """Cosine distance at or under which the binary reward is 1."""
    embedder: str = DEFAULT_EMBEDDER
    """Sentence-transformers model of the similarity (default all-MiniLM-L6-v2, shipped offline)."""
    marker_must_match: bool = True
    """A prediction whose success marker differs from the real state's scores 0."""
    beta: float = 0.0
    """KL coefficient to the starting model (0: no reference model is kept)."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; merged into the saved model."""
    lora_r: int = 16
    """LoRA rank."""
    lr: float | None = None
    """Learning rate (default 1e-4 for LoRA, 2e-5 for full fine-tuning of a hub model, 3e-4 for a tiny twin)."""
    max_steps: int = 50
    """GRPO optimizer steps."""
    num_generations: int = 4
    """Completions per prompt (the GRPO group)."""
    prompts_per_step: int = 4
    """Prompts per optimizer step (each sampled --num-generations times)."""
    temperature: float = 1.0
    """Sampling temperature of GRPO and of the pre-pass."""
    max_completion_length: int | None = None
    """Longest sampled observation in tokens (default: the longest real one in the data plus 8, at most 512)."""
    max_prompt_length: int | None = None
    """Longest prompt in tokens (default: the model's context less --max-completion-length); longer histories
    lose their oldest turns."""
    max_transitions: int = 0
    """Train on a random subset of this many transitions (0: all)."""
    filter_samples: int = 4
    """Pre-pass samples per transition for the filters and the effective-group share (0: no pre-pass)."""
    filter_easy: bool = True
    """Drop transitions whose pre-pass samples all score 1 (too easy)."""
    filter_unpredictable: bool = True
    """Drop transitions no pre-pass sample comes near (--unpredictable-below) whose samples also disagree."""
    unpredictable_below: float = 0.5
    """Best pre-pass similarity under which a transition may be unpredictable."""
    agreement: float = 0.8
    """Mean pairwise similarity of the pre-pass samples under which they disagree."""
    prepass_only: bool = False
    """Only run the pre-pass: measure and save the effective-group share and the filters' shares (in
    OUT/rwml_summary.json), train nothing. Worth doing before spending compute on an env."""
    save_steps: int = 50
    """Checkpoint every this many steps."""
    logging_steps: int = 1
    """Log every this many steps."""
    seed: int = 0
    """Seed of the subset, the pre-pass sampling and GRPO."""
    threads: int = 1
    """Torch CPU threads."""
    bf16: bool | None = None
    """bf16 (default: on a GPU with bf16, off on CPU)."""
    resume: bool = True
    """Continue from the newest checkpoint in --out when there is one."""
    trust_remote_code: bool = False
    """Allow custom model code from a hub repo."""
    progress: bool = True
    """Progress bars."""
    # PYTHON_ONLY
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """LoRA dropout."""
    lora_targets: str = "all-linear"
    """Modules to adapt."""
    warmup: float = 0.0
    """LR warmup as a fraction of the steps."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("give at least one trajectory file (--data FILE ...)")
        for path in self.data:
            if not os.path.exists(path):
                raise FileNotFoundError(f"trajectory file not found: {path}")
        if not self.model:
            raise ValueError("give the starting world model (--model DIR or hub id), e.g. an SFT'd twin such as "
                             "~/.cache/wmgym/models/ALFWorld-v0")
        if self.reward not in KINDS:
            raise ValueError(f"unknown --reward {self.reward!r}; choose one of {list(KINDS)}")
        if self.num_generations < 2:
            raise ValueError(f"num_generations must be >= 2 (GRPO compares samples of a group), "
                             f"got {self.num_generations}")
        for name in ("max_steps", "prompts_per_step", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.filter_samples < 0 or self.filter_samples == 1:
            raise ValueError(f"filter_samples must be 0 (no pre-pass) or >= 2, got {self.filter_samples}")
        if self.beta < 0 or self.temperature <= 0:
            raise ValueError(f"beta must be >= 0 and temperature > 0, got {self.beta} and {self.temperature}")
        StateReward(self.reward, self.threshold)  # checks the threshold


# ------------------------------------------------------------------- transitions
@dataclasses.dataclass
class Transition:
    """One (history, action) -> next state example."""

    messages: list[dict[str, str]]
    """The chat up to and including the action (system, user, assistant, ..., user)."""
    target: str
    """The real next assistant turn (observation, success marker on a winning step)."""
    env_id: str
    game_id: str
    step: int
    """1-based index of the step in its episode."""
    action: str
    dropped_turns: int = 0
    """Oldest turns left out to fit max_prompt_length."""

    @property
    def key(self) -> str:
        return f"{self.env_id}|{self.game_id}|{self.step}|{hashlib.sha1(self.target.encode()).hexdigest()[:8]}"


def episode_transitions(episodes: list) -> list[Transition]:
    """Every step of every episode as a :class:`Transition`, with the full history."""
    from wmgym.worldmodels.protocol import episode_messages

    out = []
    for ep in episodes:
        if not ep.steps:
            continue
        messages = episode_messages(ep)
        for t in range(2, len(messages), 2):  # messages[t] is the (t/2)-th assistant turn
            out.append(Transition(messages=messages[:t], target=messages[t]["content"], env_id=ep.env_id,
                                  game_id=str(ep.game_id), step=t // 2, action=messages[t - 1]["content"]))
    return out


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=False))


def fit_prompt(tokenizer: Any, tr: Transition, max_tokens: int) -> Transition | None:
    """``tr`` with its oldest turns dropped until the prompt fits ``max_tokens`` (system prompt kept), or
    ``None`` when even system + action does not fit."""
    msgs = tr.messages
    n = len(prompt_ids(tokenizer, msgs))
    if n <= max_tokens:
        return tr
    turns = (len(msgs) - 2) // 2  # earlier (user, assistant) pairs
    lo, hi = 1, turns  # binary search on how many of the oldest pairs to drop
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        cut = [msgs[0], *msgs[1 + 2 * mid:]]
        if len(prompt_ids(tokenizer, cut)) <= max_tokens:
            best, hi = mid, mid - 1
        else:
            lo = mid + 1
    if best is None:
        return None
    return dataclasses.replace(tr, messages=[msgs[0], *msgs[1 + 2 * best:]], dropped_turns=best)


def load_transitions(paths: list[str], tokenizer: Any, max_prompt_length: int, max_transitions: int = 0,
                     seed: int = 0) -> tuple[list[Transition], dict[str, int]]:
    """Transitions of the episodes in ``paths`` (canonical order, optionally a seeded subset), fitted to
    ``max_prompt_length``; returns them and counts (transitions, truncated, skipped)."""
    import numpy as np

    from wmgym.training.trajectories import canonical_order, load_episodes

    trs = episode_transitions(canonical_order(load_episodes(paths)))
    total = len(trs)
    if not trs:
        raise ValueError(f"no transitions in {paths} (episodes without steps only?)")
    if max_transitions and max_transitions < len(trs):
        pick = np.random.default_rng(seed).choice(len(trs), size=max_transitions, replace=False)
        trs = [trs[i] for i in sorted(pick)]
    fitted = [fit_prompt(tokenizer, tr, max_prompt_length) for tr in trs]
    kept = [tr for tr in fitted if tr is not None]
    stats = {"transitions_in_data": total, "transitions": len(kept), "skipped_too_long": len(trs) - len(kept),
             "truncated_history": sum(tr.dropped_turns > 0 for tr in kept)}
    return kept, stats


# ------------------------------------------------------------------- sampling
def sample(model: Any, tokenizer: Any, transitions: list[Transition], n: int, *, max_new_tokens: int,
           temperature: float = 1.0, greedy: bool = False, seed: int = 0, progress: bool = False) -> list[list[str]]:
    """``n`` completions per transition (``greedy``: one, by greedy decoding), as decoded text."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stop = list({i for i in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None))
                 if isinstance(i, int)} | _end_ids(tokenizer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    out: list[list[str]] = []
    it = transitions
    if progress:
        from tqdm import tqdm

        it = tqdm(transitions, desc="greedy" if greedy else f"sampling {n}/transition", leave=False)
    for k, tr in enumerate(it):
        ids = torch.tensor([prompt_ids(tokenizer, tr.messages)], device=device)
        torch.manual_seed(seed * 1_000_003 + k)
        with torch.no_grad():
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=not greedy, temperature=None if greedy else temperature, top_p=None,
                                 top_k=None if greedy else 0, num_return_sequences=1 if greedy else n,
                                 eos_token_id=stop, pad_token_id=pad)
        out.append([tokenizer.decode(g[ids.shape[1]:], skip_special_tokens=True) for g in gen])
    model.train(was_training)
    return out


def _end_ids(tokenizer: Any) -> set[int]:
    ids = set()
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid >= 0 and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return ids


# ------------------------------------------------------------------- pre-pass and filters
@dataclasses.dataclass
class PrePass:
    """What the starting model's samples say about each transition."""

    rewards: list[list[float]]
    best_similarity: list[float]
    agreement: list[float]
    """Mean pairwise similarity of each transition's samples."""

    def effective(self) -> list[bool]:
        """Groups whose rewards are not all equal (the only ones GRPO learns from)."""
        return [max(r) - min(r) > 1e-6 for r in self.rewards]


def prepass(samples: list[list[str]], transitions: list[Transition], reward: StateReward) -> PrePass:
    """Score pre-pass ``samples`` with ``reward``; similarities with the reward's embedder (also for ``em``)."""
    flat_p = [s for group in samples for s in group]
    flat_t = [tr.target for tr, group in zip(transitions, samples) for _ in group]
    rewards, sims = reward.scores(flat_p, flat_t)
    if reward.kind == "em":
        sims = StateReward("continuous", embedder=reward.embedder_name).similarities(flat_p, flat_t)
    pairs_a, pairs_b, owner = [], [], []
    for g, group in enumerate(samples):
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                pairs_a.append(group[i])
                pairs_b.append(group[j])
                owner.append(g)
    pair_sims = StateReward("continuous", embedder=reward.embedder_name).similarities(pairs_a, pairs_b)
    agree: list[list[float]] = [[] for _ in samples]
    for g, s in zip(owner, pair_sims):
        agree[g].append(s)
    out_r, out_best, k = [], [], 0
    for group in samples:
        out_r.append(rewards[k:k + len(group)])
        out_best.append(max(sims[k:k + len(group)]))
        k += len(group)
    return PrePass(out_r, out_best, [sum(a) / len(a) if a else 1.0 for a in agree])


def select(transitions: list[Transition], pre: PrePass, cfg: RWMLConfig) -> tuple[list[Transition], dict[str, Any]]:
    """Apply the too-easy and unpredictable filters (see module docstring); returns the kept transitions and
    the shares."""
    n = len(transitions)
    easy = [all(r >= 1.0 - 1e-6 for r in rs) for rs in pre.rewards]
    unpredictable = [b < cfg.unpredictable_below and a < cfg.agreement
                     for b, a in zip(pre.best_similarity, pre.agreement)]
    keep = [not (cfg.filter_easy and e) and not (cfg.filter_unpredictable and u) for e, u in zip(easy, unpredictable)]
    effective = pre.effective()
    kept = [tr for tr, k in zip(transitions, keep) if k]
    share = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    stats = {
        "prepass_transitions": n, "prepass_samples": cfg.filter_samples,
        "prepass_mean_reward": share([sum(r) / len(r) for r in pre.rewards]),
        "effective_share_before": share(effective),
        "too_easy_share": share(easy), "unpredictable_share": share(unpredictable),
        "dropped_too_easy": sum(e for e, k in zip(easy, keep) if not k) if cfg.filter_easy else 0,
        "dropped_unpredictable": sum(1 for e, u, k in zip(easy, unpredictable, keep)
                                     if not k and u and not (cfg.filter_easy and e)) if cfg.filter_unpredictable else 0,
        "kept": len(kept),
        "effective_share_of_kept": share([e for e, k in zip(effective, keep) if k]),
    }
    return kept, stats


# ------------------------------------------------------------------- GRPO
class RewardFunction:
    """TRL reward function: scores completions against the ``target`` column and logs, per call (one GRPO
    generation batch), the mean similarity, the samples' EM and the share of effective groups."""

    def __init__(self, reward: StateReward):
        self.reward = reward
        self.__name__ = f"rwml_{reward.kind}"  # TRL names the logged reward after this
        self.history: list[dict[str, float]] = []
        #: The distinct prompts (transition keys) this process scored.
        self.keys: set[str] = set()

    def __call__(self, prompts: list, completions: list, target: list, key: list | None = None,
                 log_metric: Any = None, **_: Any) -> list[float]:
        texts = [as_text(c) for c in completions]
        self.keys.update(key or [])
        rewards, sims = self.reward.scores(texts, target)
        em = [float(as_text(c).strip() == as_text(t).strip()) for c, t in zip(texts, target)]
        groups: dict[Any, list[float]] = {}
        for k, r in zip(key or range(len(texts)), rewards):
            groups.setdefault(k, []).append(r)
        effective = sum(1 for rs in groups.values() if max(rs) - min(rs) > 1e-6) / max(1, len(groups))
        finite = [s for s in sims if not math.isnan(s)]
        row = {"reward": sum(rewards) / max(1, len(rewards)), "em": sum(em) / max(1, len(em)),
               "effective_groups": effective}
        if finite:
            row["similarity"] = sum(finite) / len(finite)
        self.history.append(row)
        if log_metric is not None:
            for name, value in row.items():
                if name != "reward":
                    log_metric(name, value)
        return rewards


def load_model(cfg: RWMLConfig) -> tuple[Any, Any]:
    from wmgym.training.sft import load_pretrained
    from wmgym.worldmodels.loading import resolve_model

    model, tokenizer = load_pretrained(resolve_model(cfg.model), cfg.trust_remote_code)
    model.config.use_cache = True  # sampling; the tiny twins are saved with use_cache False (training)
    return model, tokenizer


def default_lr(cfg: RWMLConfig, model: Any) -> float:
    if cfg.lr is not None:
        return cfg.lr
    if cfg.lora:
        return 1e-4
    return 3e-4 if sum(p.numel() for p in model.parameters()) < 20_000_000 else 2e-5


def completion_budget(tokenizer: Any, transitions: list[Transition]) -> int:
    """Longest real observation (its end-of-turn token included) plus a margin of 8 tokens, at most 512."""
    longest = max(len(tokenizer(tr.target, add_special_tokens=False)["input_ids"]) for tr in transitions)
    return min(512, longest + 1 + 8)


def _config_hash(cfg: RWMLConfig, extra: dict[str, Any]) -> str:
    fields = {k: v for k, v in dataclasses.asdict(cfg).items()
              if k in ("data", "model", "reward", "threshold", "embedder", "marker_must_match", "temperature",
                       "max_transitions", "filter_samples", "seed")}
    return hashlib.sha1(json.dumps({**fields, **extra}, sort_keys=True, default=str).encode()).hexdigest()[:12]


def train(cfg: RWMLConfig, *, model: Any = None, tokenizer: Any = None,
          prepass_samples: list[list[str]] | None = None) -> dict[str, Any]:
    """Run RWML (see module docstring); returns the summary (also written to ``OUT/rwml_summary.json``).

    ``model``/``tokenizer`` replace loading ``cfg.model``; ``prepass_samples`` (completions per transition, in
    the order :func:`load_transitions` gives) replace the pre-pass sampling, so a benchmark can score one set of
    samples under several rewards.
    """
    import torch

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    writer = int(os.environ.get("RANK", "0")) == 0  # a data-parallel run (torchrun): rank 0 alone writes
    if model is None:
        model, tokenizer = load_model(cfg)
    context = getattr(model.config, "max_position_embeddings", None) or 4096
    reward = StateReward(cfg.reward, cfg.threshold, cfg.embedder, cfg.marker_must_match)

    # 1. transitions
    completion_len = cfg.max_completion_length
    if completion_len is None:
        probe, _ = load_transitions(cfg.data, tokenizer, 10**9, cfg.max_transitions, cfg.seed)
        completion_len = completion_budget(tokenizer, probe)
    max_prompt = cfg.max_prompt_length or (context - completion_len)
    transitions, tstats = load_transitions(cfg.data, tokenizer, max_prompt, cfg.max_transitions, cfg.seed)
    if not transitions:
        raise ValueError(f"no transition fits {max_prompt} prompt tokens; raise --max-prompt-length")
    print(f"transitions: {tstats['transitions']} ({tstats['truncated_history']} with the oldest turns dropped, "
          f"{tstats['skipped_too_long']} skipped), completions up to {completion_len} tokens, "
          f"prompts up to {max_prompt}", flush=True)

    # 2. pre-pass and filters
    fstats: dict[str, Any] = {}
    kept = transitions
    if cfg.prepass_only and not cfg.filter_samples:
        raise ValueError("--prepass-only needs --filter-samples >= 2")
    if cfg.filter_samples:
        cache = out / "prepass.json"
        key = _config_hash(cfg, {"completion_len": completion_len, "max_prompt": max_prompt})
        if prepass_samples is None and cache.exists() and json.loads(cache.read_text()).get("key") == key:
            prepass_samples = json.loads(cache.read_text())["samples"]
            print(f"pre-pass: reusing {cache}")
        t0 = time.time()
        if prepass_samples is None:
            prepass_samples = sample(model, tokenizer, transitions, cfg.filter_samples, max_new_tokens=completion_len,
                                     temperature=cfg.temperature, seed=cfg.seed, progress=cfg.progress)
            if writer:  # under torchrun every rank samples the same pre-pass (same seeds); rank 0 writes it
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(json.dumps({"key": key, "samples": prepass_samples}))
                os.replace(tmp, cache)
        if len(prepass_samples) != len(transitions):
            raise ValueError(f"got pre-pass samples for {len(prepass_samples)} transitions, expected "
                             f"{len(transitions)}")
        pre = prepass(prepass_samples, transitions, reward)
        kept, fstats = select(transitions, pre, cfg)
        fstats["prepass_s"] = round(time.time() - t0, 1)
        print(f"pre-pass ({cfg.filter_samples} samples/transition): mean reward {fstats['prepass_mean_reward']:.3f}, "
              f"effective groups {100 * fstats['effective_share_before']:.1f}%, too easy "
              f"{100 * fstats['too_easy_share']:.1f}%, unpredictable {100 * fstats['unpredictable_share']:.1f}%; "
              f"kept {len(kept)} of {len(transitions)} (effective among kept "
              f"{100 * fstats['effective_share_of_kept']:.1f}%)", flush=True)
        if cfg.prepass_only:
            summary = {"model": cfg.model, "reward": cfg.reward, "threshold": cfg.threshold,
                       "embedder": cfg.embedder, "prepass_only": True, "max_completion_length": completion_len,
                       "max_prompt_length": max_prompt, **tstats, **fstats, "config": dataclasses.asdict(cfg)}
            if writer:
                (out / "rwml_summary.json").write_text(json.dumps(summary, indent=2, default=str))
            return summary
        if not kept:
            raise ValueError("the filters dropped every transition (all too easy or unpredictable for the starting "
                             "model); use --no-filter-easy / --no-filter-unpredictable or other data")

    # 3. GRPO
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from wmgym.training.sft import lora_config
    from wmgym.training.sft_trainer import bf16_supported, latest_checkpoint

    on_gpu = torch.cuda.is_available()
    use_bf16 = (on_gpu and bf16_supported()) if cfg.bf16 is None else cfg.bf16
    dataset = Dataset.from_list([{"prompt": tr.messages, "target": tr.target, "key": tr.key} for tr in kept])
    batch = cfg.prompts_per_step * cfg.num_generations
    args = GRPOConfig(
        output_dir=str(out), max_steps=cfg.max_steps, learning_rate=default_lr(cfg, model),
        per_device_train_batch_size=batch, gradient_accumulation_steps=1, num_generations=cfg.num_generations,
        max_completion_length=completion_len, temperature=cfg.temperature, top_k=0, beta=cfg.beta,
        logging_steps=cfg.logging_steps, save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed,
        use_cpu=not on_gpu, bf16=use_bf16, report_to="none", disable_tqdm=not cfg.progress,
        warmup_steps=int(round(cfg.warmup * cfg.max_steps)),
        lr_scheduler_type="constant_with_warmup" if cfg.warmup else "constant",
        save_only_model=False, remove_unused_columns=False, shuffle_dataset=True, log_completions=False,
        dataloader_num_workers=0,
    )
    peft_config = lora_config(cfg) if cfg.lora else None
    reward_fn = RewardFunction(reward)
    trainer = GRPOTrainer(model=model, reward_funcs=reward_fn, args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    resume = latest_checkpoint(out) if cfg.resume else None
    if resume:
        print(f"resuming from {resume}")
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.time() - t0

    # 4. save
    trained = trainer.model
    if cfg.lora:
        trained = trained.merge_and_unload()
    reward_key = f"rewards/{reward_fn.__name__}/mean"
    history = [{"step": h["step"], "reward": h.get(reward_key, h.get("reward")), "em": h.get("em"),
                "similarity": h.get("similarity"), "effective_groups": h.get("effective_groups"),
                "frac_reward_zero_std": h.get("frac_reward_zero_std"), "kl": h.get("kl")}
               for h in trainer.state.log_history if reward_key in h or "reward" in h]
    processes = trainer.accelerator.num_processes
    if processes > 1:  # data parallel: each rank scored its own prompts (a collective: every rank gets here)
        from accelerate.utils import gather_object

        per_rank = gather_object([sorted(reward_fn.keys)])
        seen = [k for keys in per_rank for k in keys]
        fstats = {**fstats, "prompts_per_rank": [len(keys) for keys in per_rank],
                  "prompts_on_several_ranks": len(seen) - len(set(seen))}
    summary = {"model": cfg.model, "reward": cfg.reward, "threshold": cfg.threshold, "embedder": cfg.embedder,
               "beta": cfg.beta, "lora": cfg.lora, "steps": trainer.state.global_step,
               "num_generations": cfg.num_generations, "prompts_per_step": cfg.prompts_per_step,
               "processes": processes, "completions_sampled": trainer.state.global_step * batch * processes,
               "max_completion_length": completion_len,
               "max_prompt_length": max_prompt, "train_loss": result.training_loss, "wall_s": round(wall, 1),
               "resumed_from": resume, **tstats, **fstats, "history": history,
               "mean_reward_first": history[0]["reward"] if history else None,
               "mean_reward_last": history[-1]["reward"] if history else None,
               "effective_groups_mean": _mean([h["effective_groups"] for h in history]),
               "config": dataclasses.asdict(cfg)}
    if trainer.is_world_process_zero():
        trained.config.use_cache = True
        trained.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        (out / "rwml_summary.json").write_text(json.dumps(summary, indent=2, default=str))
        meta = out / "wmgym.json"
        (meta.write_text(json.dumps({"rwml": {k: v for k, v in summary.items() if k != "history"}}, indent=2,
                                    default=str)))
    return summary


def _mean(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None
