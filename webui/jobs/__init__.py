"""Job control in the web process (no gradio): scheduler, monitor, run and export managers, paths, engine commands."""
