"""The method comparison: one run per method on one dataset and budget, and the table built from their outputs."""
