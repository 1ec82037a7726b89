"""The training recipe: Trainer, batching, collation and the pre-flight memory check."""
