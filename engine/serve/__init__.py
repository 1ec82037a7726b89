"""`python launch.py serve`: an OpenAI-compatible HTTP API over the chat engine (engine/chat/session.py).

catalog.py decides which names are served (the base and every finished run of a workspace, or one model folder)
and what is loaded together; protocol.py maps OpenAI's request and response bodies to the chat session's
messages, tools and SamplingConfig and back (plain pydantic, no model); app.py is the FastAPI application over
one ChatSession behind a lock; cli.py parses the flags and runs uvicorn.
"""
