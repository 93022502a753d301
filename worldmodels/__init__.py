"""wmgym.worldmodels."""
