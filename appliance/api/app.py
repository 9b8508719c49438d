"""The Flask app: its routes, auth, error shape, security headers, CORS and body limit."""

from __future__ import annotations

import re

from flask import Response, request
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI

from appliance import __version__
from appliance.api.auth import SECURITY_SCHEMES, auth_routes, authorize, setup_auth
from appliance.api.context import ApiContext
from appliance.api.errors import ApiError, ErrorResponse, register_error_handlers, validation_error
from appliance.api.logins import LoginGuard
from appliance.api.routes.calibration import calibration_routes
from appliance.api.routes.cameras import collection_routes
from appliance.api.routes.events import events_routes
from appliance.api.routes.media import media_routes
from appliance.api.routes.ota import ota_routes
from appliance.api.routes.places import place_routes
from appliance.api.routes.profile import profile_routes
from appliance.api.routes.reports import reports_routes
from appliance.api.routes.system import system_routes
from appliance.api.users import UserStore
from appliance.config.yamlio import MAX_DEPTH

MAX_BODY_BYTES = 1 << 20
BODY_TOO_LARGE = "appliance.body_too_large"  # set by the server on a chunked body over the limit
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")
DOCS_PREFIX = "/api/v1/swagger"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _limit_body() -> None:
    """Refuse a body over the limit before anything reads it (flask-openapi3 would read a cut one
    as no body at all)."""
    if request.environ.get(BODY_TOO_LARGE) or (request.content_length or 0) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"request bodies are at most {MAX_BODY_BYTES} bytes")


def _limit_nesting() -> None:
    """Refuse a JSON body nested deeper than a profile may be, before anything parses it: a body
    nested thousands deep would exhaust the stack of whatever walks it later (the change path's
    YAML writer)."""
    if request.method not in ("POST", "PUT", "PATCH") or not request.is_json:
        return
    depth = json_depth(request.get_data(cache=True))
    if depth > MAX_DEPTH:
        raise ApiError(422, "too_deep", f"the body is nested {depth} levels deep; at most {MAX_DEPTH}")


def json_depth(body: bytes) -> int:
    """How deeply `body`'s arrays and objects nest, counted without parsing it."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", body)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def create_app(context: ApiContext, users: UserStore) -> OpenAPI:
    config = context.loaded.profile.api
    app = OpenAPI(
        __name__,
        info=Info(title="Distancing appliance API", version=__version__),
        security_schemes=SECURITY_SCHEMES,
        doc_prefix="/api/v1",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error,
    )
    app.config.update(
        APPLIANCE_CONTEXT=context, APPLIANCE_AUTH=config.auth.enabled, MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )  # fmt: skip
    register_error_handlers(app)
    app.before_request(_limit_body)
    app.before_request(_limit_nesting)
    app.before_request(authorize)
    setup_auth(app, config, context.loaded.profile.storage.data_dir, users)
    for routes in (
        auth_routes(users, LoginGuard(), config.auth.token_ttl_s),
        system_routes(),
        profile_routes(),
        collection_routes("cameras"),
        collection_routes("areas"),
        place_routes("zones"),
        place_routes("lines"),
        media_routes(),
        calibration_routes(),
        events_routes(),
        reports_routes(),
        ota_routes(),
    ):
        app.register_api(routes)
    origins = set(config.cors_origins)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update(HEADERS)
        if not request.path.startswith(DOCS_PREFIX):  # the docs page runs Swagger UI's scripts
            response.headers["Content-Security-Policy"] = API_CSP
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers.update({
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
                "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
                "Access-Control-Expose-Headers": "ETag",
                "Vary": "Origin",
            })  # fmt: skip
        return response

    return app
