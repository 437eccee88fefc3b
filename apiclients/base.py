"""What every /api/v1/ view shares: who may call (an API key or a signed-in member of staff), the rate
they may call at, the one error shape, and conditional GETs with ETags."""

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apiclients.auth import ApiKeyAuthentication
from apiclients.exception_handler import api_exception_handler
from apiclients.models import ApiClient
from apiclients.throttling import PerClientRateThrottle
from staff.roles import Action, authorize


class CanViewClinical(permissions.BasePermission):
    """Reading anything clinical needs Action.VIEW_CLINICAL; NotPermitted becomes 403 in the handler."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        authorize(request.user, Action.VIEW_CLINICAL)
        return True


class ApiV1Mixin:
    # The key first: its challenge header makes a missing or bad key answer 401, not 403.
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [CanViewClinical]
    throttle_classes = [PerClientRateThrottle]
    # JSON in, JSON out: one request format to document and to test.
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    # OPTIONS answers 405: the OpenAPI document at /api/schema/ is the description of every operation.
    metadata_class = None

    def get_exception_handler(self):
        return api_exception_handler

    @property
    def api_client(self) -> ApiClient | None:
        return self.request.auth if isinstance(self.request.auth, ApiClient) else None


class ApiV1View(ApiV1Mixin, GenericAPIView):
    pass


def content_etag(data) -> str:
    """A strong ETag over the representation itself, so it changes exactly when the body does (which
    includes "Day +N" rolling over at midnight, not only writes)."""
    encoded = json.dumps(data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [value.strip() for value in header.split(",")]
    return "*" in candidates or any(value.removeprefix("W/") == etag for value in candidates)


def conditional_response(request, data) -> Response:
    """200 with an ETag, or 304 when the client's If-None-Match still matches."""
    etag = content_etag(data)
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _etag_matches(if_none_match, etag):
        return Response(status=304, headers=headers)
    return Response(data, headers=headers)
