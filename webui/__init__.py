"""The Gradio front end of PEFT Workbench. Never imports torch, transformers or peft: every heavy step
runs in an engine process (`python -m engine ...`) that this package starts and watches."""
