"""Job folders, the one event schema, the reporter and lifecycle every engine job runs through, and failures."""
