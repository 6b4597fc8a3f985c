"""``poise serve``: the REST API (and, later, the web pages) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from poise.cli.common import DatabaseOption, app, err

GRACE = 20  # seconds requests in progress get to finish when the server is told to stop


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="POISE_HOST", help="Address to listen on (POISE_HOST).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(envvar="POISE_PORT", min=0, max=65535, help="Port (POISE_PORT).")
    ] = 8000,
    workers: Annotated[
        int, typer.Option(envvar="POISE_WEB_WORKERS", min=1, help="uvicorn worker processes.")
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            envvar="POISE_WEB_THREADS",
            min=1,
            help="Threads each worker runs the routes on (POISE_WEB_THREADS; default 4).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    database_url: DatabaseOption = None,
) -> None:
    """Serve the API under /api/v1 (its OpenAPI document at /api/v1/openapi.json) until
    stopped; requests in progress are finished first (docs/service.md)."""
    import os

    import uvicorn

    from poise.api.logs import configure
    from poise.settings import Settings
    from poise.store.migrate import open_store
    from poise.web.oidc import provider_of

    if database_url:
        os.environ["POISE_DATABASE_URL"] = database_url  # the workers read it too
    if threads:
        os.environ["POISE_WEB_THREADS"] = str(threads)  # read by each worker's application
    settings = Settings()
    open_store(settings.database_url).dispose()  # a store it cannot use: say so now
    provider_of(settings)  # nor OpenID Connect settings that cannot work
    configure(log_level)
    err.print(f"poise serving on http://{host}:{port}/api/v1 (Ctrl-C to stop)")
    uvicorn.run(
        "poise.api.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=GRACE,
        proxy_headers=True,
    )
