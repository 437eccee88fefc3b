"""Every API error in one JSON shape, whatever raised it:

    {"status": 409, "code": "stale_version", "detail": "…", "field_errors": {"field": ["…"]}}

Domain errors carry their own HTTP status (`carclinic.errors.DomainError.http_status`). Anything
unexpected becomes a 500 with a fixed message: the trace goes to the log, never to the caller.
"""

import logging
import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from carclinic.errors import DomainError

log = logging.getLogger("carclinic.api")


def _code(exc: Exception) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [message for value in detail.values() for message in _flatten(value)]
    if isinstance(detail, list):
        return [message for value in detail for message in _flatten(value)]
    return [str(detail)]


def _field_errors(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {str(name): _flatten(value) for name, value in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def error_body(status_code: int, code: str, detail: str, field_errors: dict | None = None, **extra) -> dict:
    return {"status": status_code, "code": code, "detail": detail, "field_errors": field_errors or {}, **extra}


def api_exception_handler(exc, context):
    headers = {}
    set_rollback()
    if isinstance(exc, DomainError):
        body = error_body(exc.http_status, _code(exc), exc.message, exc.field_errors)
        extra = getattr(exc, "api_extra", None)
        if extra:
            body.update(extra)
        return Response(body, status=exc.http_status)
    if isinstance(exc, Http404):
        # The same answer for "does not exist" and "exists, but not for you": existence is not leaked.
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, RequestDataTooBig):  # Django's own limit, met before our parser's (issue 12, 6)
        from api.parsers import RequestTooLarge

        exc = RequestTooLarge()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if isinstance(exc, exceptions.ValidationError):
            body = error_body(400, "invalid", "Some values need correcting.", _field_errors(exc.detail))
        elif isinstance(exc, exceptions.Throttled):
            body = error_body(429, "throttled", "Too many requests; retry after the number of seconds in Retry-After.")
        else:
            detail = exc.detail if isinstance(exc.detail, str) else " ".join(_flatten(exc.detail))
            body = error_body(
                exc.status_code, exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code, str(detail)
            )
        return Response(body, status=exc.status_code, headers=headers)
    # Ids only in the log line: the request path holds UUIDs, never names or MRNs.
    request = context.get("request")
    log.exception("Unhandled error in API view %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"))
    return Response(
        error_body(500, "server_error", "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
