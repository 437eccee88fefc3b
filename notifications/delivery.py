"""Delivering reminders: claim what is due, send it (one message per person and channel), mark it sent,
retry a failure with backoff and give up visibly (`carclinic.outbox`, shared with the webhooks).

Sending claims rows with a conditional UPDATE first, so two workers never send the same row; a worker
that dies mid-send leaves a claim that times out and is taken again. In-app notices go first and claims
are small, so a hung mail server neither delays the bell nor strands more than a few messages.
"""

import json
import logging
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from carclinic.outbox import RetryPolicy, claim, gave_up
from journeys.models import JourneyStatus, StepStatus
from notifications.messages import compose
from notifications.models import Channel, Notification, Reminder, ReminderEvent, ReminderKind, ReminderState

log = logging.getLogger("carclinic.reminders")


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    messages: int = 0

    def __add__(self, other: "DeliveryResult") -> "DeliveryResult":
        return DeliveryResult(**{name: getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__})


def retry_policy() -> RetryPolicy:
    """Exponential backoff: 1, 2, 4, 8 … times REMINDER_RETRY_BASE_SECONDS, so a mail server that is down
    is not hammered; given up after REMINDER_MAX_ATTEMPTS. Read each time: the settings may change."""
    return RetryPolicy(
        max_attempts=settings.REMINDER_MAX_ATTEMPTS, first_delay=timedelta(seconds=settings.REMINDER_RETRY_BASE_SECONDS)
    )


class DeliveryError(Exception):
    """A channel refused a message; the reminder is retried with backoff."""


def _claimable(now: datetime) -> Q:
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    # A claim older than the timeout belongs to a worker that died mid-send: take it over, unless it has
    # used up its attempts (those are given up by reminders_give_up_stale).
    return Q(state=ReminderState.PENDING, send_after__lte=now) | Q(
        state=ReminderState.SENDING, claimed_at__lt=stale, attempts__lt=settings.REMINDER_MAX_ATTEMPTS
    )


def _claim(queryset, *, now: datetime, token: uuid.UUID) -> int:
    """Conditional UPDATE: a row is ours only if it was still claimable when the UPDATE reached it;
    PostgreSQL re-checks the WHERE clause after waiting on a row another worker is claiming."""
    return claim(
        queryset,
        claimable=_claimable(now),
        state=ReminderState.SENDING,
        claim_token=token,
        claimed_at=now,
        attempts=F("attempts") + 1,
    )


def reminders_give_up_stale(*, now: datetime) -> int:
    """Claims that timed out with no attempts left: a worker died on each of them. Say so, visibly."""
    stale = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    ids = list(
        Reminder.objects.filter(
            state=ReminderState.SENDING, claimed_at__lt=stale, attempts__gte=settings.REMINDER_MAX_ATTEMPTS
        ).values_list("id", flat=True)
    )
    if not ids:
        return 0
    count = Reminder.objects.filter(id__in=ids, state=ReminderState.SENDING, claimed_at__lt=stale).update(
        state=ReminderState.FAILED, claim_token=None, last_error="The worker stopped during every attempt."
    )
    ReminderEvent.objects.bulk_create(
        [
            ReminderEvent(
                reminder_id=i, action=ReminderEvent.Action.GAVE_UP, at=now, reason="The worker stopped during every attempt."
            )
            for i in ids
        ]
    )
    log.error("reminders gave up after worker loss count=%d", count)
    return count


LATE_KINDS = (ReminderKind.OVERDUE, ReminderKind.ESCALATION)

# In-app first: a row in our own database, it cannot hang. Then the team's webhook, and e-mail last: a
# mail server that hangs must not hold back the bell.
CHANNEL_ORDER = (Channel.IN_APP, Channel.WEBHOOK, Channel.EMAIL)
_CHANNEL_RANK = Case(
    *[When(channel=channel, then=Value(rank)) for rank, channel in enumerate(CHANNEL_ORDER)], default=Value(len(CHANNEL_ORDER))
)
# Messages (one person, one channel) per claim: a worker killed mid-send strands this many at most until
# the claim times out, not everything that was due.
MESSAGES_PER_CLAIM = 10


def _claim_batch(*, now: datetime, token: uuid.UUID, messages: int, tried: set[int]) -> int:
    """Claim everything due for the first `messages` (person, channel) pairs, in-app first, oldest first.
    A person's due reminders on one channel are claimed together, so they still go out as one message.
    `tried`: rows this run already attempted (a failure retried at once is left for the next run)."""
    due = (
        Reminder.objects.filter(_claimable(now))
        .exclude(id__in=tried)
        .annotate(channel_rank=_CHANNEL_RANK)
        .order_by("channel_rank", "send_after", "id")
        .values_list("recipient_id", "channel")[: messages * 10]
    )
    pairs = list(dict.fromkeys(due))[:messages]
    if not pairs:
        return 0
    which = Q()
    for recipient_id, channel in pairs:
        which |= Q(recipient_id=recipient_id, channel=channel)
    return _claim(Reminder.objects.filter(which).exclude(id__in=tried), now=now, token=token)


def reminders_send_due(
    *, now: datetime | None = None, limit: int = 500, messages_per_claim: int = MESSAGES_PER_CLAIM
) -> DeliveryResult:
    """Claim what is due now (and claims whose worker died) a few messages at a time, in-app first, and
    deliver them, one message per person and channel, until nothing is due or `limit` reminders were
    claimed. Safe to run on several workers at once."""
    now = now or timezone.now()
    clock = _Clock(now)
    # No reminders_cancel_obsolete() here: the scan does it each minute, and _deliver_claimed re-checks
    # every claimed row's step anyway, which is what guarantees a done step is never reminded.
    reminders_give_up_stale(now=now)
    result, tried = DeliveryResult(), set()
    while result.claimed < limit:
        token = uuid.uuid4()
        if not _claim_batch(now=clock(), token=token, messages=messages_per_claim, tried=tried):
            break
        tried.update(Reminder.objects.filter(claim_token=token).values_list("id", flat=True))
        result += _deliver_claimed(token=token, now=now, clock=clock)
    return result


class _Clock:
    """The caller's `now`, moving on with the real time spent since: a claim's heartbeat and the claims
    of later batches carry a time comparable with the caller's (tests pass a fixed `now`)."""

    def __init__(self, now: datetime):
        self.now, self.started = now, time.monotonic()

    def __call__(self) -> datetime:
        return self.now + timedelta(seconds=time.monotonic() - self.started)


def reminder_send(*, reminder_id: int, now: datetime | None = None) -> DeliveryResult | None:
    """Send one reminder now, together with whatever else is due for the same person on the same channel.
    Returns None when the reminder is not claimable (sent, cancelled, or another worker has it)."""
    now = now or timezone.now()
    token = uuid.uuid4()
    if _claim(Reminder.objects.filter(id=reminder_id), now=now, token=token) != 1:
        log.info("reminder not claimed id=%s (already sent, cancelled, not due, or claimed elsewhere)", reminder_id)
        return None
    first = Reminder.objects.values("recipient_id", "channel").get(id=reminder_id)
    _claim(Reminder.objects.filter(recipient_id=first["recipient_id"], channel=first["channel"]), now=now, token=token)
    return _deliver_claimed(token=token, now=now, clock=_Clock(now))


def _heartbeat(token: uuid.UUID, at: datetime) -> None:
    """Keep our claim alive while we work through it: the rows still waiting are not taken over by
    another worker, and if we die the timeout counts from our last sign of life, not from the claim."""
    Reminder.objects.filter(claim_token=token, state=ReminderState.SENDING).update(claimed_at=at)


def _deliver_claimed(*, token: uuid.UUID, now: datetime, clock: _Clock) -> DeliveryResult:
    result = DeliveryResult()
    claimed = list(
        Reminder.objects.filter(claim_token=token, state=ReminderState.SENDING)
        .select_related("recipient", "step__template", "step__stage", "step__journey__patient")
        .order_by("recipient_id", "channel", "kind", "due_at", "id")
    )
    result.claimed = len(claimed)
    for reminder in claimed:
        log.info(
            "reminder claimed id=%s kind=%s channel=%s recipient=%s attempt=%d",
            reminder.public_id,
            reminder.kind,
            reminder.channel,
            reminder.recipient_id,
            reminder.attempts,
        )
    # Re-checked after the claim: a nurse may have recorded the step a moment ago.
    # An overdue or escalation reminder also needs the step still late by the one rule (never blocked).
    stale = [
        r
        for r in claimed
        if r.step_id
        and (
            r.step.status != StepStatus.PENDING
            or r.step.journey.status != JourneyStatus.ACTIVE
            or r.step.due_on != r.for_day
            or (r.kind in LATE_KINDS and not r.step.is_overdue(now))
        )
    ]
    if stale:
        result.cancelled = Reminder.objects.filter(id__in=[r.id for r in stale], claim_token=token).update(
            state=ReminderState.CANCELLED,
            cancelled_at=now,
            claim_token=None,
            cancel_reason="The step was resolved or rescheduled before the reminder went out.",
        )
    groups: dict[tuple[int, str], list[Reminder]] = defaultdict(list)
    for reminder in claimed:
        if reminder not in stale:
            groups[(reminder.recipient_id, reminder.channel)].append(reminder)
    in_order = sorted(groups.items(), key=lambda item: CHANNEL_ORDER.index(item[0][1]))
    for number, ((_, channel), reminders) in enumerate(in_order):
        if number:
            _heartbeat(token, clock())
        try:
            delivered = _DELIVERERS[channel](reminders, token=token, now=now)
        except Exception as error:  # noqa: BLE001 - one broken group must not stop the others; recorded below
            log.warning(
                "reminder delivery failed channel=%s ids=%s error=%s",
                channel,
                [str(r.public_id) for r in reminders],
                type(error).__name__,
            )
            retrying, failed = _record_failure(reminders, token=token, now=now, error=error)
            result.retrying += retrying
            result.failed += failed
            continue
        result.sent += delivered
        result.messages += 1 if delivered else 0
    return result


def _record_failure(reminders: list[Reminder], *, token: uuid.UUID, now: datetime, error: Exception) -> tuple[int, int]:
    message = f"{type(error).__name__}: {error}"[:2000]
    attempts = reminders[0].attempts
    ids = [r.id for r in reminders]
    retry_at = retry_policy().next_attempt(attempts=attempts, now=now)
    if retry_at is None:
        failed = Reminder.objects.filter(id__in=ids, claim_token=token).update(
            state=ReminderState.FAILED, claim_token=None, last_error=message
        )
        ReminderEvent.objects.bulk_create(
            [
                ReminderEvent(
                    reminder_id=i, action=ReminderEvent.Action.GAVE_UP, at=now, reason=message, detail={"attempts": attempts}
                )
                for i in ids
            ]
        )
        gave_up("reminder", [r.public_id for r in reminders], attempts=attempts, error=type(error).__name__)
        return 0, failed
    retrying = Reminder.objects.filter(id__in=ids, claim_token=token).update(
        state=ReminderState.PENDING, claim_token=None, send_after=retry_at, last_error=message
    )
    for r in reminders:
        log.info("reminder retry scheduled id=%s attempt=%d retry_at=%s", r.public_id, attempts, retry_at.isoformat())
    return retrying, 0


def _mark_sent(ids: list[int], *, token: uuid.UUID, now: datetime) -> int:
    count = Reminder.objects.filter(id__in=ids, claim_token=token, state=ReminderState.SENDING).update(
        state=ReminderState.SENT, sent_at=now, claim_token=None, last_error=""
    )
    return count


# --- Channels -------------------------------------------------------------------------------------


def _deliver_in_app(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    # The notification and the "sent" mark commit together: in the app a reminder appears exactly once.
    with transaction.atomic():
        ours = set(
            Reminder.objects.select_for_update()
            .filter(id__in=[r.id for r in reminders], claim_token=token, state=ReminderState.SENDING)
            .values_list("id", flat=True)
        )
        reminders = [r for r in reminders if r.id in ours]
        if not reminders:
            return 0
        title, body, items, kind = compose(reminders)
        Notification.objects.create(
            recipient_id=reminders[0].recipient_id,
            kind=kind,
            title=title,
            body=body,
            items=items,
            link=items[0]["link"] if len(items) == 1 else "",
            created_at=now,
        )
        sent = _mark_sent([r.id for r in reminders], token=token, now=now)
    for r in reminders:
        log.info("reminder sent id=%s kind=%s channel=in_app recipient=%s", r.public_id, r.kind, r.recipient_id)
    return sent


def delivery_key(reminders: list[Reminder]) -> uuid.UUID:
    """The same for the same reminders however often they are tried (a new claim gets a new token)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "carclinic-reminders:" + ",".join(sorted(str(r.public_id) for r in reminders)))


def _deliver_email(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    # At least once: if the worker dies between the SMTP hand-off and the mark below, the claim times out
    # and this one message goes again. Marking first would risk losing it, which is worse for a step.
    # The retry carries the same Message-ID, by which mail servers and clients drop a repeat.
    title, body, _, _ = compose(reminders)
    recipient = reminders[0].recipient
    if not recipient.email:
        raise DeliveryError("The recipient has no e-mail address.")
    message_id = f"<{delivery_key(reminders)}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"
    EmailMessage(subject=title, body=body, to=[recipient.email], headers={"Message-ID": message_id}).send(fail_silently=False)
    sent = _mark_sent([r.id for r in reminders], token=token, now=now)
    for r in reminders:
        log.info("reminder sent id=%s kind=%s channel=email recipient=%s", r.public_id, r.kind, r.recipient_id)
    return sent


def _deliver_webhook(reminders: list[Reminder], *, token: uuid.UUID, now: datetime) -> int:
    if not settings.REMINDER_WEBHOOK_URL:
        raise DeliveryError("REMINDER_WEBHOOK_URL is not set.")
    title, _, items, kind = compose(reminders)
    payload = json.dumps(
        {
            "title": title,
            "kind": kind,
            "recipient": reminders[0].recipient_id,
            "items": items,
            "reminders": [str(r.public_id) for r in reminders],
        }
    ).encode()
    request = urllib.request.Request(
        settings.REMINDER_WEBHOOK_URL,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": str(delivery_key(reminders))},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the URL is the operator's setting
        if response.status >= 300:
            raise DeliveryError(f"Webhook answered {response.status}.")
    return _mark_sent([r.id for r in reminders], token=token, now=now)


_DELIVERERS = {Channel.IN_APP: _deliver_in_app, Channel.EMAIL: _deliver_email, Channel.WEBHOOK: _deliver_webhook}
