"""ScienceWorld's JVM, its 30 tasks and their train/dev/test variation splits.

:class:`ScienceWorldJVM` starts one ScienceWorld simulator (a Java process
reached through py4j) and talks to its ``PythonInterface`` directly, so a step
costs the calls the caller asks for and nothing more (the package's
``ScienceWorldEnv.step`` also fetches look, inventory, task text and the full
valid-action list on every step).

The splits are ScienceWorld's own: ``PythonInterface.getSets`` cuts each task's
variations 0..n-1 into quarters and gives the first two to ``train``, the third
to ``dev`` and the rest to ``test`` (with fixed answers for n <= 4).
:func:`variation_splits` mirrors that rule; a test checks it against the Java
lists.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import weakref
from pathlib import Path

from wmgym.paths import atomic_write, wmgym_home

logger = logging.getLogger(__name__)

#: What to run where Java is missing.
JAVA_INSTALL_HINT = "apt-get install openjdk-17-jre-headless"
#: Serial GC: fewer JVM threads and less memory on small shared machines; C2 stays on (3x faster steps).
JVM_OPTIONS = ("-XX:+UseSerialGC",)
#: The simulator's answers to input its parser did not turn into an action.
PARSER_REJECTIONS = ("No known action matches that input.", "Unknown action.")
AMBIGUOUS_PREFIX = "Ambiguous request"
#: Tasks whose actions include wiring (ScienceWorld's ``noElectricalAction`` simplification spares exactly these).
ELECTRICAL_TASK_MARKERS = ("power-component", "conductivity")


def find_java() -> str:
    """Path of the ``java`` executable (PATH, then ``$JAVA_HOME/bin``), or a RuntimeError naming the package."""
    java = shutil.which("java")
    if java is None and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            java = str(candidate)
    if java is None:
        raise RuntimeError(
            "SciWorld-v0 runs ScienceWorld's simulator on Java 17, and no `java` was found on PATH or in "
            f"JAVA_HOME. Install it with: {JAVA_INSTALL_HINT} (or sudo {JAVA_INSTALL_HINT})"
        )
    return java


def task_names() -> list[str]:
    """ScienceWorld's 30 task names in the order of their ids (1-1 boil, 1-2 melt, ..., 10-2)."""
    from scienceworld.constants import ID2TASK

    def key(task_id: str) -> tuple[int, int]:
        major, minor = task_id.split("-")
        return int(major), int(minor)

    return [ID2TASK[i] for i in sorted(ID2TASK, key=key)]


def resolve_task(name: str, valid: list[str] | None = None) -> str:
    """A task name, id ("1-1") or paper name, as ScienceWorld's canonical name; ValueError listing the valid ones."""
    from scienceworld.utils import infer_task

    valid = valid if valid is not None else task_names()
    try:
        canonical = infer_task(str(name).strip())
    except Exception:  # noqa: BLE001 - infer_task raises on odd types
        canonical = None
    if canonical not in valid:
        raise ValueError(f"unknown ScienceWorld task {name!r}; valid tasks: {valid}")
    return canonical


def is_electrical(task: str) -> bool:
    return any(marker in task for marker in ELECTRICAL_TASK_MARKERS)


def variation_splits(num_variations: int) -> dict[str, list[int]]:
    """ScienceWorld's train/dev/test variations of a task with ``num_variations`` (``PythonInterface.getSets``)."""
    n = num_variations
    small = {0: ([], [], []), 1: ([0], [], [0]), 2: ([0], [], [1]), 3: ([0], [1], [2]), 4: ([0, 1], [2], [3])}
    if n in small:
        train, dev, test = small[n]
    else:
        size = n // 4
        groups = [list(range(i, min(i + size, n))) for i in range(0, n, size)]
        train, dev, test = groups[0] + groups[1], groups[2], groups[3] + (groups[4] if len(groups) > 4 else [])
    return {"train": list(train), "dev": list(dev), "test": list(test)}


def cache_dir() -> Path:
    """Where SciWorld's tables, contexts and gold paths are cached (per scienceworld version)."""
    import scienceworld

    return wmgym_home() / "sciworld" / f"v0-sw{scienceworld.__version__}"


class JVMDiedError(RuntimeError):
    """The simulator's Java process is gone (killed, crashed); ``reset()`` starts a new one."""


def _shutdown(gateway, proc: subprocess.Popen) -> None:
    """Stop a gateway and its JVM (also run by the finalizer of a forgotten :class:`ScienceWorldJVM`)."""
    # Forget the connection first: py4j's finalizers of remote objects would otherwise try to reach a dead JVM.
    gateway._gateway_client.is_connected = False
    try:
        gateway.close()
    except Exception:  # noqa: BLE001 - the JVM may be gone already
        pass
    if proc.poll() is None:
        try:  # py4j's die_on_exit JVM quits when its stdin gets a line
            proc.stdin.write(b"\n")
            proc.stdin.flush()
            proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


class ScienceWorldJVM:
    """One ScienceWorld simulator process and its ``PythonInterface`` (``.server``)."""

    def __init__(self) -> None:
        java = find_java()
        try:
            from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
            from scienceworld.constants import BASEPATH, JAR_PATH
        except ImportError as e:  # pragma: no cover - a dependency of wmgym
            raise ImportError("SciWorld-v0 needs the scienceworld package: pip install wmgym (or pip install "
                              "scienceworld)") from e
        # Keep the JVM's stderr (its crash reports) for error messages; stdout goes to /dev/null.
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        try:
            port, proc = launch_gateway(classpath=JAR_PATH, die_on_exit=True, cwd=BASEPATH, return_proc=True,
                                        java_path=java, javaopts=list(JVM_OPTIONS), redirect_stderr=self.stderr)
        except Exception as e:
            raise RuntimeError(f"could not start ScienceWorld's JVM with {java!r} ({e}); it needs Java 17: "
                               f"{JAVA_INSTALL_HINT}") from e
        self.proc = proc
        self.gateway = JavaGateway(gateway_parameters=GatewayParameters(auto_field=True, port=port),
                                   java_process=proc)
        self.server = self.gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        self._finalizer = weakref.finalize(self, _shutdown, self.gateway, proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def died_error(self) -> JVMDiedError:
        tail = "".join(list(self.stderr)[-5:]).strip()
        return JVMDiedError(f"ScienceWorld's JVM (pid {self.pid}) died; call reset() to start a new one"
                            + (f". Its last words: {tail}" if tail else ""))

    def close(self) -> None:
        self._finalizer()

    # ------------------------------------------------------------ task table
    def num_variations(self, task: str) -> int:
        return int(self.server.getTaskMaxVariations(task))

    def load(self, task: str, variation: int, simplifications: str = "", gold_path: bool = False) -> None:
        error = self.server.load(task, int(variation), simplifications, bool(gold_path))
        if error:
            raise RuntimeError(f"ScienceWorld could not load task {task!r} variation {variation}: {error}")


def load_variation_table(jvm_factory) -> dict[str, int]:
    """``{task: number of variations}`` for the 30 tasks, cached on disk (asks a JVM once per WMGYM_HOME)."""
    path = cache_dir() / "variations.json"
    if path.exists():
        table = json.loads(path.read_text())
        if list(table) == task_names():
            return table
    jvm = jvm_factory()
    table = {task: jvm.num_variations(task) for task in task_names()}
    atomic_write(path, json.dumps(table, indent=1))
    return table
