"""The API documentation pages: Swagger UI at /docs and ReDoc at /redoc, both from files
this server serves itself (app/api/docs_static, vendored from their npm packages by
scripts/vendor_docs_assets.sh), so they work without internet access. And `/`, which
leads to the dashboard.

Like /openapi.json, these pages need no token: they show the routes and shapes of the
API, nothing stored on the server, and Swagger UI's "Authorize" asks for the token that
its "Try it out" then sends.
"""

from __future__ import annotations

import base64
import hashlib
import re
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

# The generated pages start Swagger UI from an inline script: the policy allows exactly
# that script, by its hash. Both UIs style elements inline (ReDoc writes <style> elements),
# draw icons from data: URIs and ReDoc searches in a worker it builds from a blob.
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
POLICY = (
    "default-src 'none'",
    "script-src 'self' {hashes}",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
# Swagger UI would send the document to an online validator and show its badge.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


def _script_hash(script: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a Content-Security-Policy allowing only our files and its own inline
    scripts (hashed here, so a change of FastAPI's page template cannot break it)."""
    hashes = " ".join(_script_hash(script) for script in INLINE_SCRIPT.findall(page.body))
    page.headers["Content-Security-Policy"] = "; ".join(POLICY).format(hashes=hashes)
    return page


def _root(request: Request) -> str:
    """The prefix a proxy mounts the server under (uvicorn's --root-path), if any."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


@router.get(DOCS_PATH)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=root + SWAGGER_JS,
        swagger_css_url=root + SWAGGER_CSS,
        swagger_favicon_url=root + FAVICON,
        oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )
    return with_policy(page)


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_redirect() -> HTMLResponse:
    return with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_PATH)
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_redoc_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=root + REDOC_JS,
        redoc_favicon_url=root + FAVICON,
        with_google_fonts=False,
    )
    return with_policy(page)


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    """People who open the server's address in a browser want the dashboard."""
    return RedirectResponse(_root(request) + DASHBOARD_PATH, status_code=307)


def include(app: FastAPI) -> None:
    """Needs the app built with docs_url=None and redoc_url=None (FastAPI's own pages
    load their scripts from a CDN)."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="docs-static")
