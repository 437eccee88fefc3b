"""`Authorization: Bearer <key>` for API clients. The request's user is the client's service user, whose
roles are the client's role, so `staff.roles.authorize()` treats it like any member of staff."""

from rest_framework import authentication, exceptions

from apiclients.rates import COUNTED_ATTRIBUTE
from apiclients.services import api_client_for_key_counted


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in (b"bearer", b"token"):
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as: Authorization: Bearer <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The key is not valid.") from None
        client, counted = api_client_for_key_counted(key)
        if client is None:
            # One message for unknown, revoked and expired keys: a caller learns nothing about which.
            raise exceptions.AuthenticationFailed("The key is not valid, revoked or expired.")
        if counted is not None:
            setattr(request, COUNTED_ATTRIBUTE, counted)
        user = client.user
        # The client's role is its only role; setting it here spares a query for the user's groups.
        user.__dict__["roles"] = frozenset({client.role})
        return user, client

    def authenticate_header(self, request):
        # Makes DRF answer 401 with a challenge (not 403) when no or bad credentials are sent.
        return 'Bearer realm="carclinic-api"'
