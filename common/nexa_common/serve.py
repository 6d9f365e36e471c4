"""Run a component's app under uvicorn with its settings (what `python -m nexa_<component>` does)."""

from __future__ import annotations

import uvicorn

from .logs import configure_logging
from .settings import ComponentSettings


def serve(app_factory: str, settings: ComponentSettings, *, reload: bool = False) -> None:
    """Serve `module:create_app` on the settings' host and port.

    The app is built by a factory so `--reload` can rebuild it, and so tests build the same app.
    """
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=reload,
        log_config=None,  # keep configure_logging's handlers
        timeout_graceful_shutdown=10,
        # Keep-alive longer than the router's pool expiry, so pooled connections are not cut under it.
        timeout_keep_alive=75,
    )


def main(app_factory: str, settings_type: type[ComponentSettings], argv: list[str] | None = None) -> None:
    """`python -m nexa_<component> [--reload]`: settings from the environment, flags for development."""
    import argparse

    parser = argparse.ArgumentParser(description=f"Serve {app_factory.split('.')[0]} (settings from NEXA_* env vars).")
    parser.add_argument("--reload", action="store_true", help="restart when the code changes (development)")
    args = parser.parse_args(argv)
    serve(app_factory, settings_type(), reload=args.reload)
