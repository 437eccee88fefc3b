"""Writes of planning: the audit row of an export, and the calendar feed's secret addresses."""

import secrets

from django.utils import timezone

from carclinic.errors import NotPermitted
from planning.models import CalendarFeedToken, DataExport, hash_feed_token
from staff.roles import Action, authorize


def export_record(*, actor, kind: str, filters: dict, row_count: int) -> DataExport:
    """Record who exports what before the export is streamed (refused to roles without EXPORT_DATA)."""
    authorize(actor, Action.EXPORT_DATA)
    return DataExport.objects.create(
        kind=kind,
        exported_by=actor,
        exported_at=timezone.now(),
        filters={k: v for k, v in filters.items() if v not in (None, "")},
        row_count=row_count,
    )


def feed_token_create(*, actor, label: str = "") -> tuple[CalendarFeedToken, str]:
    """A new secret feed address for `actor`; returns the row and the token, which is stored only hashed
    and so can be shown this once."""
    authorize(actor, Action.VIEW_CLINICAL)
    token = secrets.token_urlsafe(32)
    feed = CalendarFeedToken.objects.create(
        user=actor, token_hash=hash_feed_token(token), label=label[:80], created_at=timezone.now()
    )
    return feed, token


def feed_token_revoke(*, actor, feed_id: int) -> CalendarFeedToken:
    """End a feed: its address answers 404 from now on. A user revokes their own feeds only."""
    feed = CalendarFeedToken.objects.filter(id=feed_id, user=actor).first()
    if feed is None:
        raise NotPermitted(Action.VIEW_CLINICAL, "That calendar feed is not yours.")
    if feed.revoked_at is None:
        feed.revoked_at = timezone.now()
        feed.save(update_fields=["revoked_at"])
    return feed


def feed_token_used(*, feed: CalendarFeedToken) -> None:
    CalendarFeedToken.objects.filter(id=feed.id).update(last_used_at=timezone.now())
