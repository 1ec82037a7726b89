"""The Runs tab: the table of runs and its actions."""
