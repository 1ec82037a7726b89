"""Dataset files -> records -> chat messages -> tokens with exact masks, under any chat template."""
