"""Chat: what to load (plan), the session, the worker the page talks to, and the terminal chat."""
