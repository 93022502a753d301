"""The text-env base class shared by every real env and every twin.

A concrete env fills in three engine hooks and inherits the whole contract of
``docs/design.md``: Text spaces, game/split selection in ``reset``, per-step reward,
``terminated`` on win or loss, the ``info`` keys, malformed actions answered as
the game would, ``TypeError`` for a non-``str`` action, and ``ansi``/``human``
rendering.

Hooks:

- ``_num_games(split)``: how many games the split holds.
- ``_engine_reset(split, index)``: load and start one game, return an
  :class:`EngineReset`.
- ``_engine_step(action)``: play one *well-formed* action, return an
  :class:`EngineStep`.

Optionally ``expert_action()`` (the expert's next command from the current
state) and ``_engine_close()``.

Declarations (class attributes with defaults): what training and benchmarks
read off the env instead of looking it up by name: ``heldout_split``,
``default_twin``, ``scripted_agent``, ``engine_benchmark``,
``irreversible_actions`` and the ``prepare_games`` hook. ``tests/envs/test_declarations.py`` checks them for
every registered id.

Formats: ``format="wmgym"`` (the default) or ``format="word2world"`` at
``gym.make``. The second renders observations and ``init_context`` as
Word2World's released world models were trained on them (AgentGym's env
servers and Word2World's initial contexts), so those checkpoints are prompted
in distribution. The base class checks and stores it and records it in
``info["format"]``; each env renders its own strings (``envs/<name>/word2world.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym

from wmgym.envs.spaces import MAX_ACTION_LENGTH, ProseText, action_space, observation_space

#: Renderings an env offers (``format=`` at ``gym.make``): wmgym's own (the default) and Word2World's.
FORMATS = ("wmgym", "word2world")
DEFAULT_FORMAT = FORMATS[0]


def check_format(format: str, offered: tuple[str, ...] = FORMATS, env: str = "") -> str:
    """``format`` if it is one of ``offered`` (default: :data:`FORMATS`), else ``ValueError`` naming the choices."""
    if format not in offered:
        raise ValueError(f"format={format!r} is not supported{' by ' + env if env else ''}; "
                         f"choose one of {list(offered)}")
    return format


@dataclasses.dataclass
class EngineReset:
    """What an engine reports when a game starts."""

    observation: str
    task: str
    game_id: str
    init_context: str
    admissible_commands: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EngineStep:
    """What an engine reports after one action."""

    observation: str
    reward: float = 0.0
    won: bool = False
    lost: bool = False
    admissible_commands: list[str] = dataclasses.field(default_factory=list)
    #: ``None`` lets the base class decide (action among the admissible ones).
    action_valid: bool | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def format_init_context(task: str, state: list[str], observation: str,
                        sections: Sequence[tuple[str, str]] = ()) -> str:
    """The world model's system prompt: task, the hidden initial state as a list, then any further
    ``(heading, text)`` sections of hidden state (room and thing texts, scoring), the first observation.

    Envs with a full initial-state description share this layout so the twins
    of different envs read one format (and mixed training sees one schema).
    """
    extra = [part for heading, text in sections for part in ("", heading, text)]
    return "\n".join([
        f"Task: {task}",
        "",
        "Initial state (hidden from the player):",
        *(f"- {line}" for line in state),
        *extra,
        "",
        "First observation:",
        observation,
    ])


class TextEnv(gym.Env[str, str]):
    """Base class of all wmgym text environments (real and twin).

    Args:
        split: default split for ``reset`` when ``options`` names none.
        render_mode: ``"ansi"`` (``render()`` returns the transcript so far) or
            ``"human"`` (each step is printed).
        format: ``"wmgym"`` (default) or ``"word2world"`` (Word2World's observation and ``init_context``
            strings; see the module docstring).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}

    #: Splits this env offers; the first is the default.
    splits: ClassVar[tuple[str, ...]] = ("train", "test")
    #: The answer to a malformed action (empty, overlong, blocked meta-command).
    invalid_action_text: ClassVar[str] = "Nothing happens."
    #: Longest action accepted; longer ones are malformed (tool envs take JSON calls longer than a command).
    max_action_length: ClassVar[int] = MAX_ACTION_LENGTH
    #: Commands refused as malformed (engine meta-commands such as ``quit``).
    blocked_commands: ClassVar[frozenset[str]] = frozenset()
    #: Version of the ``init_context`` wording: bumped when it changes, so cached trajectories and
    #: default twins made with the old wording are collected and trained again.
    context_version: ClassVar[int] = 1
    #: A command that reports the score without changing the state or the turn count (TextWorld's ``score``),
    #: or ``None``; collection policies with a ``+score:P`` suffix type it.
    score_command: ClassVar[str | None] = None

    # ------------------------------------------ declarations read by training and benchmarks
    #: The split the benchmarks score on and the default twin is evaluated on (one of ``splits``).
    heldout_split: ClassVar[str] = "test"
    #: The default twin's recipe as plain data (``wmgym train default``): ``train`` / ``test`` lists of
    #: ``[policy, episodes]`` collected on the train / held-out split, ``sft`` (``SFTConfig`` fields),
    #: ``max_steps`` (per collected episode; ``None``: the env's) and ``spread`` (episodes spread over the split's
    #: games, for splits grouped by task; default False). ``None``: the generic recipe of
    #: :mod:`wmgym.training.default`. Its hash keys the cached default twin, so a change retrains it.
    default_twin: ClassVar[dict[str, Any] | None] = None
    #: ``"package.module:Class"`` of the env's observation-only scripted agent, or ``None``.
    scripted_agent: ClassVar[str | None] = None
    #: ``"package.module:main"`` of the env's engine-speed benchmark (``main(argv) -> int``; run by
    #: ``wmgym bench engine --env ID``), or ``None``.
    engine_benchmark: ClassVar[str | None] = None
    #: Whole actions that cannot be undone (WebShop's ``click[buy now]``), compared stripped and lowercased; what
    #: ``wmgym bench verifier`` has :class:`~wmgym.wrappers.ActionVerifier` check in the twin first. ``()``: none.
    irreversible_actions: ClassVar[tuple[str, ...]] = ()
    #: The renderings this env implements (``format=`` at ``gym.make``; see :data:`FORMATS`). An env lists
    #: ``"word2world"`` only once it renders Word2World's strings, so asking another env for them is an
    #: error instead of its own strings under Word2World's name.
    formats: ClassVar[tuple[str, ...]] = (DEFAULT_FORMAT,)

    def prepare_games(self, split: str, indices: list[int], workers: int = 1, progress: bool = True) -> None:
        """Make games ``indices`` of ``split`` ready before play: an env that generates its games generates the
        missing ones here, in ``workers`` processes, with a progress bar. The default has nothing to prepare.

        A method of the env, not of its class: what there is to prepare can depend on how the env was made
        (the user's own game files need nothing)."""
        self._check_split(split)

    def __init__(self, split: str | None = None, render_mode: str | None = None, format: str = DEFAULT_FORMAT):
        self.format = check_format(format, self.formats, type(self).__name__)
        self.split = self._check_split(split or self.splits[0])
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; choose one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        self.observation_space = observation_space()
        self.action_space = action_space() if self.max_action_length == MAX_ACTION_LENGTH else \
            ProseText(self.max_action_length)
        self._started = False
        self._done = False
        self._info: dict[str, Any] = {}
        self._transcript: list[str] = []

    # ------------------------------------------------------------------ hooks
    def _num_games(self, split: str) -> int:
        raise NotImplementedError

    def _engine_reset(self, split: str, index: int) -> EngineReset:
        raise NotImplementedError

    def _engine_step(self, action: str) -> EngineStep:
        raise NotImplementedError

    def _engine_close(self) -> None:
        """Release engine resources (processes, JVMs, files)."""

    def expert_action(self) -> str | None:
        """The expert's next command from the current state, if the env has one."""
        return None

    @classmethod
    def twin_extras(cls, observation: str, success: bool) -> dict[str, Any]:
        """What this env's twin reads from a predicted observation beyond the success marker.

        Override in an env whose text carries more: return ``"reward"`` (a float
        replacing the twin's 1.0-on-success), ``"lost"`` (ends the episode) and any
        ``info`` entries (e.g. a parsed score). The default reads nothing.
        """
        return {}

    # --------------------------------------------------------------- contract
    def _check_split(self, split: str) -> str:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r} for {type(self).__name__}; valid splits: {list(self.splits)}")
        return split

    def num_games(self, split: str | None = None) -> int:
        """How many games ``split`` (default: the env's split) holds."""
        return self._num_games(self._check_split(split or self.split))

    def _game_index(self, split: str, game: Any) -> int:
        n = self._num_games(split)
        if game is None:
            return int(self.np_random.integers(n))
        if isinstance(game, str) and "/" in game:  # a game_id such as "train/00042"
            prefix, _, rest = game.rpartition("/")
            if prefix.split("/")[-1] != split:
                raise ValueError(f"game {game!r} is not in split {split!r}")
            game = rest
        try:
            index = int(game)
        except (TypeError, ValueError):
            raise ValueError(f"options['game'] must be an index in [0, {n}) or a game id, got {game!r}") from None
        if not 0 <= index < n:
            raise ValueError(f"game index {index} is out of range for split {split!r}: valid are 0..{n - 1}")
        return index

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"game", "split"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid options: ['game', 'split']")
        split = self._check_split(options.get("split", self.split))
        index = self._game_index(split, options.get("game"))
        start = self._engine_reset(split, index)
        self._started, self._done = True, False
        self._info = {
            "task": start.task,
            "game_id": start.game_id,
            "split": split,
            "won": False,
            "admissible_commands": sorted(start.admissible_commands),
            "init_context": start.init_context,
            # Which init_context wording this game's context follows (see docs/versioning.md).
            "context_version": self.context_version,
            **start.extra,
            # Which rendering the strings follow: data of one format trains twins prompted in that format.
            "format": self.format,
        }
        self._transcript = [start.observation]
        if self.render_mode == "human":
            print(start.observation)
        return start.observation, dict(self._info)

    def _malformed(self, action: str) -> bool:
        text = action.strip()
        # A control character is malformed too (the action space refuses it): TextWorld's interpreter (jericho's
        # frotz) crashes the whole process on one, and a sampled policy LM does type them.
        return (not text or len(action) > self.max_action_length or text.lower() in self.blocked_commands
                or not all(c.isprintable() or c in "\n\t\r" for c in action))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not isinstance(action, str):
            raise TypeError(f"action must be a str, got {type(action).__name__}: {action!r}")
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._malformed(action):
            # Answered as the game answers nonsense; the game state is untouched.
            result = EngineStep(self.invalid_action_text, admissible_commands=self._info["admissible_commands"],
                                action_valid=False)
        else:
            was_admissible = action.strip() in self._info["admissible_commands"]
            result = self._engine_step(action.strip())
            if result.action_valid is None:
                result.action_valid = was_admissible
        terminated = bool(result.won or result.lost)
        self._done = terminated
        self._info = {
            **{k: self._info[k] for k in ("task", "game_id", "split", "init_context", "context_version")},
            **result.extra,
            "format": self.format,
            "won": bool(result.won),
            "admissible_commands": sorted(result.admissible_commands),
            "action_valid": bool(result.action_valid),
        }
        self._transcript.append(f"> {action}\n{result.observation}")
        if self.render_mode == "human":
            print(self._transcript[-1])
        return result.observation, float(result.reward), terminated, False, dict(self._info)

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "\n\n".join(self._transcript)
        if self.render_mode == "human":
            return None
        return None

    def close(self) -> None:
        self._engine_close()
        super().close()
