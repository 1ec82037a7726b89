"""The Train form without gradio: its typed fields and the one mapping between widget values and RunConfig."""
