"""SciWorld-v0: ScienceWorld's 30 science tasks, played in its own simulator (Java).

Description:
    Elementary-science tasks in a house with a greenhouse, workshop, foundry
    and an outside: boil or freeze a substance, measure a melting point, build
    a circuit, grow a plant, mix paints, find a living thing, identify life
    stages, compare inclined planes, Mendelian genetics. Each task has many
    variations (substances, objects, rooms); all 30 tasks and ScienceWorld's
    own train/dev/test variation splits are offered.

Games:
    Game ``i`` of a split is the i-th (task, variation) pair, tasks in the
    order of ScienceWorld's ids (1-1 ``boil`` ... 10-2
    ``mendelian-genetics-unknown-plant``), variations ascending. Game ids are
    ``"<split>/<task>/<variation>"`` (e.g. ``"test/boil/22"``; the variation
    is ScienceWorld's own index). ``reset(options={"game": g})`` takes an
    index, a game id, ``"<task>/<variation>"`` or a bare task (a random
    variation of it); a task may be any form ScienceWorld accepts (``"boil"``,
    ``"1-1"``). Without a game, reset draws a task uniformly, then one of its
    variations, so tasks with 1,386 variations do not drown those with 10.
    ``SciWorldEnv(task="boil")`` (or a list of tasks) restricts the games.

Spaces:
    Observation and action are prose (:class:`~wmgym.envs.spaces.ProseText`).

Rewards:
    The per-step change of ScienceWorld's score (0-100); negative when a step
    fails the task (the score becomes -100).

Termination:
    Won when the task is completed (score 100). Lost on ScienceWorld's failure
    states: a negative score (e.g. focusing on the wrong object), or completed
    below 100. Truncation comes from the registered TimeLimit (100 steps,
    ScienceWorld's own ``envStepLimit``).

Info:
    The contract keys, plus ``score``, ``task_name`` and ``variation``.
    ``admissible_commands`` are ScienceWorld's valid action-object
    combinations (``getValidActionObjectCombinations``, what the package puts
    in ``info["valid"]``), less: ``reset task`` (refused, see below);
    ``connect``/``disconnect`` outside the four electrical tasks (ScienceWorld's
    ``noElectricalAction`` simplification drops the same); two-object actions
    naming one object twice. Enumerating them is most of a step's cost (a step
    takes ~75 ms with them, ~15 ms without, in ``python -m
    wmgym.benchmarks.engines.sciworld`` on a loaded 2-core machine);
    ``SciWorldEnv(admissible_commands=False)`` leaves the list empty and steps
    ~5x faster than the package's ``step``. ``action_valid`` is False when the
    parser did not execute the input ("No known action matches that input.",
    "Unknown action.", or an ambiguity prompt, which the next input answers
    with a number or cancels).

init_context:
    Task, goal progress, action templates, inventory, the text of every room at
    the start (gathered room by room, see :mod:`wmgym.envs.sciworld.context`)
    and the first observation. Cached per variation under ``WMGYM_HOME``.

Expert:
    ``expert_action()`` follows ScienceWorld's gold sequence and steers back to
    it after deviations (:mod:`wmgym.envs.sciworld.expert`). The sequence is
    generated on first use per variation, checked to win from the start, and
    cached; generating reloads the variation, so the episode's moves are then
    replayed onto a fresh load.

JVM:
    One Java process per env, started on first need, reused across resets,
    stopped by ``close()``. If it dies, ``step`` raises
    :class:`~wmgym.envs.sciworld.engine.JVMDiedError` and the next ``reset``
    starts a new one. ScienceWorld moves some animals (bees) at random and
    lists some objects in an arbitrary order, so a few tasks are not exactly
    reproducible.

Registered ids:
    ``SciWorld-v0`` (real); its twin ``WM-SciWorld-v0``.

``reset task`` restarts the task's goals and focus mid-episode, outside the
story, so it is refused as malformed ("Nothing happens.").
"""

from __future__ import annotations

import logging
from typing import Any

from wmgym.envs.base import FORMATS, EngineReset, EngineStep, TextEnv
from wmgym.envs.sciworld.context import (cached_context, cached_gold, episode_facts, format_context, gather_rooms,
                                         store_context, store_gold)
from wmgym.envs.sciworld.engine import (AMBIGUOUS_PREFIX, PARSER_REJECTIONS, JVMDiedError, ScienceWorldJVM,
                                        find_java, is_electrical, load_variation_table, resolve_task, task_names,
                                        variation_splits)
from wmgym.envs.sciworld.expert import GoldExpert, winning_gold_path

logger = logging.getLogger(__name__)

#: ScienceWorld's two-object actions: verb and the word between the objects.
_TWO_OBJECT_ACTIONS = (("move ", " to "), ("pour ", " into "), ("dunk ", " into "), ("use ", " on "),
                       ("connect ", " to "))


def _names_one_object_twice(action: str) -> bool:
    """``pour X into X``, ``move X to X``...: referents are unique, so equal text is one object."""
    for verb, sep in _TWO_OBJECT_ACTIONS:
        if action.startswith(verb):
            rest, start = action[len(verb):], 0
            while (i := rest.find(sep, start)) >= 0:
                if rest[:i] == rest[i + len(sep):]:
                    return True
                start = i + 1
    return False


class SciWorldEnv(TextEnv):
    """ScienceWorld's 30 tasks (see module docstring).

    Args:
        split: ``"train"``, ``"dev"`` or ``"test"`` (ScienceWorld's variation splits).
        render_mode: ``"ansi"`` or ``"human"``.
        task: a task (name, id such as ``"1-1"``) or a list of them to restrict the games to; all 30 by default.
        admissible_commands: compute ``info["admissible_commands"]`` on every step (most of a step's cost).
    """

    splits = ("train", "dev", "test")
    scripted_agent = "wmgym.agents.scripted.sciworld:SciWorldAgent"
    formats = FORMATS  # ours and Word2World's (word2world.py)
    engine_benchmark = "wmgym.benchmarks.engines.sciworld:main"
    blocked_commands = frozenset({"reset task"})
    #: ALFWorld's recipe (entity phrases as tokens, the induction and list warm-ups), its episodes spread over the
    #: split: the splits list games grouped by task (30 tasks in contiguous blocks), so episode k on game k mod n
    #: covered 5 of the 30 tasks. On the same spread data the generic recipe's twin reaches 41.2% greedy EM on the
    #: 60 held-out episodes, this one 61.4% (docs/experiments/sciworld-recipe.md).
    default_twin = {
        "spread": True,
        "sft": {"preset": "tiny-phrases", "curriculum": 0.3, "max_steps": 1600, "batch_tokens": 4096, "lr": 3e-3,
                "max_length": 2048, "eval_steps": 400, "save_steps": 400, "induction_warmup": 1500,
                "list_warmup": 400},
    }

    def __init__(self, split: str | None = None, render_mode: str | None = None,
                 task: str | list[str] | None = None, admissible_commands: bool = True, format: str = "wmgym"):
        super().__init__(split=split, render_mode=render_mode, format=format)
        find_java()  # fail at construction, naming the package, rather than at the first reset
        names = task_names()
        if task is None:
            self.tasks = names
        else:
            chosen = [task] if isinstance(task, str) else list(task)
            if not chosen:
                raise ValueError(f"task=[] selects no games; valid tasks: {names}")
            self.tasks = list(dict.fromkeys(resolve_task(t, names) for t in chosen))
        self.admissible = bool(admissible_commands)
        self._jvm: ScienceWorldJVM | None = None
        self._splits: dict[str, dict[str, list[int]]] | None = None
        self._games_by_split: dict[str, list[tuple[str, int]]] = {}
        self._episode: dict[str, Any] = {}

    # ------------------------------------------------------------------ JVM
    def _ensure_jvm(self) -> ScienceWorldJVM:
        if self._jvm is not None and not self._jvm.alive():
            self._jvm.close()
            self._jvm = None
        if self._jvm is None:
            self._jvm = ScienceWorldJVM()
        return self._jvm

    @property
    def jvm_pid(self) -> int | None:
        """Process id of this env's JVM (None before the first reset)."""
        return self._jvm.pid if self._jvm is not None else None

    def _engine_close(self) -> None:
        if self._jvm is not None:
            self._jvm.close()
            self._jvm = None

    # ---------------------------------------------------------------- games
    def variations(self, task: str, split: str | None = None) -> list[int]:
        """ScienceWorld's variations of ``task`` in ``split`` (default: the env's split)."""
        if self._splits is None:
            table = load_variation_table(self._ensure_jvm)
            self._splits = {t: variation_splits(n) for t, n in table.items()}
        return self._splits[resolve_task(task)][self._check_split(split or self.split)]

    def _games(self, split: str) -> list[tuple[str, int]]:
        if split not in self._games_by_split:
            self._games_by_split[split] = [(t, v) for t in self.tasks for v in self.variations(t, split)]
        return self._games_by_split[split]

    def _num_games(self, split: str) -> int:
        return len(self._games(split))

    def game_id(self, split: str, index: int) -> str:
        task, variation = self._games(split)[index]
        return f"{split}/{task}/{variation}"

    def _game_index(self, split: str, game: Any) -> int:
        games = self._games(split)
        if game is None:
            tasks = [t for t in self.tasks if self.variations(t, split)]
            task = tasks[int(self.np_random.integers(len(tasks)))]
            options = self.variations(task, split)
            return games.index((task, options[int(self.np_random.integers(len(options)))]))
        if not isinstance(game, str) or game.strip().isdigit():
            return super()._game_index(split, game)
        parts = game.strip().split("/")
        if parts[0] in self.splits:
            if parts[0] != split:
                raise ValueError(f"game {game!r} is not in split {split!r}")
            parts = parts[1:]
        if len(parts) == 1 and parts[0].isdigit():  # "train/00042", as other envs' ids
            return super()._game_index(split, parts[0])
        if len(parts) not in (1, 2):
            raise ValueError(f"game {game!r} is not a game id; use an index, '<split>/<task>/<variation>', "
                             "'<task>/<variation>' or '<task>'")
        task = resolve_task(parts[0])
        if task not in self.tasks:
            raise ValueError(f"game {game!r}: task {task!r} is not among this env's tasks {self.tasks}")
        options = self.variations(task, split)
        if len(parts) == 1:
            return games.index((task, options[int(self.np_random.integers(len(options)))]))
        try:
            variation = int(parts[1])
        except ValueError:
            raise ValueError(f"game {game!r}: variation {parts[1]!r} is not an integer") from None
        if variation not in options:
            raise ValueError(f"game {game!r}: variation {variation} of {task!r} is not in split {split!r}; valid "
                             f"variations: {options[0]}..{options[-1]}")
        return games.index((task, variation))

    # --------------------------------------------------------------- engine
    def _engine_reset(self, split: str, index: int) -> EngineReset:
        task, variation = self._games(split)[index]
        from py4j.protocol import Py4JError

        for attempt in range(2):
            jvm = self._ensure_jvm()
            try:
                # Word2World's description comes from its own load, so it is gathered before the one for play.
                described = self._word2world_description(jvm, task, variation)
                observation, context = self._start(jvm, task, variation)
                break
            except Py4JError:
                if attempt:
                    raise
                logger.warning("ScienceWorld's JVM did not answer; starting a new one")
                jvm.close()
                self._jvm = None
        # Some tasks start with a subgoal met (score > 0); rewards count from there, as in the package's reset.
        score = int(round(100 * self._jvm.server.getScore()))
        self._episode = {"task": task, "variation": variation, "context": context, "score": score,
                         "history": [], "last": observation, "expert": None}
        init_context = format_context(context, observation)
        if described is not None:  # Word2World's strings (envs/sciworld/word2world.py)
            from wmgym.envs.sciworld import word2world

            observation = word2world.first_observation(str(self._jvm.server.getTaskDescription()), observation)
            init_context = word2world.init_context(described, observation)
        return EngineReset(observation=observation, task=context["task_description"],
                           game_id=f"{split}/{task}/{variation}", init_context=init_context,
                           admissible_commands=self._admissible(),
                           extra={"task_name": task, "variation": variation, "score": score})

    def _word2world_description(self, jvm: ScienceWorldJVM, task: str, variation: int) -> str | None:
        """Word2World's state description with ``format="word2world"``, else ``None``."""
        if self.format != "word2world":
            return None
        from wmgym.envs.sciworld.word2world import description

        return description(jvm, task, variation)

    def _start(self, jvm: ScienceWorldJVM, task: str, variation: int) -> tuple[str, dict[str, Any]]:
        context = cached_context(task, variation)
        rooms = gather_rooms(jvm, task, variation) if context is None else None
        jvm.load(task, variation)  # a fresh load for play: gathering leaves no trace
        observation = str(jvm.server.step("look around"))  # the package's reset does the same first move
        if context is None:
            context = store_context(task, variation, rooms, episode_facts(jvm))
        return observation, context

    def _engine_step(self, action: str) -> EngineStep:
        from py4j.protocol import Py4JError

        if self._jvm is None:
            raise JVMDiedError("this env's JVM is closed; call reset() to start a new one")
        server = self._jvm.server
        try:
            observation = str(server.step(action))
            score = int(round(100 * server.getScore()))
            completed = bool(server.getCompleted())
            admissible = self._admissible()
        except Py4JError as e:
            if not self._alive_after_error():
                raise self._jvm.died_error() from e
            raise
        ep = self._episode
        reward, ep["score"] = score - ep["score"], score
        lost = score < 0 or (completed and score < 100)
        won = not lost and (completed or score >= 100)
        executed = not observation.startswith(PARSER_REJECTIONS + (AMBIGUOUS_PREFIX,))
        ep["history"].append((action, executed, observation))
        ep["last"] = observation
        if ep["expert"] is not None:
            ep["expert"].observe(action, observation)
        return EngineStep(observation=observation, reward=float(reward), won=won, lost=lost,
                          admissible_commands=admissible, action_valid=executed,
                          extra={"task_name": ep["task"], "variation": ep["variation"], "score": score})

    def _alive_after_error(self) -> bool:
        try:  # a killed JVM may take a moment to be reaped
            self._jvm.proc.wait(timeout=1)
        except Exception:  # noqa: BLE001 - still running
            pass
        return self._jvm.alive()

    def _admissible(self) -> list[str]:
        if not self.admissible:
            return []
        electrical = is_electrical(self._episode.get("task", ""))
        out = set()
        for action in self._jvm.server.getValidActionObjectCombinations():  # the plain list: half the JSON's cost
            action = str(action)
            if action in self.blocked_commands or _names_one_object_twice(action):
                continue
            if not electrical and action.startswith(("connect ", "disconnect ")):
                continue
            out.add(action)
        return sorted(out)

    # --------------------------------------------------------------- expert
    def gold_actions(self) -> list[str]:
        """ScienceWorld's gold sequence for the current variation (generated once, then cached)."""
        ep = self._episode
        gold = cached_gold(ep["task"], ep["variation"])
        if gold is None:
            gold = self._generate_gold()
        return gold

    def _generate_gold(self) -> list[str]:
        ep, jvm = self._episode, self._ensure_jvm()
        gold = winning_gold_path(jvm, ep["task"], ep["variation"])
        store_gold(ep["task"], ep["variation"], gold)
        # Generating took other loads of the variation: reload it and replay this episode's moves.
        jvm.load(ep["task"], ep["variation"])
        jvm.server.step("look around")
        diverged = [i for i, (action, _, seen) in enumerate(ep["history"]) if str(jvm.server.step(action)) != seen]
        score = int(round(100 * jvm.server.getScore()))
        if diverged or score != ep["score"]:
            logger.warning("replaying %s variation %s after generating its gold path diverged at steps %s (score "
                           "%s, was %s): ScienceWorld moves some animals at random", ep["task"], ep["variation"],
                           diverged[:5], score, ep["score"])
            ep["score"] = score
        return gold

    def expert_action(self) -> str | None:
        if not self._started or self._done or not self._episode:
            return None
        ep = self._episode
        if ep["expert"] is None:
            expert = GoldExpert(self.gold_actions(), ep["context"]["start_room"], ep["context"]["rooms"])
            for action, _, observation in ep["history"]:
                expert.observe(action, observation)
            ep["expert"] = expert
        return ep["expert"].next_action(str(self._jvm.server.freeActionLook()), ep["last"])
