"""Trajectory files: JSON Lines, one episode a line.

An episode line holds the env id, game id, seed, split, policy, the
``init_context`` the world model sees, the task, the steps (action, observation,
reward, terminated, truncated), whether it was won and the ``format`` its
strings follow (``"wmgym"`` or ``"word2world"``; lines written before the field
existed read as ``"wmgym"``, the only format there was). A twin learns the
format it is trained on, so training refuses files that mix formats
(:func:`check_formats`). Episodes played in a twin (``wmgym synth``) also
carry ``synthetic: true`` and the twin's ``world_model``; real episodes' lines
leave both out.

Writing appends each whole line with a single ``os.write`` on an ``O_APPEND``
descriptor and fsyncs it, so concurrent writers never interleave and a crash
can at worst leave one unterminated tail. :func:`repair` cuts such a tail off;
the writer calls it on open, so resuming after ``kill -9`` never keeps a broken
line.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wmgym.envs.base import DEFAULT_FORMAT, FORMATS

SCHEMA_VERSION = 1


@dataclasses.dataclass
class Step:
    action: str
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    action_valid: bool = True


@dataclasses.dataclass
class Episode:
    env_id: str
    game_id: str
    seed: int | None
    split: str
    policy: str
    init_context: str
    task: str
    initial_observation: str
    steps: list[Step] = dataclasses.field(default_factory=list)
    won: bool = False
    #: Position of the episode in its collection run (what resuming skips).
    index: int = 0
    version: int = SCHEMA_VERSION
    #: The env's ``format`` (``info["format"]``): which rendering the init_context and observations follow.
    format: str = DEFAULT_FORMAT
    #: Played in a twin (``wmgym synth``): the observations are the world model's, not a real engine's.
    synthetic: bool = False
    #: The twin's world model (its directory or name) when ``synthetic``.
    world_model: str | None = None

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        if not self.synthetic:  # real episodes' lines stay as they always were
            del data["synthetic"], data["world_model"]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        """Validate and build an episode; raises ``ValueError`` saying what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"an episode must be a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = {n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = required - set(data)
        if missing:
            raise ValueError(f"episode is missing keys {sorted(missing)}")
        unknown = set(data) - set(fields)
        if unknown:
            raise ValueError(f"episode has unknown keys {sorted(unknown)}; valid keys: {sorted(fields)}")
        for key in ("env_id", "game_id", "split", "policy", "init_context", "task", "initial_observation"):
            if not isinstance(data[key], str):
                raise ValueError(f"episode key {key!r} must be a string, got {type(data[key]).__name__}")
        if not isinstance(data.get("synthetic", False), bool):
            raise ValueError(f"episode key 'synthetic' must be true or false, got {data['synthetic']!r}")
        if not isinstance(data.get("world_model") or "", str):
            raise ValueError(f"episode key 'world_model' must be a string, got {type(data['world_model']).__name__}")
        if data.get("format", DEFAULT_FORMAT) not in FORMATS:
            raise ValueError(f"episode key 'format' is {data['format']!r}; valid formats: {list(FORMATS)}")
        raw_steps = data.get("steps", [])
        if not isinstance(raw_steps, list):
            raise ValueError("episode key 'steps' must be a list")
        steps = []
        step_keys = {f.name for f in dataclasses.fields(Step)}
        for i, s in enumerate(raw_steps):
            if not isinstance(s, dict) or not {"action", "observation", "reward", "terminated", "truncated"} <= set(s):
                raise ValueError(f"step {i} must have action, observation, reward, terminated, truncated")
            if set(s) - step_keys:
                raise ValueError(f"step {i} has unknown keys {sorted(set(s) - step_keys)}")
            steps.append(Step(**s))
        return cls(**{**data, "steps": steps})

    @property
    def num_steps(self) -> int:
        return len(self.steps)


def repair(path: str | os.PathLike) -> int:
    """Cut an unterminated last line (left by a killed writer). Returns bytes removed."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        # Walk back to the last newline.
        pos = size
        chunk = 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            data = f.read(pos - start)
            nl = data.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


class TrajectoryWriter:
    """Appends episodes to a JSON Lines file, one atomic write per episode."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, episode: Episode) -> None:
        data = (episode.to_json() + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # pragma: no cover - disk full; never leave half a line
            raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_episodes(path: str | os.PathLike, *, strict: bool = True) -> Iterator[Episode]:
    """Yield validated episodes from a trajectory file.

    An unterminated last line (a writer killed mid-write) is skipped. With
    ``strict`` a malformed complete line raises ``ValueError`` naming its line
    number; without, it is skipped.
    """
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith("\n"):
                return  # torn tail
            if not line.strip():
                continue
            try:
                yield Episode.from_dict(json.loads(line))
            except (ValueError, TypeError) as e:
                if strict:
                    raise ValueError(f"{path}:{lineno}: {e}") from None


def canonical_order(episodes: list[Episode]) -> list[Episode]:
    """The episodes sorted by env, split, game, policy, seed and collection index: collection workers append
    episodes as they finish, so the same episodes land in a file in another order from run to run, and
    training (batches, held-out subsets, mixes) must not depend on it."""
    return sorted(episodes, key=lambda ep: (ep.env_id, ep.split, ep.game_id, ep.policy,
                                            -1 if ep.seed is None else ep.seed, ep.index))


def check_formats(episodes: list[Episode], expected: str | None = None) -> str:
    """The one format ``episodes`` share (``expected`` when given, or when there are none).

    Raises ``ValueError`` when they mix formats (a twin would learn two renderings of one world and be
    prompted in one of them) or differ from ``expected``, saying how many episodes each format has.
    """
    counts: dict[str, int] = {}
    for ep in episodes:
        counts[ep.format] = counts.get(ep.format, 0) + 1
    if len(counts) > 1:
        raise ValueError(f"the episodes mix formats {counts}; train or export one format at a time "
                         "(collect with the env's format=... set the same way)")
    found = next(iter(counts), expected or DEFAULT_FORMAT)
    if expected is not None and found != expected:
        raise ValueError(f"the episodes are in format {found!r} ({counts[found]} episodes), not {expected!r}; "
                         f"collect them with format={expected!r}")
    return found


def load_episodes(paths: str | os.PathLike | list, **kw: Any) -> list[Episode]:
    """Read one or several trajectory files into a list."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    return [ep for p in paths for ep in read_episodes(p, **kw)]
