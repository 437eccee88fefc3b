"""Sending an alert's messages: claim a row with a conditional UPDATE, send, mark it sent; a failure is
retried with backoff and given up visibly after `ALERT_MAX_ATTEMPTS`.

At least once, never twice on purpose: a worker that dies between the hand-off and the mark leaves a
claim that times out and is sent again, carrying the same Message-ID / Idempotency-Key, by which the
receiving side drops the repeat.
"""

import json
import logging
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Q
from django.utils import timezone

from alerts.models import AlertChannel, AlertDelivery, AlertLevel, DeliveryState
from carclinic import outbox

log = logging.getLogger("carclinic.alerts")
BATCH = 20


@dataclass
class SendResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def message_key(delivery: AlertDelivery) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"carclinic-alert-delivery:{delivery.alert.public_id}:{delivery.pk}")


def _subject(delivery: AlertDelivery) -> str:
    alert = delivery.alert
    prefix = "ESCALATED: " if delivery.level == AlertLevel.ESCALATED else ""
    # Ids only: an e-mail leaves the hospital's systems, so it carries no name, MRN or date of birth.
    return f"{prefix}Clinical alert: {alert.summary} (patient {alert.patient.public_id})"


def _link(delivery: AlertDelivery) -> str:
    return f"{settings.REMINDER_LINK_BASE}/alerts/{delivery.alert.public_id}/"


def _send_email(delivery: AlertDelivery) -> None:
    if not delivery.recipient.email:
        raise ValueError("The recipient has no e-mail address.")
    body = (
        f"{delivery.alert.get_kind_display()}: {delivery.alert.summary}\n\n"
        f"Open the alert and acknowledge it when you act on it:\n{_link(delivery)}\n"
    )
    EmailMessage(
        subject=_subject(delivery),
        body=body,
        to=[delivery.recipient.email],
        headers={"Message-ID": f"<{message_key(delivery)}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"},
    ).send(fail_silently=False)


def _send_webhook(delivery: AlertDelivery) -> None:
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        raise ValueError("ALERT_WEBHOOK_URL is not set.")
    alert = delivery.alert
    payload = json.dumps(
        {
            "alert": str(alert.public_id),
            "kind": alert.kind,
            "level": delivery.level,
            "summary": alert.summary,
            "patient": str(alert.patient.public_id),
            "link": _link(delivery),
        }
    ).encode()
    request = urllib.request.Request(
        url,
        data=payload,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": str(message_key(delivery))},
    )
    with urllib.request.urlopen(request, timeout=settings.ALERT_SEND_TIMEOUT_SECONDS) as response:  # noqa: S310 - operator's URL
        if response.status >= 300:
            raise ValueError(f"The pager answered {response.status}.")


SENDERS = {AlertChannel.EMAIL: _send_email, AlertChannel.WEBHOOK: _send_webhook}


def retry_policy() -> outbox.RetryPolicy:
    # Read when sending, not at import: the settings are the operator's (and the tests') to change. A pager
    # that is down is tried again within half an hour at the longest; an alert must not wait for hours.
    return outbox.RetryPolicy(
        max_attempts=settings.ALERT_MAX_ATTEMPTS,
        first_delay=timedelta(seconds=settings.ALERT_RETRY_BASE_SECONDS),
        longest_delay=timedelta(minutes=30),
    )


def alert_deliveries_send(*, alert_id: int | None = None, now: datetime | None = None) -> SendResult:
    """Send what is due (of one alert, or of all), a few rows at a time; safe to run twice at once."""
    now = now or timezone.now()
    # A claim whose worker died goes back to the outbox after the claim timeout.
    AlertDelivery.objects.filter(
        state=DeliveryState.SENDING, claimed_at__lte=now - timedelta(seconds=settings.ALERT_CLAIM_TIMEOUT_SECONDS)
    ).update(state=DeliveryState.PENDING, claim_token=None)
    due = AlertDelivery.objects.filter(state=DeliveryState.PENDING, send_after__lte=now)
    if alert_id is not None:
        due = due.filter(alert_id=alert_id)
    result, policy = SendResult(), retry_policy()
    for delivery_id in list(due.order_by("send_after", "id").values_list("id", flat=True)[:BATCH]):
        token = uuid.uuid4()
        if not outbox.claim(
            AlertDelivery.objects.filter(pk=delivery_id),
            claimable=Q(state=DeliveryState.PENDING),
            state=DeliveryState.SENDING,
            claim_token=token,
            claimed_at=now,
        ):
            continue  # another worker claimed it first
        delivery = AlertDelivery.objects.select_related("alert", "alert__patient", "recipient").get(pk=delivery_id)
        try:
            SENDERS[delivery.channel](delivery)
        except Exception as error:  # noqa: BLE001 - any failure to hand over is retried, then given up visibly
            attempts = delivery.attempts + 1
            retry_at = policy.next_attempt(attempts=attempts, now=now)
            failure = f"{type(error).__name__}: {error}"[:500]
            AlertDelivery.objects.filter(pk=delivery_id, claim_token=token).update(
                state=DeliveryState.PENDING if retry_at else DeliveryState.FAILED,
                attempts=attempts,
                claim_token=None,
                send_after=retry_at or now,
                last_error=failure,
            )
            if retry_at:
                log.warning("alert delivery failed id=%s channel=%s attempt=%s", delivery_id, delivery.channel, attempts)
                result.retrying += 1
            else:
                outbox.gave_up("alert delivery", [delivery_id], attempts=attempts, error=failure)
                result.failed += 1
            continue
        AlertDelivery.objects.filter(pk=delivery_id, claim_token=token).update(
            state=DeliveryState.SENT, sent_at=timezone.now(), attempts=delivery.attempts + 1, claim_token=None
        )
        log.info(
            "alert delivery sent id=%s alert=%s channel=%s level=%s",
            delivery_id,
            delivery.alert.public_id,
            delivery.channel,
            delivery.level,
        )
        result.sent += 1
    return result
