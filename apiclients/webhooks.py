"""Outbound webhooks: tell a client's URL when a stage changes or a step becomes overdue.

State-based, like the rest of the clinic's alerting: a periodic scan turns what happened (journey events
after the endpoint's cursor; steps past their overdue time) into delivery rows, each unique per endpoint,
and hands the due ones to Celery. A delivery is claimed with a conditional UPDATE before it is sent, so
two workers never send it twice at once; a failed one is retried with backoff by a later scan.

Signature: `X-Carclinic-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`.
The receiver recomputes it and refuses old timestamps, which stops replays.
"""

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apiclients.models import (
    ApiClient,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from apiclients.selectors import patients_visible_to
from carclinic.errors import InvalidInput
from carclinic.outbox import RetryPolicy, claim, gave_up
from journeys.models import EventKind, JourneyEvent, Step

MAX_ATTEMPTS = 10
# 1, 2, 4 … minutes, at most six hours: a receiver down for a night still gets everything.
RETRY = RetryPolicy(max_attempts=MAX_ATTEMPTS, first_delay=timedelta(minutes=1), longest_delay=timedelta(hours=6))
TIMEOUT_SECONDS = 5
LEASE = timedelta(minutes=2)  # a claimed delivery whose worker died is sent again after this
SETTLE = timedelta(minutes=2)
STAGE_EVENT_KINDS = (EventKind.STAGE_STARTED, EventKind.STAGE_COMPLETED)


def backoff(attempts: int) -> timedelta:
    return RETRY.delay(attempts)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@transaction.atomic
def webhook_endpoint_create(*, client_name: str, url: str, events: list[str]) -> tuple[WebhookEndpoint, str]:
    """Register a URL for a client; returns (endpoint, secret). Show the secret once."""
    unknown = set(events) - set(WebhookEvent.values)
    if not events or unknown:
        raise InvalidInput("Unknown events.", field_errors={"events": [f"Choose from: {', '.join(WebhookEvent.values)}."]})
    if not url.startswith(("https://", "http://")):
        raise InvalidInput("Bad URL.", field_errors={"url": ["An http(s) URL."]})
    client = ApiClient.objects.get(name=client_name)
    secret = secrets.token_hex(32)
    # Start from now: a new endpoint is told what happens from here on, not the clinic's whole history.
    last = JourneyEvent.objects.aggregate(last=Max("id"))["last"] or 0
    endpoint = WebhookEndpoint.objects.create(
        client=client, url=url, secret=secret, events=sorted(set(events)), last_event_id=last
    )
    return endpoint, secret


def _stage_payload(event: JourneyEvent) -> dict:
    return {
        "type": WebhookEvent.STAGE_CHANGED,
        "occurred_at": event.at,
        "patient": event.journey.patient.public_id,
        "journey": event.journey.public_id,
        "stage": {"number": event.stage_number, "status": event.to_state},
    }


def _overdue_payload(step: Step) -> dict:
    return {
        "type": WebhookEvent.STEP_OVERDUE,
        "occurred_at": step.overdue_after,
        "patient": step.journey.patient.public_id,
        "journey": step.journey.public_id,
        "step": {"id": step.public_id, "code": step.template.code, "due_on": step.due_on},
    }


def _delivery(endpoint, event: str, key: str, payload: dict, now: datetime) -> WebhookDelivery:
    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    return WebhookDelivery(endpoint=endpoint, event=event, dedupe_key=key, payload=body, next_attempt_at=now)


def webhooks_scan(*, now: datetime | None = None) -> list[int]:
    """Create the deliveries that are owed and return the ids of those due now. Safe to run twice."""
    now = now or timezone.now()
    for endpoint_id in WebhookEndpoint.objects.filter(is_active=True, client__revoked_at=None).values_list("id", flat=True):
        with transaction.atomic():
            endpoint = (
                WebhookEndpoint.objects.select_for_update(skip_locked=True)
                .select_related("client")
                .filter(pk=endpoint_id)
                .first()
            )
            if endpoint is None:
                continue  # another scan holds it
            patients = patients_visible_to(client=endpoint.client)
            deliveries = []
            if WebhookEvent.STAGE_CHANGED in endpoint.events:
                events = list(
                    JourneyEvent.objects.filter(
                        id__gt=endpoint.last_event_id, kind__in=STAGE_EVENT_KINDS, journey__patient__in=patients
                    )
                    .select_related("journey__patient")
                    .order_by("id")[:1000]
                )
                deliveries += [
                    _delivery(endpoint, WebhookEvent.STAGE_CHANGED, f"event:{e.pk}", _stage_payload(e), now) for e in events
                ]
                # The cursor moves only past events older than SETTLE: an id is taken at insert, so a
                # transaction still open may commit a lower id after a higher one was seen. Events in the
                # settling window are read again next time; the unique key makes that harmless.
                settled = JourneyEvent.objects.filter(id__gt=endpoint.last_event_id, at__lte=now - SETTLE).aggregate(m=Max("id"))[
                    "m"
                ]
                if settled and len(events) == 1000:
                    settled = min(settled, events[-1].pk)
                endpoint.last_event_id = max(endpoint.last_event_id, settled or 0)
            if WebhookEvent.STEP_OVERDUE in endpoint.events:
                steps = (
                    Step.objects.overdue(now)
                    .filter(overdue_after__gte=endpoint.created_at, journey__patient__in=patients)
                    .select_related("journey__patient", "template")
                )
                # The overdue time is part of the key: a step rescheduled and late again is news again.
                deliveries += [
                    _delivery(
                        endpoint,
                        WebhookEvent.STEP_OVERDUE,
                        f"overdue:{s.public_id}:{s.overdue_after.isoformat()}",
                        _overdue_payload(s),
                        now,
                    )
                    for s in steps
                ]
            WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
            endpoint.save(update_fields=["last_event_id"])
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now).values_list("id", flat=True)
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is a misconfigured endpoint, not a place to re-send clinical events


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_deliver(*, delivery_id: int, now: datetime | None = None) -> str:
    """Send one delivery if it is due and not claimed by another worker; returns what happened."""
    now = now or timezone.now()
    # The claim is a lease: the next attempt time moves past the send, so nobody else finds it due.
    claimed = claim(
        WebhookDelivery.objects.filter(pk=delivery_id),
        claimable=Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now),
        next_attempt_at=now + LEASE,
    )
    if claimed != 1:
        return "not due"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    body = json.dumps({"id": str(delivery.public_id), **delivery.payload}, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        delivery.endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "carclinic-webhooks/1",
            "X-Carclinic-Event": delivery.event,
            "X-Carclinic-Delivery": str(delivery.public_id),
            "X-Carclinic-Signature": sign(delivery.endpoint.secret, timestamp, body),
        },
    )
    error = ""
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as failure:
        status, error = failure.code, f"HTTP {failure.code}"
    except (urllib.error.URLError, OSError) as failure:
        status, error = 0, type(getattr(failure, "reason", failure)).__name__
    attempts = delivery.attempts + 1
    if 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DELIVERED, attempts=attempts, delivered_at=timezone.now(), last_error=""
        )
        return "delivered"
    retry_at = RETRY.next_attempt(attempts=attempts, now=now)
    if retry_at is None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED, attempts=attempts, last_error=error[:200]
        )
        gave_up("webhook delivery", [delivery.public_id], attempts=attempts, error=error[:200])
        return "failed"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=attempts, last_error=error[:200], next_attempt_at=retry_at)
    return "retry"
