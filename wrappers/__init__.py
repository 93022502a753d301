"""wmgym.wrappers."""
