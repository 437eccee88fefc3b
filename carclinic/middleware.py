"""The browser's middleware, stepped around for requests an API key authenticates.

A call to /api/v1/ with `Authorization: Bearer <key>` (or `Token <key>`) is answered by the key or refused
with 401: `ApiKeyAuthentication` comes first and never falls through to the session (apiclients/base.py).
Sessions, the CSRF cookie, the signed-in user, messages and the idle sign-out have nothing to do for it,
yet cost a good part of the API's most polled answer. For every other request the wrapped middleware runs
unchanged. Not stepped around: security headers, static files, common (trailing slashes),
X-Frame-Options, simple-history's request (it attributes the history rows of an API write) and
django-axes (cheap, and its check wants it by name).

Without a session a bearer request cannot be served as a signed-in user even when the browser that sends
it also holds a session cookie: no session is loaded, none is saved, no cookie is set.
"""

from django.utils.module_loading import import_string

API_PREFIX = "/api/v1/"
_KEY_SCHEMES = ("bearer", "token")  # as apiclients.auth.ApiKeyAuthentication reads the header


def is_api_key_request(request) -> bool:
    if not request.path_info.startswith(API_PREFIX):
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    return bool(header) and header[0].lower() in _KEY_SCHEMES


def unless_api_key(dotted_path: str) -> type:
    """The middleware at `dotted_path`, passed over for API-key requests (its hooks too). A subclass, so
    that Django's and the admin's checks still recognise it."""
    middleware_class = import_string(dotted_path)
    namespace = {"__call__": _call, "__module__": __name__,
                 "__doc__": f"{middleware_class.__name__}, passed over for API-key requests."}
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


Session = unless_api_key("django.contrib.sessions.middleware.SessionMiddleware")
Csrf = unless_api_key("django.middleware.csrf.CsrfViewMiddleware")
Authentication = unless_api_key("django.contrib.auth.middleware.AuthenticationMiddleware")
Messages = unless_api_key("django.contrib.messages.middleware.MessageMiddleware")
IdleSignOut = unless_api_key("staff.middleware.IdleSignOutMiddleware")
