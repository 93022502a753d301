"""The embedded default twins: ``wmgym train default --env ID``.

For a real env id this collects trajectories with behavioural coverage (the
expert, noisy experts and random play on the train split; expert and noisy
expert on the test split, as the fidelity benchmark plays them), trains the
tiny preset on them, scores teacher-forced exact match on the test episodes
and saves the model where ``gym.make("WM-<id>")`` finds it
(:func:`wmgym.worldmodels.loading.default_model_dir`).

``WMGYM_RECIPES=FILE`` (a JSON object ``{env id: recipe fields}``) replaces
recipes without editing code, for experiments and for tests that run the
whole loop in miniature.

Everything is cached under ``WMGYM_HOME``: trajectory files resume, training
resumes from its last checkpoint, and a finished default with the same recipe
is not retrained (``--force`` retrains).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from wmgym.paths import wmgym_home
from wmgym.worldmodels.loading import default_model_dir


@dataclasses.dataclass
class DefaultRecipe:
    """How the default twin of one env is made."""

    env: str
    """Real env id."""
    train: list[tuple[str, int]]
    """(policy, episodes) collected on the train split."""
    test: list[tuple[str, int]]
    """(policy, episodes) collected on the held-out split (test, or valid_unseen) for EM."""
    sft: dict[str, Any] = dataclasses.field(default_factory=dict)
    """SFTConfig fields for this env (the rest keep their defaults)."""
    max_steps: int | None = None
    """Step limit per collected episode (default: the env's)."""
    spread: bool = False
    """Collect with ``CollectConfig.spread``: episodes spread over the split's games instead of its first ones
    (for splits whose games are grouped by task, as SciWorld's)."""

    def key(self) -> str:
        """A hash of the recipe and of the env's init_context wording: a default trained with another
        recipe, or on episodes worded otherwise, is retrained."""
        fields = {**dataclasses.asdict(self), **_context_stamp(self.env)}
        if not self.spread:  # absent when off, so the recipes made before the field keep their keys
            del fields["spread"]
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def _context_stamp(env: str) -> dict[str, int]:
    """``{"context_version": n}`` of an env whose init_context wording has changed (nothing for version 1,
    so the hashes of envs whose wording never changed stay the same)."""
    from wmgym.envs import env_class

    version = getattr(env_class(env), "context_version", 1)
    return {"context_version": version} if version != 1 else {}


#: The generic recipe, for an env that declares no ``default_twin`` (tuned recipes are declared by their env:
#: ``TextEnv.default_twin``). Coverage: the expert, noisy experts and random play on the train split; expert
#: and noisy expert on the held-out split, as the fidelity benchmark plays them. Training: the 0.76M-parameter
#: tiny preset (~11k tokens/s on one core), short turn windows first (curriculum: copying from the action forms
#: in short contexts), then whole chats.
GENERIC: dict[str, Any] = {
    "train": [("expert", 300), ("noisy-expert:0.3", 300), ("random", 100)],
    "test": [("expert", 30), ("noisy-expert:0.3", 30)],
    "sft": {"preset": "tiny", "curriculum": 0.3, "max_steps": 1600, "batch_tokens": 4096, "lr": 3e-3,
            "max_length": 2048, "eval_steps": 400, "save_steps": 400},
    "max_steps": None,
    "spread": False,
}


def _recipe(env: str, fields: dict[str, Any], defaults: dict[str, Any] = GENERIC) -> DefaultRecipe:
    """A recipe from plain data (a ``default_twin`` declaration or a ``WMGYM_RECIPES`` entry); missing
    fields come from ``defaults``."""
    unknown = set(fields) - set(GENERIC)
    if unknown:
        raise ValueError(f"recipe of {env} has unknown fields {sorted(unknown)}; valid fields: {sorted(GENERIC)}")
    merged = {**defaults, **fields}
    return DefaultRecipe(env=env, train=[tuple(p) for p in merged["train"]], test=[tuple(p) for p in merged["test"]],
                         sft=dict(merged["sft"]), max_steps=merged["max_steps"], spread=bool(merged["spread"]))


def recipe_for(env: str) -> DefaultRecipe:
    """The recipe of ``env``: a ``WMGYM_RECIPES`` entry, else the env's ``default_twin`` declaration, else the
    generic recipe."""
    import gymnasium as gym

    import wmgym  # noqa: F401
    from wmgym.envs import TWIN_PREFIX, env_class, real_id

    gym.spec(env)  # unknown ids fail with Gymnasium's suggestions
    if env.startswith(TWIN_PREFIX):
        raise ValueError(f"{env!r} is a twin; train the default of its real env {real_id(env)!r}")
    override = os.environ.get("WMGYM_RECIPES")
    if override:
        try:
            fields = json.loads(Path(override).read_text()).get(env)
        except (OSError, ValueError) as e:
            raise ValueError(f"WMGYM_RECIPES={override!r} is not a readable JSON file of recipes: {e}") from None
        if fields is not None:  # the generic coverage, and SFTConfig's own defaults for what it leaves out
            return _recipe(env, {k: v for k, v in fields.items() if k != "env"}, {**GENERIC, "sft": {}})
    return _recipe(env, env_class(env).default_twin or {})


def data_paths(env: str) -> tuple[Path, Path]:
    """Trajectory files (train, test) of the default of ``env``: one folder per collection plan, so a
    recipe that collects differently never trains on another plan's episodes (changing only the training
    settings reuses the data)."""
    r = recipe_for(env)
    plan_fields = [r.train, r.test, r.max_steps, *_context_stamp(env).values()]
    if r.spread:  # only then: the plans made before the field keep their folders
        plan_fields.append({"spread": True})
    plan = hashlib.sha1(json.dumps(plan_fields).encode()).hexdigest()[:12]
    d = wmgym_home() / "data" / env / plan
    return d / "train.jsonl", d / "test.jsonl"


def run_dir(env: str) -> Path:
    """Working directory of the default's training (checkpoints, logs)."""
    return wmgym_home() / "runs" / "default" / env


def collect_data(recipe: DefaultRecipe, workers: int = 2, progress: bool = True) -> tuple[Path, Path]:
    """Collect (or finish collecting) the default's train and test trajectories."""
    from wmgym.envs import heldout_split
    from wmgym.training.collect import CollectConfig, collect

    train_path, test_path = data_paths(recipe.env)
    test_split = heldout_split(recipe.env)  # the env's declared held-out split: what the benchmarks score on
    for split, plan, path in (("train", recipe.train, train_path), (test_split, recipe.test, test_path)):
        for policy, n in plan:
            collect(CollectConfig(env=recipe.env, policy=policy, episodes=n, out=str(path), workers=workers,
                                  split=split, seed=0 if split == "train" else 10_000, max_steps=recipe.max_steps,
                                  progress=progress, spread=recipe.spread))
    return train_path, test_path


def trained_default(env: str) -> dict[str, Any] | None:
    """The metadata of a finished default of ``env`` with the current recipe, else ``None``."""
    meta = default_model_dir(env) / "wmgym.json"
    if not meta.exists():
        return None
    info = json.loads(meta.read_text())
    return info if info.get("recipe_key") == recipe_for(env).key() else None


def evaluate_default(model_dir: str | Path, test_path: str | Path, max_length: int = 4096) -> dict[str, Any]:
    """Teacher-forced single-step EM (fp32, one pass per episode) of a model on a test trajectory file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from wmgym.training.evaluate import argmax_em
    from wmgym.training.trajectories import load_episodes

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    episodes = load_episodes(test_path)
    res = argmax_em(model, tokenizer, episodes, max_length=max_length)
    by_policy = {}
    for policy in sorted({ep.policy for ep in episodes}):
        by_policy[policy] = argmax_em(model, tokenizer, [e for e in episodes if e.policy == policy],
                                      max_length=max_length).em
    return {"em": res.em, "token_accuracy": res.token_accuracy, "steps": res.n_steps, "episodes": len(episodes),
            "em_per_policy": by_policy, "em_per_step": res.per_step}


def summary_text(meta: dict[str, Any]) -> str:
    """A default twin's metadata on one screen: EM overall and per policy, the training run, and where the model
    and the full metadata (EM per step index, the loss curve) are (``wmgym train default`` prints this)."""
    env, test, sft = meta["env"], meta.get("test", {}), meta.get("sft", {})
    model_dir = default_model_dir(env)
    lines = [f"{env}: default twin at {model_dir} (recipe {meta.get('recipe_key')})"]
    if test:
        per_policy = ", ".join(f"{p} {v:.1%}" for p, v in test.get("em_per_policy", {}).items())
        lines.append(f"  teacher-forced single-step EM {test['em']:.1%} over {test['steps']} steps of "
                     f"{test['episodes']} held-out episodes ({per_policy}); token accuracy "
                     f"{test.get('token_accuracy', float('nan')):.1%}")
    if sft:
        wall = sft.get("wall_s")
        lines.append(f"  trained {sft.get('steps')} steps, {sft.get('parameters', 0) / 1e6:.2f}M parameters"
                     + (f", {wall / 60:.1f} min" if isinstance(wall, (int, float)) else ""))
    curve = em_curve(meta)
    if curve:
        lines.append("  EM during training: " + ", ".join(f"{tokens / 1e6:.1f}M tokens {em:.1%}"
                                                        for _, tokens, em in curve))
    lines.append(f"  full metadata (EM per step index, loss curve): {model_dir / 'wmgym.json'}")
    return "\n".join(lines)


def em_curve(meta: dict[str, Any]) -> list[tuple[int, int, float]]:
    """``(step, training tokens seen, held-out EM)`` at each of a default's evaluations during training (on the
    first ``eval_em_episodes`` held-out episodes; the final evaluation is not repeated)."""
    curve = {}
    for h in meta.get("sft", {}).get("eval_history") or []:
        if h.get("eval_em") is not None and h.get("num_input_tokens_seen") is not None:
            curve[int(h["step"])] = (int(h["step"]), int(h["num_input_tokens_seen"]), float(h["eval_em"]))
    return [curve[k] for k in sorted(curve)]


def train_default(env: str, workers: int = 2, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Collect, train and save the default twin of ``env``; returns its metadata (see module docstring)."""
    from wmgym.training.sft import SFTConfig, train

    recipe = recipe_for(env)
    done = trained_default(env)
    if done is not None and not force:
        print(f"{env}: default twin already trained at {default_model_dir(env)} (use --force to retrain)")
        return done
    train_path, test_path = collect_data(recipe, workers=workers, progress=progress)
    out = run_dir(env)
    stamp = out / "recipe_key"
    # Resume only a run of this very recipe: checkpoints of another recipe (or a forced retrain) start over.
    if out.exists() and (force or not stamp.exists() or stamp.read_text() != recipe.key()):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(recipe.key())
    cfg = SFTConfig(data=[str(train_path)], eval_data=[str(test_path)], out=str(out), progress=progress,
                    **recipe.sft)
    summary = train(cfg)
    final = default_model_dir(env)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in out.iterdir():
        if f.is_file() and not f.name.startswith(("training_args", "trainer_state", "sft_summary", "recipe_key")):
            shutil.copy2(f, tmp / f.name)
    evaluation = evaluate_default(tmp, test_path, max_length=cfg.max_length)
    meta = {"env": env, "recipe_key": recipe.key(), "recipe": dataclasses.asdict(recipe), "sft": summary,
            "test": evaluation, "data": {"train": str(train_path), "test": str(test_path)}}
    (tmp / "wmgym.json").write_text(json.dumps(meta, indent=2, default=str))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    print(f"{env}: default twin saved to {final}; teacher-forced single-step EM on {evaluation['steps']} test "
          f"steps: {evaluation['em']:.3f}")
    return meta
