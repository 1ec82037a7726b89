"""The Train tab: one builder (tab.py) and its panels and handlers."""
