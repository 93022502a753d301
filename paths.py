"""Where wmgym keeps generated games, trained models and results.

Everything lives under ``WMGYM_HOME`` (default ``~/.cache/wmgym``). Files are
published with :func:`atomic_write` so a killed process never leaves a
half-written game or checkpoint that a later run would trust.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock


def wmgym_home() -> Path:
    """The root of wmgym's cache (``$WMGYM_HOME`` or ``~/.cache/wmgym``)."""
    return Path(os.environ.get("WMGYM_HOME") or Path.home() / ".cache" / "wmgym").expanduser()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an inter-process lock tied to ``path`` (for generate-once caches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        yield


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it into place on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file via a temporary sibling and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _ensure_one(ensure: Callable[[str, int], Path], job: tuple[str, int]) -> Path:
    return ensure(*job)


def generate_missing(ensure: Callable[[str, int], Path], split: str, missing: list[int], *, label: str,
                     workers: int = 1, progress: bool = True) -> None:
    """Run ``ensure(split, i)`` for every missing slot, in ``workers`` processes, with a progress bar.

    ``ensure`` must be a module-level function (it is pickled into spawned workers)
    that generates slot ``i`` under a lock and publishes it atomically.
    """
    if not missing:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(missing), desc=f"generating {label} {split} games", disable=not progress, unit="game")
    if workers <= 1:
        for i in missing:
            ensure(split, i)
            bar.update()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(functools.partial(_ensure_one, ensure), [(split, i) for i in missing]):
                bar.update()
    bar.close()
