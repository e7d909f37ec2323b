"""The API's docs pages (/docs and /redoc), served with their assets from this server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and fonts and a favicon from
other hosts), so on a machine without internet they are blank. Here the same pages
point at the upstream dist files that the `fastapi-offline` package ships, mounted
under /static/docs. The pages are plain routes, like FastAPI's: they stay out of the
OpenAPI document and need no credentials (the access matrix reads API routes only).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/static/docs"

# Swagger UI would otherwise show a badge image from validator.swagger.io and send it
# the document's URL.
_SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def install_docs(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and /redoc with local assets.

    The app must be made with `docs_url=None, redoc_url=None`, so that FastAPI does not
    add its own pages at the same paths.
    """
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="docs-assets",
    )

    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), **_SWAGGER_UI_PARAMETERS},
        )

    async def swagger_ui_redirect(_request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc_html(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route(DOCS_URL, swagger_ui_html, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route(REDOC_URL, redoc_html, include_in_schema=False)


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under, as FastAPI's own pages read it."""
    return str(request.scope.get("root_path", "")).rstrip("/")
