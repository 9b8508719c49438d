"""One JSON shape for every error: {"error": {"status", "code", "message", "details"}}; never a
stack trace."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel
from werkzeug.exceptions import HTTPException


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: list[str] = []


class ErrorResponse(BaseModel):
    """Every error the API returns."""

    error: ErrorBody


Responses = dict[str | int, type[BaseModel] | dict[Any, Any] | None]


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[str] | None = None, retry_after_s: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []
        self.retry_after_s = retry_after_s


def error_response(status: int, code: str, message: str, details: list[str] | None = None) -> Response:
    response = jsonify({"error": {"status": status, "code": code, "message": message, "details": details or []}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        response = error_response(error.status, error.code, error.message, error.details)
        if error.retry_after_s is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        response = error_response(status, code, error.description or error.name or "error")
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # Allow on 405, Retry-After on 429, ...
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("api: unexpected error")
        return error_response(500, "internal_error", "the appliance could not handle this request; see its log")


def validation_error(error: Any) -> Response:
    """flask-openapi3's request validation failures, in the one error shape (422)."""
    details = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_input=False)]
    return error_response(422, "invalid_request", "the request does not match its schema", details)
