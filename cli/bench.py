"""``wmgym bench NAME [ARGS]``: run a benchmark (same flags as ``python -m wmgym.benchmarks.NAME``)."""

from __future__ import annotations

import argparse
import importlib

#: Benchmark name -> (module, one-line description).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "fidelity": ("wmgym.benchmarks.fidelity", "teacher-forced single-step EM and token F1 per env and step index"),
    "consistency": ("wmgym.benchmarks.consistency", "Real / WM / W2R / CR per env and agent; anchoring study"),
    "scaling": ("wmgym.benchmarks.scaling", "EM (and CR) against training trajectories and model size"),
    "throughput": ("wmgym.benchmarks.throughput", "steps/s of real envs and twins, single and vectorised"),
    "latency": ("wmgym.benchmarks.latency", "world-model step latency against history length"),
    "alfworld": ("wmgym.benchmarks.alfworld", "ALFWorld-v0 reset time and steps/s per room type; expert success"),
    "sciworld": ("wmgym.benchmarks.sciworld", "SciWorld-v0 steps/s against the scienceworld package, same actions"),
    "report": ("wmgym.benchmarks.report", "gather the latest results into one Markdown page"),
}


def cmd_bench(args: argparse.Namespace) -> int:
    module_name = BENCHMARKS[args.name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise ValueError(f"benchmark {args.name!r} is not available in this checkout ({module_name} is missing)")
        raise
    return int(module.main(list(args.args)) or 0)


def add_parser(sub: argparse._SubParsersAction) -> None:
    lines = "\n".join(f"  {name:<12} {desc}" for name, (_, desc) in BENCHMARKS.items())
    p = sub.add_parser("bench", help="run a benchmark (fidelity, consistency, scaling, throughput, latency, report, ...)",
                       description=f"benchmarks:\n{lines}\n\n`wmgym bench NAME --help` lists a benchmark's flags.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(BENCHMARKS), metavar="NAME", help="benchmark to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own flags")
    p.set_defaults(func=cmd_bench)
