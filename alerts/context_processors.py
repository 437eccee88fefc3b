import functools

from alerts.selectors import BANNER_LIMIT, banner_alerts


def open_alerts(request):
    """The open alerts sent to the signed-in person, at the top of every page until acknowledged."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    # A callable the template calls where it shows the banner: one query on a full page, none for
    # HTMX fragments and other templates that never mention it.
    @functools.cache
    def alerts() -> dict:
        found = banner_alerts(user)
        return {"shown": found[:BANNER_LIMIT], "more": len(found) > BANNER_LIMIT}

    return {"banner_alerts": alerts}
