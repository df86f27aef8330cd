"""Swagger UI served from the swagger-ui-bundle wheel: ``/docs`` works offline, no CDN."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from crm2_core.http.security import page_csp

ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    app.mount(
        ASSETS,
        StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)),
        name="swagger-assets",
    )

    # Rendered once: the CSP names the page's own inline scripts by hash.
    ui = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )
    redirect = get_swagger_ui_oauth2_redirect_html()

    def _page(response: HTMLResponse) -> tuple[str, dict[str, str]]:
        html = bytes(response.body).decode()
        return html, {"Content-Security-Policy": page_csp(html)}

    ui_page, redirect_page = _page(ui), _page(redirect)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(ui_page[0], headers=ui_page[1])

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return HTMLResponse(redirect_page[0], headers=redirect_page[1])
