"""Evaluation: base against tuned models on the user's own test rows (engine/eval/job.py)."""
