"""Command-line mains of the engine's short commands (`inspect-data`, `plan`): argument parsing and output
here, the work in the domain packages they call."""
