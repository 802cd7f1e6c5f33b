"""`gptscratch serve`: an OpenAI-compatible HTTP server over one model (optional extra: gptscratch[serve]).

    protocol.py   the API's request checks, error shape and response pieces (no web framework)
    scheduler.py  the decoding thread: every request in flight batched into one Decoder, re-formed each step
    app.py        the FastAPI routes, streaming as server-sent events

Nothing else in gptscratch imports this package: FastAPI and uvicorn are loaded only by `gptscratch serve`.
"""
