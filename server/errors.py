"""Every error leaves as JSON `{"error": "short_code", "detail": "..."}`; nothing as a 500
page, whatever the input."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import DataError as PostgresDataError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

log = logging.getLogger("fieldcrm")

STATUS_CODES = {
    400: "malformed",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    426: "upgrade_required",
    429: "too_many_requests",
}

# A rejected write's code, as the HTTP status a REST client gets for it.
REJECTION_STATUS = {"not_found": 404, "forbidden": 403, "deleted": 409}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra


def error_response(status: int, error: str, detail: str, **extra: Any) -> Response[Any]:
    return Response(
        {"error": error, "detail": detail, **extra}, status_code=status, media_type=MediaType.JSON
    )


def api_error_handler(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return error_response(exc.status, exc.error, exc.detail, **exc.extra)


def http_error_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = str(exc.detail) if exc.detail else "The request could not be handled."
    if isinstance(exc, ValidationException):
        detail = _validation_detail(exc)
    headers = dict(exc.headers or {})
    response = error_response(status, STATUS_CODES.get(status, "error"), detail)
    response.headers.update(headers)
    return response


def unstorable_value_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """PostgreSQL refused a value the request carried (a NUL character in a search, a
    username or a client id; a number out of range): the request is at fault, not the
    server. Its transaction has rolled back, so nothing of it was applied."""
    log.warning("PostgreSQL refused a value on %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        400, "malformed", "A value in the request cannot be stored, e.g. it holds a NUL character."
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "Something went wrong on the server; it is logged.")


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra
    if isinstance(extra, list) and extra:
        parts = []
        for item in extra[:3]:
            if isinstance(item, dict):
                where = item.get("key") or item.get("source") or ""
                parts.append(f"{where}: {item.get('message', '')}".strip(": "))
        if parts:
            return "; ".join(parts)
    return str(exc.detail) or "The request body or parameters are malformed."


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ApiError: api_error_handler,
    HTTPException: http_error_handler,
    PostgresDataError: unstorable_value_handler,
    Exception: internal_error_handler,
}
