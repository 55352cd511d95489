"""Every error leaves as JSON `{"error": "short_code", "detail": "..."}`; nothing as a 500
page, whatever the input."""

from __future__ import annotations

import logging
import re
import traceback
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
REJECTION_STATUS = {"not_found": 404, "forbidden": 403, "deleted": 409, "erased": 404}

# What could end a log line, start another, or drive a terminal or a viewer: control
# characters (CR, LF, ESC, NUL, C1), Unicode's line and paragraph separators and its
# direction overrides; and the backslash, so that an escape cannot be forged either.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
LOGGED_CHARS = 500


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def loggable(value: object, limit: int = LOGGED_CHARS) -> str:
    """`value` (what a client sent: a path, a username, a header, an error's text) made
    safe for one line of a log: control characters and backslashes escaped as Python's
    repr escapes them, so it can neither start a line of its own (a forged record) nor
    send escape sequences to a terminal; cut after `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    cut = f"... ({len(text) - limit} more characters)" if len(text) > limit else ""
    return _UNSAFE.sub(_escape, text[:limit]) + cut


_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def loggable_traceback(exc: BaseException) -> str:
    """`exc`'s traceback, chained exceptions first as Python prints it, for the lines after
    a record's first: each exception's message on one line, escaped by `loggable` (it may
    carry what a client sent), and every line indented, so none can pass for a record."""
    chain: list[tuple[BaseException, str]] = []  # newest first, each with how it follows
    error: BaseException | None = exc
    while error is not None and all(error is not seen for seen, _ in chain):
        if error.__cause__ is not None:
            chain.append((error, _CAUSE))
            error = error.__cause__
        elif error.__context__ is not None and not error.__suppress_context__:
            chain.append((error, _CONTEXT))
            error = error.__context__
        else:
            chain.append((error, ""))
            error = None
    lines: list[str] = []
    for older, (error, follows) in enumerate(reversed(chain)):
        if older:
            lines += ["", follows, ""]
        lines.append("Traceback (most recent call last):")
        lines += "".join(traceback.format_tb(error.__traceback__)).splitlines()
        try:
            message = str(error)
        except Exception:
            message = "<the message could not be read>"
        name = type(error).__qualname__
        lines.append(f"{name}: {message}" if message else name)
    return "\n".join("    " + loggable(line, 2000) for line in lines)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra
        self.headers = headers or {}


def error_response(status: int, error: str, detail: str, **extra: Any) -> Response[Any]:
    return Response(
        {"error": error, "detail": detail, **extra}, status_code=status, media_type=MediaType.JSON
    )


def api_error_handler(_: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    response = error_response(exc.status, exc.error, exc.detail, **exc.extra)
    response.headers.update(exc.headers)
    return response


def over_limit_error(status: int, error: str, detail: str, retry_after_s: int | None) -> ApiError:
    """A request refused whole by a limit (server/core/limits.py): 429 or 413, with when to
    try again in Retry-After and in the body, when known."""
    if retry_after_s is None:
        return ApiError(status, error, detail)
    return ApiError(
        status,
        error,
        detail,
        headers={"Retry-After": str(retry_after_s)},
        retry_after_s=retry_after_s,
    )


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
    log.warning(
        "PostgreSQL refused a value on %s %s: %s",
        loggable(request.method),
        loggable(request.scope["path"]),
        loggable(exc),
    )
    return error_response(
        400, "malformed", "A value in the request cannot be stored, e.g. it holds a NUL character."
    )


def too_slow_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A read ran past the database layer's time limit (server.db.StatementTimeout; the app
    registers this for it): the server is busy or the request asks too much of it. Nothing
    was changed."""
    log.warning(
        "a read was stopped on %s %s: %s",
        loggable(request.method),
        loggable(request.scope["path"]),
        loggable(exc),
    )
    response = error_response(
        503,
        "too_slow",
        "This request took too long to answer and was stopped; narrow it (a longer search, "
        "a smaller radius, an earlier page) or try again in a moment.",
    )
    response.headers["Retry-After"] = "5"
    return response


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # No exc_info: the logging module would write the exception's message as it is.
    log.error(
        "unhandled error on %s %s: %s\n%s",
        loggable(request.method),
        loggable(request.scope["path"]),
        type(exc).__name__,
        loggable_traceback(exc),
    )
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
