"""Gradio widgets, wiring, plots and rendering shared by the tabs."""
