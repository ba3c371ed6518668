"""The Campaigns page as a FastAPI app, mounted by the Airflow API server (plugin
``relance_campaigns`` at ``/relance``) behind its authentication: the same JWT (cookie
``_token`` of a UI session, or a Bearer header) and the same authorisation check as the
Airflow UI's own pages (``requires_access_view(WEBSITE)``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

URL_PREFIX = "/relance"
PAGE_PATH = "/campaigns"


def _authorised():
    """Airflow's own dependency; absent outside an Airflow install (then nothing is served)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return requires_access_view(AccessView.WEBSITE)


def render_page(uri: str | None = None) -> str:
    """The page's HTML, read from the warehouse of the ``warehouse`` connection (or ``uri``)."""
    from relance.warehouse import Warehouse
    from relance.webui.page import page_data, render

    wh = Warehouse(uri)
    try:
        return render(page_data(wh), generated_at=datetime.now(UTC))
    finally:
        wh.engine.dispose()


def create_app(uri: str | None = None) -> FastAPI:
    app = FastAPI(title="Relance campaigns", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(PAGE_PATH, response_class=HTMLResponse, dependencies=[Depends(_authorised())])
    async def campaigns() -> HTMLResponse:
        # the warehouse is read synchronously: off the event loop
        return HTMLResponse(await asyncio.to_thread(render_page, uri))

    return app
