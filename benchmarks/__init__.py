"""wmgym.benchmarks."""
