"""What every /api/v1/ view shares: who may call (an API key or a signed-in member of staff), the rate
they may call at, the one error shape, and conditional GETs with ETags."""

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from rest_framework import permissions
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.auth import ApiKeyAuthentication
from api.exception_handler import api_exception_handler
from api.parsers import LimitedJSONParser
from api.throttling import PerClientRateThrottle
from apiclients.models import ApiClient
from staff.roles import Action, authorize


class CanViewClinical(permissions.BasePermission):
    """Reading anything clinical needs Action.VIEW_CLINICAL; NotPermitted becomes 403 in the handler."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        authorize(request.user, Action.VIEW_CLINICAL)
        return True


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered without parsing when there is nothing to choose: no format override
    and an Accept that takes the first renderer as it is (absent, */* or its own type). DRF's answer in
    those cases is the same; every other request goes through DRF's parsing (406, ?format=...)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT")
        first = renderers[0] if renderers else None
        override = self.settings.URL_FORMAT_OVERRIDE
        if (
            first is not None
            and not format_suffix
            and accept in (None, "*/*", first.media_type)
            and not (override and override in request.query_params)
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)


class ApiV1Mixin:
    # The key first: its challenge header makes a missing or bad key answer 401, not 403.
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [CanViewClinical]
    throttle_classes = [PerClientRateThrottle]
    # JSON in, JSON out: one request format to document and to test.
    parser_classes = [LimitedJSONParser]  # size, depth and text limits: 413/400, never 500
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonFirstNegotiation
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
