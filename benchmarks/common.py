"""What every benchmark shares: its results folder, run metadata and writers.

A run writes into ``--out`` (default ``results/<bench>/<run name or
timestamp>``):

- ``result.json``: machine-readable: benchmark name, metadata (command line,
  seeds, package versions, machine, the ``context_version`` of each env the
  run used), config, results;
- ``report.md``: the same for a person: tables and the plots;
- ``*.png``: plots (matplotlib with the Agg backend, imported where used).

``wmgym bench report`` reads the latest ``result.json`` of each benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Default root of all results (relative to the working directory).
RESULTS_ROOT = Path("results")
#: Packages whose versions every run records.
PACKAGES = ("wmgym", "gymnasium", "numpy", "torch", "transformers", "peft", "tokenizers", "textworld",
            "alfworld", "scienceworld", "vllm", "matplotlib")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``names`` (``None`` for a missing package)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine_info() -> dict[str, Any]:
    """CPU count, platform, torch threads and GPU (if any) of this machine."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    if "torch" in sys.modules:  # do not import torch only to describe the machine
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        cuda = torch.cuda.is_available()
        info["gpu"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else None
    else:
        info["torch_threads"] = None
        info["gpu"] = None
    return info


def git_commit() -> str | None:
    """The commit of the wmgym checkout, when it is a git repository."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def context_versions(*sources: Any) -> dict[str, int]:
    """``{real id: context_version}`` of every registered env id named in ``sources`` (ids, lists, configs).

    A twin id counts as its real env, whose ``init_context`` it reads. The
    version says which context wording the run's twins and data follow (see
    docs/versioning.md), so results of runs on different wordings are told apart.
    """
    import gymnasium as gym

    from wmgym.envs import env_class, registered_ids

    known = set(registered_ids())
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value in known:
                found.add(str(gym.spec(value).kwargs.get("real_id", value)))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for source in sources:
        walk(_jsonable(source))
    return {env_id: int(env_class(env_id).context_version) for env_id in sorted(found)}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return _jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None  # strict JSON has no NaN; None means "undefined" everywhere in results
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def default_run_name() -> str:
    """A timestamp name (sortable); uniqueness is ensured by :func:`make_run_dir`."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def make_run_dir(bench: str, out: str | os.PathLike | None = None, run_name: str | None = None) -> Path:
    """Create the results folder of a run: ``out`` or ``results/<bench>/<name>``."""
    if out is not None:
        path = Path(out)
    else:
        base = RESULTS_ROOT / bench / (run_name or default_run_name())
        path, k = base, 1
        while path.exists() and run_name is None:  # two runs in one second get distinct folders
            k += 1
            path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that started this run (``python -m wmgym.benchmarks.X ...`` for module runs)."""
    args = list(argv if argv is not None else sys.argv)
    if args and args[0].endswith(".py") and Path(args[0]).resolve().parent == Path(__file__).resolve().parent:
        args = ["python", "-m", f"wmgym.benchmarks.{Path(args[0]).stem}", *args[1:]]
    elif args and Path(args[0]).name == "wmgym":
        args[0] = "wmgym"
    return shlex.join(args)


class BenchmarkRun:
    """One benchmark run: its folder, metadata, and writers.

    Args:
        bench: benchmark name (``fidelity``, ``consistency``, ...).
        config: the run's settings (a dataclass or dict), recorded as given.
        seeds: the seeds the run used.
        out: results folder (default ``results/<bench>/<run_name or timestamp>``).
        run_name: name of the default folder.
        argv: command line to record (default ``sys.argv``).
        envs: env ids the run plays beyond those its ``config`` names (the metadata's ``context_versions``
            covers both).
    """

    def __init__(self, bench: str, config: Any = None, seeds: Sequence[int] | dict | None = None,
                 out: str | os.PathLike | None = None, run_name: str | None = None,
                 argv: Sequence[str] | None = None, envs: Sequence[str] = ()):
        self.bench = bench
        self.envs = list(envs)
        self.path = make_run_dir(bench, out, run_name)
        self.config = config
        self.seeds = seeds
        self.started = time.time()
        self.figures: list[str] = []
        self.metadata: dict[str, Any] = {
            "benchmark": bench,
            "command": command_line(argv),
            "cwd": os.getcwd(),
            "seeds": _jsonable(seeds),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "versions": package_versions(),
            "machine": machine_info(),
            "context_versions": context_versions(config, self.envs),
        }

    def file(self, name: str) -> Path:
        """Path of a file inside the run folder."""
        return self.path / name

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``data`` as indented, strict JSON (NaN becomes ``null``)."""
        path = self.file(name)
        path.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return path

    def write_markdown(self, name: str, text: str) -> Path:
        path = self.file(name)
        path.write_text(text.rstrip() + "\n")
        return path

    def add_figure(self, name: str) -> str:
        """Reserve a PNG file name for a plot and return its path."""
        self.figures.append(name)
        return str(self.file(name))

    def finish(self, results: dict[str, Any], markdown: str, title: str | None = None) -> Path:
        """Write ``result.json`` and ``report.md`` (``# title``, ``markdown``, then the run's metadata)."""
        self.metadata["machine"] = machine_info()  # torch may have been imported since __init__
        self.metadata["duration_s"] = round(time.time() - self.started, 2)
        self.metadata["context_versions"] = context_versions(self.config, self.envs)  # envs may have been added
        self.write_json("result.json", {"benchmark": self.bench, "metadata": self.metadata,
                                        "config": self.config, "results": results, "figures": self.figures})
        heading = title or f"{self.bench} benchmark"
        self.write_markdown("report.md", f"# {heading}\n\n{markdown.strip()}\n\n{metadata_markdown(self.metadata)}")
        return self.path


def metadata_markdown(meta: dict[str, Any]) -> str:
    """The metadata of a run as a short Markdown section."""
    m = meta.get("machine", {})
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items() if v)
    gpu = ", ".join(m.get("gpu") or []) or "none"
    contexts = ", ".join(f"{k} {v}" for k, v in (meta.get("context_versions") or {}).items())
    return "\n".join([
        "## Run",
        "",
        f"- command: `{meta.get('command')}`",
        f"- seeds: {meta.get('seeds')}",
        f"- started: {meta.get('started')}, duration: {meta.get('duration_s')} s, commit: {meta.get('git_commit')}",
        f"- machine: {m.get('platform')}, {m.get('cpu_count')} CPUs, torch threads {m.get('torch_threads')}, GPU: {gpu}",
        f"- versions: {versions}",
        f"- context versions: {contexts or 'none'}",
    ])


def fmt(value: Any, digits: int = 2, percent: bool = False) -> str:
    """A table cell: ``None``/NaN as ``n/a``, floats rounded, rates as percentages."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{100 * value:.{digits}f}" if percent else f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; cells go through :func:`fmt` unless already strings."""
    def cell(v: Any) -> str:
        return (v if isinstance(v, str) else fmt(v)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pyplot():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_plot(path: str, series: dict[str, tuple[Sequence[float], Sequence[float | None]]], *, title: str,
              xlabel: str, ylabel: str, logx: bool = False, ylim: tuple[float, float] | None = None) -> str:
    """One line per series (``name -> (xs, ys)``; ``None`` ys are skipped); saves a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, (xs, ys) in series.items():
        pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    if logx:
        ax.set_xscale("log", base=2)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bar_plot(path: str, groups: Sequence[str], bars: dict[str, Sequence[float | None]], *, title: str,
             ylabel: str, ylim: tuple[float, float] | None = None) -> str:
    """Grouped bars: one group per entry of ``groups``, one bar per key of ``bars``; saves a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(bars)) / 2 + 3), 4.2))
    width = 0.8 / max(1, len(bars))
    for k, (name, values) in enumerate(bars.items()):
        xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set(title=title, ylabel=ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_common_args(parser: argparse.ArgumentParser, *, seed: int = 0) -> None:
    """``--out``, ``--run-name`` and ``--seed``, shared by every benchmark."""
    parser.add_argument("--out", default=None, help="results folder (default results/<bench>/<run-name or timestamp>)")
    parser.add_argument("--run-name", default=None, help="name of the default results folder")
    parser.add_argument("--seed", type=int, default=seed, help="base seed (recorded in the results)")


def set_torch_threads() -> None:
    """One torch thread (two are 5-35x slower on the shared CPUs this project runs on)."""
    n = int(os.environ.get("WMGYM_TORCH_THREADS", "1"))
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(n)


def latest_result(bench: str, root: str | os.PathLike = RESULTS_ROOT) -> tuple[Path, dict[str, Any]] | None:
    """The newest ``result.json`` under ``root/<bench>/`` (by file modification time)."""
    base = Path(root) / bench
    found = []
    for path in base.glob("*/result.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        found.append((path.stat().st_mtime, path, data))
    if not found:
        return None
    _, path, data = max(found, key=lambda t: t[0])
    return path.parent, data
