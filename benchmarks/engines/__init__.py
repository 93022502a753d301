"""Engine-speed benchmarks, one module per env that declares one (``TextEnv.engine_benchmark``).

``wmgym bench engine --env ID [ARGS]`` runs the benchmark the env declares;
each module also runs as ``python -m wmgym.benchmarks.engines.<name>``.
"""
