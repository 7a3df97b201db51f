"""`python -m omniroute_desk`: read the settings once, serve the desk until SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from omniroute import logs
from omniroute_desk.app import create_app
from omniroute_desk.settings import DeskSettings


def main() -> None:
    """Entry point of the `omniroute-desk` command."""
    settings = DeskSettings.from_env()
    logs.configure("desk", settings.log_level)
    app = create_app(settings)
    # uvicorn handles SIGTERM: open streams are cancelled, then the app's lifespan ends.
    uvicorn.run(
        app,
        host=settings.desk_host,
        port=settings.desk_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
