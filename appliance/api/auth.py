"""Authentication: users log in with a password for a short-lived access token and a refresh
token (flask-jwt-extended); `viewer` may read, `admin` may also write. Tokens carry the user's
token version, so a new password or a removed user revokes them all. Logins are rate-limited
per client address and per user name, counted before the password is checked (logins.py)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    verify_jwt_in_request,
)
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from pydantic import BaseModel, Field

from appliance.api.errors import ApiError, ErrorResponse, error_response
from appliance.api.logins import LoginGuard
from appliance.api.users import MAX_PASSWORD_LENGTH, UserStore
from appliance.config.model import ApiConfig
from appliance.files import read_regular_file

PUBLIC_PATHS = frozenset({"/api/v1/health/live", "/api/v1/health/ready", "/api/v1/auth/login", "/api/v1/auth/refresh",
                          "/api/v1/openapi.json"})  # fmt: skip
DOCS_PATHS = ("/api/v1/swagger", "/api/v1/static/", "/api/v1/oauth2-redirect.html")
REFRESH_TTL = timedelta(days=7)
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
SECURITY_SCHEMES: dict[str, Any] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
MAX_SECRET_BYTES = 4096


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class Tokens(BaseModel):
    access_token: str
    refresh_token: str | None = None
    token_type: str = "Bearer"
    expires_in: int


def jwt_secret(config: ApiConfig, data_dir: str) -> str:
    """The profile's `api.auth.jwt_secret`, or one generated for this device on first start and
    kept, mode 0600, in the state directory; never a default."""
    if config.auth.jwt_secret:
        return config.auth.jwt_secret
    path = Path(data_dir) / "api" / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_urlsafe(48))
    return read_regular_file(path, MAX_SECRET_BYTES).decode().strip()


def setup_auth(app: Flask, config: ApiConfig, data_dir: str, users: UserStore) -> None:
    """JWT settings and what happens to a missing, bad, expired or revoked token."""
    app.config.update(
        JWT_SECRET_KEY=jwt_secret(config, data_dir),
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=config.auth.token_ttl_s),
        JWT_REFRESH_TOKEN_EXPIRES=REFRESH_TTL,
        JWT_TOKEN_LOCATION=["headers", "query_string"],  # the query string only where a route allows it
        JWT_QUERY_STRING_NAME="access_token",
        JWT_ALGORITHM="HS256",
    )
    manager = JWTManager(app)

    def refuse(message: str) -> Response:
        return error_response(401, "unauthorized", message)

    manager.unauthorized_loader(lambda reason: refuse(f"log in first: {reason}"))
    manager.invalid_token_loader(lambda reason: refuse(f"invalid token: {reason}"))
    manager.expired_token_loader(lambda _header, _payload: refuse("the token has expired"))
    manager.revoked_token_loader(lambda _header, _payload: refuse("the token was revoked"))
    manager.needs_fresh_token_loader(lambda _header, _payload: refuse("log in again"))
    manager.user_lookup_error_loader(lambda _header, _payload: refuse("no such user"))

    @manager.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        user = users.get(payload["sub"])
        return user is None or user.token_version != payload.get("tv") or user.role != payload.get("role")


def authorize() -> None:
    """Before every request, ahead of any body validation: a valid access token for everything
    but the public routes; the admin role for every write. `viewer` may read (GET), `admin` may
    also write. Snapshots and live views also take the token from `?access_token=` (image and
    video players send no headers). With auth off (`api.auth.enabled: false`, loopback only)
    every caller is an admin."""
    from flask import current_app

    if not current_app.config["APPLIANCE_AUTH"] or request.method == "OPTIONS" or _public(request.path):
        return
    media = request.path.endswith((".jpg", ".mjpg"))
    verify_jwt_in_request(locations=["headers", "query_string"] if media else ["headers"])
    if request.method not in ("GET", "HEAD") and get_jwt().get("role") != "admin":
        raise ApiError(403, "forbidden", "this needs the admin role")


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(DOCS_PATHS)


def auth_routes(users: UserStore, guard: LoginGuard, token_ttl_s: int) -> APIBlueprint:
    routes = APIBlueprint("auth", __name__, url_prefix="/api/v1/auth", abp_tags=[Tag(name="auth")])

    def tokens(name: str, role: str, version: int, refresh: bool) -> Response:
        claims = {"role": role, "tv": version}
        body = Tokens(
            access_token=create_access_token(name, additional_claims=claims),
            refresh_token=create_refresh_token(name, additional_claims=claims) if refresh else None,
            expires_in=token_ttl_s,
        )
        return jsonify(body.model_dump(exclude_none=True))

    @routes.post("/login", responses={200: Tokens, 401: ErrorResponse, 422: ErrorResponse, 429: ErrorResponse})
    def login(body: Login) -> Response:
        """Exchange a user's name and password for an access token and a refresh token. At most 10
        failed logins a minute and 50 an hour per client address, and again per user name (429)."""
        with guard.attempt(f"address {request.remote_addr}", f"user {body.username[:64]}") as attempt:
            user = users.verify(body.username, body.password)
            attempt.succeeded = user is not None
        if user is None:
            raise ApiError(401, "unauthorized", "wrong user name or password")
        return tokens(user.name, user.role, user.token_version, refresh=True)

    @routes.post("/refresh", responses={200: Tokens, 401: ErrorResponse}, security=SECURITY)
    def refresh() -> Response:
        """A new access token for a refresh token (sent as the bearer token)."""
        verify_jwt_in_request(refresh=True)
        user = users.get(get_jwt_identity())
        if user is None:
            raise ApiError(401, "unauthorized", "no such user")
        return tokens(user.name, user.role, user.token_version, refresh=False)

    return routes
