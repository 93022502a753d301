"""wmgym.training."""
