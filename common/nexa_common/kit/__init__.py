"""The model-service kit: what every model service (text, image, audio) is built from.

- `models`: the pool of models a service hosts (status, background loading, slots, dead engines);
- `service`: the FastAPI app around it (state object and dependency, /ready, /v1/models, metrics);
- `cancellation`: work stopped when the client leaves (racing ASGI `receive()`).
"""
