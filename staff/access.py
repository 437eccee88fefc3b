"""Who may open a page: signed in, and a role that allows the page's action (else 403, even by typed URL)."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from staff.roles import can, refusal


def role_required(action: str):
    """Pages call this with the one Action they serve; anonymous users go to the sign-in page."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not can(request.user, action):
                raise PermissionDenied(refusal(action).message)
            return view(request, *args, **kwargs)

        wrapped.required_action = action
        return wrapped

    return decorator
