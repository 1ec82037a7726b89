"""Base model and tokenizer, quantization, the methods table, and a model's shapes."""
