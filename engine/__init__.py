"""PEFT Workbench engine: everything that touches models, data and training. Never imports gradio."""
