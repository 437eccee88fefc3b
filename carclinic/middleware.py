"""The browser's middleware, stepped around for requests an API key authenticates.

A call to /api/v1/ with `Authorization: Bearer <key>` (or `Token <key>`) is answered by the key or refused
with 401: `ApiKeyAuthentication` comes first and never falls through to the session (api/base.py).
So such a request carries no cookies as far as the app is concerned (`IgnoreCookiesOnApiKeyRequests`,
placed before the session and CSRF middleware): no session is loaded, refreshed or saved, even when the
browser that sends it also holds a session cookie. The signed-in user, messages and the idle sign-out
then have nothing to do for it, yet cost a good part of the API's most polled answer, and are passed
over (`unless_api_key`). For every other request all of them run unchanged. The session and CSRF
middleware stay in MIDDLEWARE under their own names: Django's deploy checks look for them there.
"""

from django.utils.module_loading import import_string

API_PREFIX = "/api/v1/"
_KEY_SCHEMES = ("bearer", "token")  # as api.auth.ApiKeyAuthentication reads the header


def is_api_key_request(request) -> bool:
    if not request.path_info.startswith(API_PREFIX):
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    return bool(header) and header[0].lower() in _KEY_SCHEMES


class IgnoreCookiesOnApiKeyRequests:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_key_request(request):
            request.COOKIES = {}
        return self.get_response(request)


def unless_api_key(dotted_path: str) -> type:
    """The middleware at `dotted_path`, passed over for API-key requests (its hooks too). A subclass, so
    that Django's and the admin's checks still recognise it."""
    middleware_class = import_string(dotted_path)
    namespace = {
        "__call__": _call,
        "__module__": __name__,
        "__doc__": f"{middleware_class.__name__}, passed over for API-key requests.",
    }
    for hook in ("process_view", "process_exception", "process_template_response"):
        if hasattr(middleware_class, hook):
            namespace[hook] = _hook(hook)
    return type(f"{middleware_class.__name__}UnlessApiKey", (middleware_class,), namespace)


def _call(self, request):
    if is_api_key_request(request):
        return self.get_response(request)
    return super(type(self), self).__call__(request)


def _hook(name):
    def hook(self, request, *args):
        if is_api_key_request(request):
            return None
        return getattr(super(type(self), self), name)(request, *args)

    return hook


Authentication = unless_api_key("django.contrib.auth.middleware.AuthenticationMiddleware")
Messages = unless_api_key("django.contrib.messages.middleware.MessageMiddleware")
IdleSignOut = unless_api_key("staff.middleware.IdleSignOutMiddleware")
