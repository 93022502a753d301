"""Observation-only scripted agents, one module per env; each env class names its own in ``scripted_agent``
(e.g. ``"wmgym.agents.scripted.textworld:TextWorldAgent"``), imported only when asked for."""
