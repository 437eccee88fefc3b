"""The unread count in the navigation, on every page."""

import functools

from django.conf import settings

from notifications.selectors import unread_notification_count


def poll_seconds() -> int:
    """How often an open page asks for the unread count (settings.NOTIFICATION_POLL_SECONDS)."""
    return int(settings.NOTIFICATION_POLL_SECONDS)


def unread_notifications(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    # A callable, which the template calls only where it shows the count: one indexed COUNT on a full
    # page however often the page mentions it (cached), and none for HTMX fragments without the nav.
    @functools.cache
    def count() -> int:
        return unread_notification_count(user=user)

    return {"unread_notification_count": count, "notification_poll_seconds": poll_seconds()}
