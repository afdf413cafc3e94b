"""The web page: plain HTML, CSS and JavaScript modules, served as they are (no build step).
It talks to the same API as every other client, with the login cookie."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        # the page is small and changes with sfumato: always asked for again
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
