"""Memory and time of a training run before it starts, from config.json and the RunConfig alone (issue 26): plain
Python, no torch, so that the web process shows the same estimate the engine checks (memory.py), the time it
will take (timing.py) and, where it does not fit, a configuration that does (advice.py)."""
