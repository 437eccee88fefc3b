"""`Idempotency-Key` for POSTs: a client that lost the answer to a completion may send the same request
again and get the first answer, instead of recording the step twice or reading a puzzling 409."""

import hashlib
import json
import re

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework.response import Response

from apiclients.models import IdempotentRequest
from carclinic.errors import DomainError, InvalidInput

MAX_KEY_LENGTH = 255
# Visible ASCII, spaces only inside: what survives every proxy unchanged. The OpenAPI document says the same.
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"


class IdempotencyKeyReused(DomainError):
    """The same key came with a different request: a client bug, never answered with the old result."""

    http_status = 422


def idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not re.fullmatch(KEY_PATTERN, key):
        raise InvalidInput(
            "Bad Idempotency-Key.",
            field_errors={"Idempotency-Key": [f"Send 1 to {MAX_KEY_LENGTH} visible ASCII characters, e.g. a UUID."]},
        )
    return key


def fingerprint(request, payload: dict) -> str:
    """What makes two requests "the same": method, path, If-Match and the validated body."""
    material = json.dumps(
        {"method": request.method, "path": request.path, "if_match": request.headers.get("If-Match", ""), "body": payload},
        cls=DjangoJSONEncoder,
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def stored_answer(*, user, key: str, fingerprint: str) -> Response | None:
    """The first answer to this key, or None; a different request under the same key raises 422."""
    stored = IdempotentRequest.objects.filter(user=user, key=key).first()
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different request; use a new key for a new request.",
            field_errors={"Idempotency-Key": ["Already used for a different request."]},
        )
    headers = {**stored.response_headers, "Idempotent-Replayed": "true"}
    return Response(json.loads(stored.response_body), status=stored.response_status, headers=headers)


def store_answer(*, user, key: str, fingerprint: str, response: Response) -> None:
    """Call inside the transaction of the change itself: the answer is kept if and only if the change is."""
    body = json.dumps(response.data, cls=DjangoJSONEncoder)
    headers = {name: response[name] for name in ("ETag",) if response.has_header(name)}
    IdempotentRequest.objects.create(
        user=user,
        key=key,
        fingerprint=fingerprint,
        response_status=response.status_code,
        response_body=body,
        response_headers=headers,
    )
