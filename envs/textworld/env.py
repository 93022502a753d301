"""TextWorld-v0: TextWorld games compiled locally and played through jericho.

Description:
    Text adventures made by TextWorld's own generator (rooms, containers,
    doors, keys) and its cooking challenge (find the ingredients, cut and cook
    them, prepare the meal and eat it). Games are generated on first use and
    cached (see :mod:`wmgym.envs.textworld.games`).

Spaces:
    Observation and action are prose (:class:`~wmgym.envs.spaces.ProseText`).

Rewards:
    The per-step increase of TextWorld's score (one point per quest subgoal).

Termination:
    When the game is won or lost (cooking games are lost by eating the wrong
    thing or burning food). Truncation comes from the registered TimeLimit.

Registered ids:
    ``TextWorld-v0`` (real), ``WM-TextWorld-v0`` (its twin).

User games:
    ``gym.make("TextWorld-v0", game_files=[...])`` plays the user's own
    TextWorld games (``.z8`` made by ``tw-make``, or ``.ulx`` from older
    releases, each with the ``.json`` TextWorld writes beside it) instead of the
    generated splits. They form one split, ``user``, in the order given
    (``options={"game": k}`` picks the k-th; ``game_id`` is ``user/<k>`` and
    the reset's ``info["game_file"]`` names the file). The ``init_context`` is
    built as for the generated games and the expert plans from the game's
    quests. The twin takes the same argument
    (``gym.make("WM-TextWorld-v0", game_files=[...])``).

Inform's meta-commands (``quit``, ``restart``, ``undo``, ``save``, ...) act
outside the story, so they are refused as malformed ("Nothing happens.").
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

from wmgym.envs.base import FORMATS, EngineReset, EngineStep, TextEnv, format_init_context
from wmgym.envs.textworld import context as textworld_context, games as textworld_games

_ART_CHARS = set(" _|\\/$<>")
_PROMPT_RE = re.compile(r"\n>[^\n]*$")
_GAME_OVER_RE = re.compile(r"\n*Would you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command\?\s*")


def clean_feedback(text: str) -> str:
    """Strip TextWorld's ASCII banner, the status line and the restart prompt."""
    lines = text.split("\n")
    # Drop the banner: leading lines made only of ASCII-art characters.
    start = 0
    for i, line in enumerate(lines):
        if line.strip() and not set(line) <= _ART_CHARS:
            break
        start = i + 1
    text = "\n".join(lines[start:])
    text = _PROMPT_RE.sub("", text.rstrip())
    text = _GAME_OVER_RE.sub("\n", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _name(arg: Any) -> str:
    return "you" if arg.name == "P" else "your inventory" if arg.name == "I" else arg.name


_KIND = {"r": "room", "c": "container", "s": "supporter", "d": "door", "o": "object", "k": "key", "f": "food",
         "oven": "oven", "stove": "stove", "toaster": "toaster", "meal": "meal", "slot": "inventory slot"}


def describe_facts(facts: list[Any]) -> list[str]:
    """Turn TextWorld's initial facts into sorted, plain-English statements."""
    out = []
    for f in facts:
        args = f.arguments
        names = [_name(a) for a in args]
        if f.name == "at" and names[0] == "you":
            out.append(f"You are in the {names[1]}.")
        elif f.name == "at":
            out.append(f"The {names[0]} ({_KIND.get(args[0].type, args[0].type)}) is in the {names[1]}.")
        elif f.name == "in" and args[1].name == "I":
            out.append(f"You carry the {names[0]}.")
        elif f.name == "in":
            out.append(f"The {names[0]} is in the {names[1]}.")
        elif f.name == "on":
            out.append(f"The {names[0]} is on the {names[1]}.")
        elif f.name.endswith("_of") and len(args) == 2:
            out.append(f"The {names[0]} is {f.name.replace('_of', '')} of the {names[1]}.")
        elif f.name == "link":
            out.append(f"The {names[1]} connects the {names[0]} and the {names[2]}.")
        elif f.name == "match":
            out.append(f"The {names[0]} unlocks the {names[1]}.")
        elif f.name == "free":
            continue  # implied by the map and doors
        elif len(args) == 1:
            out.append(f"The {names[0]} is {f.name.replace('_', ' ')}.")
        else:
            out.append(f"{f.name}({', '.join(names)}).")
    return sorted(set(out))


class TextWorldEnv(TextEnv):
    """TextWorld games compiled locally (see module docstring)."""

    splits = ("train", "test")
    #: 2: every room and thing as the game shows it at the start, and the scoring (textworld_context).
    #: 3: also the map read forward, what opening each closed container prints, Inform's "some" article, and
    #: the winning banner in the scoring.
    #: 4: each quest's losses in a fixed (sorted) order: TextWorld's generator lists them in no fixed order, so
    #: two generations of one game gave two contexts, and version-3 caches hold the unsorted ones.
    context_version = 4
    blocked_commands = frozenset({
        "quit", "q", "restart", "restore", "save", "undo", "script", "unscript", "transcript",
        "noscript", "verbose", "brief", "superbrief", "notify", "version", "again", "g",
    })

    def _malformed(self, action: str) -> bool:
        # A backslash starts a dumb-frotz runtime command (``\help``, ``\x``, ...): the interpreter loops on
        # it forever or crashes, so such actions are malformed and never reach it.
        return super()._malformed(action) or "\\" in action

    #: Inform's out-of-world score request ("You have so far scored 0 out of a possible 3, in 4 turns."): the
    #: state and the turn count stay as they were (collection's ``+score:P`` policies type it).
    score_command: ClassVar[str | None] = "score"

    scripted_agent = "wmgym.agents.scripted.textworld:TextWorldAgent"
    formats = FORMATS  # ours and Word2World's (word2world.py)
    #: Tuned for the quickstart budget on 2 CPU cores (docs: default twins). Coverage: expert, noisy experts and
    #: random play on train; expert and noisy expert on the held-out split, as the fidelity benchmark plays them.
    #: Training: the 0.76M-parameter tiny stack (~11k tokens/s on one core), short turn windows first (curriculum:
    #: copying from the action forms in short contexts), then whole chats. Context version 3-4 (every room and
    #: thing as the game shows it, the map, what each opening prints, the scoring) gives contexts of up to ~2.7k
    #: tokens, so 4k-token chats; the induction warm-up (held-out EM 47.0% without it, 50.7% with it, same data),
    #: then the recall task: a warm-up and a quarter of the SFT batches, so copying out of the prompt is not
    #: unlearnt (54.4% in the quickstart); and numbered user turns, since the game's last line counts the commands
    #: ("in 7 turns"), which the 2-layer model did not learn to count. Numbered from 1 with fused tokens
    #: (``tiny-turns``) the twin had to map "user 6" to " in 7", which formed in one seed of three (65.0%, 53.0%,
    #: 47.9% on the same data); numbered with the count itself and digits as tokens (``tiny-count``) it copies the
    #: number: no count wrong in any of three seeds (61.9%, 59.0%, 60.5%). Changing it retrains the default twin.
    default_twin: ClassVar[dict[str, Any] | None] = {
        "train": [("expert", 300), ("noisy-expert:0.3", 300), ("random", 100)],
        "test": [("expert", 30), ("noisy-expert:0.3", 30)],
        "sft": {"preset": "tiny-count", "curriculum": 0.3, "max_steps": 2000, "batch_tokens": 4096, "lr": 3e-3,
                "max_length": 4096, "eval_steps": 400, "save_steps": 400, "induction_warmup": 1500,
                "recall_warmup": 400, "recall_mix": 0.25},
        "max_steps": 20,
    }

    def __init__(self, split: str | None = None, render_mode: str | None = None,
                 game_files: Sequence[str | os.PathLike] | None = None, format: str = "wmgym"):
        #: The user's game files (``None``: the generated splits); they are the one split ``user``.
        self.game_files = None if game_files is None else textworld_games.user_games(game_files)
        if self.game_files is not None:
            self.splits = (textworld_games.USER_SPLIT,)
        super().__init__(split=split, render_mode=render_mode, format=format)
        self._tw_env = None
        self._state = None
        self._score = 0

    def _num_games(self, split: str) -> int:
        if self.game_files is not None:
            return len(self.game_files)
        return textworld_games.SPLIT_SIZES[split]

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        import textworld

        extra: dict[str, Any] = {}
        if self.game_files is not None:
            path = textworld_games.playable_user_game(self.game_files[index])
            extra["game_file"] = str(self.game_files[index])
        else:
            path = textworld_games.ensure_game(split, index)
        if self._tw_env is not None:
            self._tw_env.close()
        infos = textworld.EnvInfos(admissible_commands=True, policy_commands=True, won=True, lost=True,
                                   objective=True, facts=True, score=True, max_score=True)
        with warnings.catch_warnings():
            # jericho flags every TextWorld game as "not fully supported"; TextWorld tracks score itself.
            warnings.simplefilter("ignore")
            self._tw_env = textworld.start(str(path), request_infos=infos)
            state = self._tw_env.reset()
        self._state, self._score = state, state.score or 0
        observation = clean_feedback(state.feedback)
        task = (state.objective or "").strip()
        if self.format == "word2world":  # Word2World's strings (envs/textworld/word2world.py)
            from wmgym.envs.textworld import word2world

            observation = context = word2world.first_observation(state.feedback, state.admissible_commands or [])
        else:
            context = format_init_context(task, describe_facts(state.facts), observation,
                                          sections=textworld_context.sections(path.parent, path.stem))
        return EngineReset(observation=observation, task=task, game_id=f"{split}/{index:05d}",
                           init_context=context, admissible_commands=list(state.admissible_commands or []),
                           extra={**extra, "max_score": state.max_score})

    def _engine_step(self, action: str) -> EngineStep:
        state, score, _done = self._tw_env.step(action)
        self._state = state
        reward, self._score = (score or 0) - self._score, score or 0
        observation = state.feedback if self.format == "word2world" else clean_feedback(state.feedback)
        return EngineStep(observation=observation, reward=float(reward), won=bool(state.won),
                          lost=bool(state.lost), admissible_commands=list(state.admissible_commands or []),
                          extra={"score": self._score, "max_score": state.max_score})

    def expert_action(self) -> str | None:
        if self._state is None or not self._state.policy_commands:
            return None
        return self._state.policy_commands[0]

    @classmethod
    def twin_extras(cls, observation: str, success: bool) -> dict[str, Any]:
        """The twin's episode ends in a loss where the model prints TextWorld's lose banner."""
        return {"lost": "*** You lost! ***" in observation}

    def _engine_close(self) -> None:
        if self._tw_env is not None:
            self._tw_env.close()
            self._tw_env = None

    def prepare_games(self, split: str, indices: list[int], workers: int = 1, progress: bool = True) -> None:
        """Generate the given games ahead of play (in parallel, with a progress bar)."""
        textworld_games.ensure_games(self._check_split(split), indices, workers=workers, progress=progress)
