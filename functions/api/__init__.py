"""The OpenAI-compatible serving app, split as vLLM's ``entrypoints/openai`` is.

- :mod:`functions.api.router`: ``create_app(settings) -> FastAPI``, the routes and the OpenAPI document.
- :mod:`functions.api.protocol`: the wire types, requests and responses (and stream chunks), as pydantic models.
- :mod:`functions.api.serving`: the serving logic: preload, admission in order, generation, JSON or SSE answers.
- :mod:`functions.api.admission`: the admission chain (token bucket, bounded queue, circuit breaker).
- :mod:`functions.api.sse`: Server-Sent Events framing.

Nothing is imported here, so that reading the wire types (the local gateway does) loads no engine.
"""
