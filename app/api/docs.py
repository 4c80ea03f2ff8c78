"""The API documentation pages: Swagger UI at /docs and ReDoc at /redoc, both from files
this server serves itself (app/api/docs_static, vendored from their npm packages by
scripts/vendor_docs_assets.sh), so they work without internet access. And `/`, which
leads to the dashboard.

Like /openapi.json, these pages need no token: they show the routes and shapes of the
API, nothing stored on the server, and Swagger UI's "Authorize" asks for the token that
its "Try it out" then sends.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from app.dashboard.routes import PREFIX as DASHBOARD_PATH

STATIC_DIR = Path(__file__).parent / "docs_static"
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
STATIC_PATH = "/docs/static"
SWAGGER_JS = f"{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS = f"{STATIC_PATH}/swagger-ui/swagger-ui.css"
REDOC_JS = f"{STATIC_PATH}/redoc/redoc.standalone.js"
FAVICON = f"{STATIC_PATH}/swagger-ui/favicon-32x32.png"

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The prefix a proxy mounts the server under (uvicorn's --root-path), if any."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=root + SWAGGER_JS,
        swagger_css_url=root + SWAGGER_CSS,
        swagger_favicon_url=root + FAVICON,
        oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
    )


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=root + REDOC_JS,
        redoc_favicon_url=root + FAVICON,
        with_google_fonts=False,
    )


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    """People who open the server's address in a browser want the dashboard."""
    return RedirectResponse(_root(request) + DASHBOARD_PATH, status_code=307)


def include(app: FastAPI) -> None:
    """Needs the app built with docs_url=None and redoc_url=None (FastAPI's own pages
    load their scripts from a CDN)."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="docs-static")
