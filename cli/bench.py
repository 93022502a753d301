"""``wmgym bench NAME [ARGS]``: run a benchmark (same flags as ``python -m wmgym.benchmarks.NAME``).

``wmgym bench engine --env ID [ARGS]`` runs the engine-speed benchmark the env declares
(``TextEnv.engine_benchmark``), with that benchmark's own flags.
"""

from __future__ import annotations

import argparse
import importlib

#: Benchmark name -> (module, one-line description); ``engine``'s module is the env's declared one.
BENCHMARKS: dict[str, tuple[str | None, str]] = {
    "fidelity": ("wmgym.benchmarks.fidelity", "teacher-forced single-step EM and token F1 per env and step index"),
    "consistency": ("wmgym.benchmarks.consistency", "Real / WM / W2R / CR per env and agent; anchoring study"),
    "scaling": ("wmgym.benchmarks.scaling", "EM (and CR) against training trajectories and model size"),
    "throughput": ("wmgym.benchmarks.throughput", "steps/s of real envs and twins, single and vectorised"),
    "latency": ("wmgym.benchmarks.latency", "world-model step latency against history length"),
    "verifier": ("wmgym.benchmarks.verifier", "agents' success with ActionVerifier on the irreversible action, "
                                             "per verification budget"),
    "rwml": ("wmgym.benchmarks.rwml", "held-out EM / F1 / embedding similarity after SFT, SFT + RWML and SFT + "
                                      "EM-reward GRPO at equal compute"),
    "utility": ("wmgym.benchmarks.utility", "agents trained on real / twin / mixed episodes, GRPO in twin or real, "
                                            "the verifier: real-env success of each"),
    "finetune": ("wmgym.benchmarks.finetune", "a pretrained chat LM fine-tuned as a twin (LoRA, full) at a fixed "
                                              "wall-clock budget, EM against tokens, beside the tiny default"),
    "engine": (None, "--env ID: the env's own engine-speed benchmark (e.g. ALFWorld resets, SciWorld vs its package)"),
    "report": ("wmgym.benchmarks.report", "gather the latest results into one Markdown page"),
}


def engine_benchmarks() -> dict[str, str]:
    """Real env id -> the entry point of the engine benchmark it declares, for every env that declares one."""
    import wmgym  # noqa: F401
    from wmgym.envs import env_class, real_id, registered_ids

    out = {}
    for env_id in registered_ids():
        if env_id == real_id(env_id):  # a twin's class is its real env's: listed once, under the real id
            entry = env_class(env_id).engine_benchmark
            if entry:
                out[env_id] = entry
    return out


def run_engine(argv: list[str]) -> int:
    """``wmgym bench engine --env ID [ARGS]``: the env's declared engine benchmark, given ``ARGS``."""
    from wmgym.envs import load_entry_point

    parser = argparse.ArgumentParser(prog="wmgym bench engine", add_help=False)
    parser.add_argument("--env", default=None)
    known, rest = parser.parse_known_args(argv)
    declared = engine_benchmarks()
    if known.env is None:
        if any(a in ("-h", "--help") for a in rest):
            print("usage: wmgym bench engine --env ID [ARGS]\n\nenvs with an engine benchmark:\n"
                  + "\n".join(f"  {e:<16} {entry}" for e, entry in declared.items())
                  + "\n\n`wmgym bench engine --env ID --help` lists that benchmark's flags.")
            return 0
        raise ValueError(f"wmgym bench engine needs --env ID; envs with an engine benchmark: {sorted(declared)}")
    if known.env not in declared:
        import gymnasium as gym

        gym.spec(known.env)  # an unknown id fails with Gymnasium's suggestions
        raise ValueError(f"{known.env} declares no engine benchmark (TextEnv.engine_benchmark); "
                         f"envs that do: {sorted(declared)}")
    entry = declared[known.env]
    if sum(e == entry for e in declared.values()) > 1:  # one benchmark for several ids (Tau2's domains): say which
        rest = ["--env", known.env, *rest]
    return int(load_entry_point(entry)(rest) or 0)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.name == "engine":
        return run_engine(list(args.args))
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
    p = sub.add_parser("bench", help="run a benchmark (fidelity, consistency, scaling, throughput, latency, verifier, "
                                     "rwml, utility, engine, report)",
                       description=f"benchmarks:\n{lines}\n\n`wmgym bench NAME --help` lists a benchmark's flags.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(BENCHMARKS), metavar="NAME", help="benchmark to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own flags")
    p.set_defaults(func=cmd_bench)
