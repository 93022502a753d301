"""Playing one ALFWorld game: TextWorld's ``PddlEnv`` with ALFWorld's wrappers, made fast and safe.

The engine stack is ALFWorld's own (``PddlEnv`` -> ``AlfredDemangler`` ->
``AlfredInfos`` -> ``AlfredExpert`` with the handcoded expert). The pitfalls of
``alfworld`` 0.4.2 / ``textworld`` 1.7 are fixed here, in subclasses, without
touching the installed packages:

- ``fast_downward.pddl2sas`` overwrites ``sys.argv`` (its option parser even
  exits on foreign arguments at first import): every translation runs inside
  :func:`translator_argv`, which restores ``sys.argv``.
- ``PddlEnv`` translates the problem twice on ``load`` and twice again on every
  ``reset`` (1-2 s on a kitchen): :func:`translate` translates once per problem
  text, memoized in the process and pickled under ``WMGYM_HOME``.
- The text grammar re-parses its TatSu expressions on every derivation (every
  admissible command of every step): :class:`MemoGrammar` parses each once.
- The handcoded expert tracks ``put`` while the grammar's command is ``move``,
  so it forgets it dropped an object (pick-two games fail): the command is
  translated for its state tracking.
- The expert draws from the global ``random`` and raises when stuck: it draws
  from its own seeded generator, and a stuck expert proposes nothing instead of
  crashing the game.
- The planner expert (``policy_commands``) takes minutes on a kitchen: only the
  handcoded expert is used, and the second, optimized translation that only
  replanning needs is skipped.
- Unloading a ``libdownward`` copy (``fast_downward.close_lib``) crashes the
  interpreter at exit: a closed env frees the task and pools its library for
  the next env of the process.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import pickle
import random
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wmgym.paths import atomic_write, wmgym_home

#: ALFWorld's banner at the top of the first observation; agents see the room without it.
_BANNER_RE = re.compile(r"^\s*-= Welcome to TextWorld, ALFRED! =-\s*")
_MOVE_RE = re.compile(r"^move (.+) to (.+)$")
TRANSLATION_CACHE_VERSION = "v0"


@contextlib.contextmanager
def translator_argv() -> Iterator[None]:
    """Give fast_downward's translator the ``sys.argv`` it parses, and restore ours after."""
    saved = sys.argv
    sys.argv = ["translate.py", "domain", "task"]
    try:
        yield
    finally:
        sys.argv = saved


# ---------------------------------------------------------------- translation
def translation_cache_path(domain: str, problem: str) -> Path:
    """Where :func:`translate` keeps the translation of a problem on disk."""
    key = hashlib.sha1((domain + "\0" + problem).encode()).hexdigest()
    return wmgym_home() / "alfworld" / "translations" / TRANSLATION_CACHE_VERSION / f"{key}.pkl.z"


@functools.lru_cache(maxsize=32)  # a kitchen's translation holds ~3 MB
def translate(domain: str, problem: str) -> tuple[Any, str]:
    """fast_downward's (task, SAS text) for a problem, cached in memory and on disk."""
    path = translation_cache_path(domain, problem)
    if path.exists():
        try:
            return pickle.loads(zlib.decompress(path.read_bytes()))
        except Exception:  # noqa: BLE001 - a stale or truncated cache entry is rebuilt
            pass
    import fast_downward

    with translator_argv():
        result = fast_downward.pddl2sas(domain, problem)
    try:
        atomic_write(path, zlib.compress(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL), 6))
    except OSError:  # a read-only cache only costs speed
        pass
    return result



#: Planner libraries of closed envs, ready for the next env of this process.
_LIB_POOL: list[Any] = []


def _make_classes() -> dict[str, type]:
    """Build the textworld / alfworld subclasses (imported lazily: textworld takes 1.5 s to import)."""
    import fast_downward
    import textworld
    import textworld.logic
    from alfworld.agents.environment.alfred_tw_env import AlfredExpert, AlfredExpertType
    from alfworld.agents.expert.handcoded_expert_tw import HandCodedTWAgent
    from textworld.core import GameState
    from textworld.envs.pddl import logic as pddl_logic
    from textworld.envs.pddl.pddl import PddlEnv
    from textworld.logic import Proposition, Variable

    from wmgym.envs.alfworld.grammar import game_logic

    class TranslatedPddlState(pddl_logic.PddlState):
        """``PddlState`` built from a cached translation instead of translating again."""

        def __init__(self, downward_lib: Any, task: Any, sas: str, logic: Any):
            from collections import Counter, defaultdict

            self._facts, self._vars_by_name = defaultdict(set), {}
            self._vars_by_type, self._var_counts = defaultdict(set), Counter()
            self._logic, self.downward_lib = logic, downward_lib
            # The planner expert is never used (it takes minutes on kitchens), so the replanning
            # library gets the plain translation instead of a second, optimized one.
            self.task, self.sas, self.sas_replan = task, sas, sas
            self._actions = {a.name: a for a in task.actions}
            for type_ in task.types:
                try:
                    logic.types.add(textworld.logic.Type(type_.name, type_.supertype_names))
                except ValueError:
                    pass
            downward_lib.load_sas(sas.encode("utf-8"))
            downward_lib.load_sas_replan(sas.encode("utf-8"))
            self.name2type = {o.name: o.type_name for o in task.objects}
            init = getattr(task, "_wmgym_init_facts", None)  # computed once per translation
            if init is None:
                facts = []
                for atom in task.init:  # as PddlState._atom2proposition
                    if isinstance(atom, fast_downward.translate.pddl.conditions.Atom) and atom.predicate != "=":
                        facts.append(Proposition(atom.predicate, [Variable(a, self.name2type[a]) for a in atom.args]))
                    elif (isinstance(atom, fast_downward.translate.pddl.f_expression.Assign)
                          and atom.fluent.symbol != "total-cost" and not str(atom.expression.value).isdigit()):
                        facts.append(Proposition(str(atom.expression.value),
                                                 [Variable(a, self.name2type[a]) for a in atom.fluent.args]))
                atoms = (pddl_logic.Atom * downward_lib.get_state_size())()
                downward_lib.get_state(atoms)
                facts += [f for f in (a.get_fact(self.name2type) for a in atoms) if not f.is_negation]
                init = task._wmgym_init_facts = facts
            self.add_facts(init)

    class CachedPddlEnv(PddlEnv):
        """``PddlEnv`` that translates a problem once, shares grammar parses and reuses planner libraries."""

        def __init__(self, infos: Any = None):
            textworld.Environment.__init__(self, infos)
            # Each PddlEnv loads a private copy of libdownward; unloading one (dlclose) crashes the
            # interpreter at exit, so closed envs hand theirs back to a pool for the next env.
            self.downward_lib = _LIB_POOL.pop() if _LIB_POOL else fast_downward.load_lib()

        def load(self, filename_or_data: Any) -> None:
            if isinstance(filename_or_data, (str, Path)):
                data = json.loads(Path(filename_or_data).read_text())
                self._game_file = str(filename_or_data)
            else:
                data, self._game_file = filename_or_data, None
            self._game_data = data
            self.walkthrough = data.get("walkthrough")
            self._logic = game_logic(data["pddl_domain"], data["grammar"])
            self._pddl_state = self._new_state()
            self._entity_infos = self._get_entity_infos()

        def _new_state(self) -> Any:
            task, sas = translate(self._game_data["pddl_domain"], self._game_data["pddl_problem"])
            return TranslatedPddlState(self.downward_lib, task, sas, self._logic)

        def reset(self) -> Any:  # PddlEnv.reset, without re-translating the problem
            self._pddl_state = self._new_state()
            self.prev_state, self.state = None, GameState()
            self._last_action, self._moves = None, 0
            context = {"state": self._pddl_state, "facts": list(self._pddl_state.facts), "variables": {},
                       "mapping": {}, "entity_infos": self._entity_infos}
            self.state.feedback = self._logic.grammar.derive("#intro#", context)
            self.state.raw = self.state.feedback
            self._gather_infos()
            return self.state

        def close(self) -> None:
            lib, self.downward_lib = getattr(self, "downward_lib", None), None
            if lib is not None and _LIB_POOL is not None:  # module globals are gone at interpreter exit
                lib.cleanup()  # frees the loaded task; the library stays mapped for reuse
                _LIB_POOL.append(lib)

    class TrackingExpert(HandCodedTWAgent):
        """ALFWorld's handcoded TextWorld expert with its state tracking fixed and its draws seeded."""

        def __init__(self, max_steps: int, seed: int):
            super().__init__(max_steps=max_steps)
            self.rng = random.Random(seed)

        def act(self, game_state: Any, reward: float, done: bool, last_action: str = "") -> str:
            # The policy pops its inventory on "put ..."; the grammar's command is "move X to Y".
            tracked = _MOVE_RE.sub(r"put \1 in/on \2", last_action)
            with _seeded_global_random(self.rng):
                action = self.policy.act(game_state, tracked)
            if action == last_action or (last_action == "look" and action not in game_state["admissible_commands"]):
                return self.rng.choice(sorted(game_state["admissible_commands"]))
            return action

    class SafeAlfredExpert(AlfredExpert):
        """``AlfredExpert`` using :class:`TrackingExpert`; a stuck expert proposes nothing."""

        def __init__(self, env: Any = None, max_steps: int = 200):
            super().__init__(env, AlfredExpertType.HANDCODED)
            self.max_steps = max_steps
            self.failed = False

        def load(self, gamefile: str) -> None:
            super().load(gamefile)
            # Seeded by the problem, so the expert replays the walkthrough that qualified the game.
            self.seed = zlib.crc32(self._game_data["pddl_problem"].encode())
            self._handcoded_expert = TrackingExpert(self.max_steps, self.seed)

        def reset(self) -> Any:
            self.failed = False
            self._handcoded_expert.rng.seed(self.seed)
            return super().reset()

        def _gather_infos(self) -> None:
            if self.failed:
                self.state["extra.expert_plan"] = []
                return
            try:
                super()._gather_infos()
            except Exception:  # noqa: BLE001 - the expert gave up (timeout, no subgoal left, bad guess)
                self.failed = True
                self.state["extra.expert_plan"] = []

    return {"CachedPddlEnv": CachedPddlEnv, "SafeAlfredExpert": SafeAlfredExpert}


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, type]:
    return _make_classes()


@contextlib.contextmanager
def _seeded_global_random(rng: random.Random) -> Iterator[None]:
    """Run code that calls the global ``random`` on a draw from ``rng``; the global state is restored."""
    saved = random.getstate()
    random.seed(rng.getrandbits(64))
    try:
        yield
    finally:
        random.setstate(saved)


class AlfredEngine:
    """One ALFWorld game at a time, played through ALFWorld's engine stack."""

    def __init__(self, expert_max_steps: int = 200):
        self.expert_max_steps = expert_max_steps
        self._env: Any = None
        self._game: tuple | None = None
        self.state: Any = None

    def _build(self) -> Any:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos

        classes = _classes()
        infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=True, extras=["gamefile"])
        env = classes["CachedPddlEnv"](infos)
        return classes["SafeAlfredExpert"](AlfredInfos(AlfredDemangler(env, shuffle=False)), self.expert_max_steps)

    def load(self, game_file: str | Path) -> None:
        """Load a ``.tw-pddl`` game (a no-op when it is the game already loaded)."""
        game_file = Path(game_file)
        stat = game_file.stat()
        key = (game_file, stat.st_mtime_ns, stat.st_size)  # a rewritten file is a new game
        if self._env is None:
            self._env = self._build()
        if key != self._game:
            self._env.load(str(game_file))
            self._game = key

    def reset(self) -> Any:
        if self._game is None:
            raise RuntimeError("load a game before reset()")
        self.state = self._env.reset()
        return self.state

    def step(self, command: str) -> Any:
        self.state, _, _ = self._env.step(command)
        return self.state

    def entity_ids(self) -> dict[str, str]:
        """Name -> ALFWorld entity id ("candle 2" -> "candle_bar__minus_00_dot_13..."): the game lists a
        receptacle's contents sorted by id."""
        env = self._env
        while not hasattr(env, "_entity_infos"):
            env = env._wrapped
        return {info.name: eid for eid, info in env._entity_infos.items() if info.name}

    @property
    def expert_plan(self) -> list[str]:
        return list(self.state.get("extra.expert_plan") or []) if self.state is not None else []

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env, self._game = None, None


def clean_observation(text: str) -> str:
    """An engine observation as agents see it: without ALFWorld's banner."""
    return _BANNER_RE.sub("", text).strip()
