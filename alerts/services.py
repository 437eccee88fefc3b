"""Every write to a clinical alert: raise (once per finding), acknowledge (signed), escalate (once).

Raising runs inside the caller's transaction (the step record that found a CRS grade 2), so the alert
exists exactly when the record does; its messages are handed to a worker when that transaction commits.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.models import AlertChannel, AlertDelivery, AlertKind, AlertLevel, ClinicalAlert, DeliveryState
from carclinic.errors import InvalidInput, StaleVersion
from patients.models import Patient
from staff.roles import Role, authorize_alert_acknowledgement

# A finding about the patient's body is acknowledged by a physician; custody is the coordinator's too.
PHYSICIAN_ONLY_KINDS = frozenset(set(AlertKind.values) - {AlertKind.CUSTODY_EXCURSION})
NOTE_MAX_LENGTH = 2000


def _active_holders(role: str) -> list:
    return list(get_user_model().objects.filter(is_active=True, groups__name=role).distinct())


def _first_recipients(patient: Patient) -> list:
    """The treating physician and the coordinator; every physician when no active treating physician is named."""
    people = []
    if patient.physician_id and patient.physician.is_active and Role.PHYSICIAN in patient.physician.roles:
        people.append(patient.physician)
    else:
        people.extend(_active_holders(Role.PHYSICIAN))
    if patient.coordinator_id and patient.coordinator.is_active and patient.coordinator not in people:
        people.append(patient.coordinator)
    return people


def _deliveries(alert: ClinicalAlert, people, level: str, now: datetime) -> list[AlertDelivery]:
    """In-app (shown at once: the banner is the notice), e-mail to those with an address, and the pager."""
    rows = []
    for person in people:
        rows.append(
            AlertDelivery(
                alert=alert,
                recipient=person,
                channel=AlertChannel.IN_APP,
                level=level,
                state=DeliveryState.SENT,
                sent_at=now,
                send_after=now,
                created_at=now,
            )
        )
        if person.email:
            rows.append(
                AlertDelivery(
                    alert=alert, recipient=person, channel=AlertChannel.EMAIL, level=level, send_after=now, created_at=now
                )
            )
    if settings.ALERT_WEBHOOK_URL:
        rows.append(
            AlertDelivery(alert=alert, recipient=None, channel=AlertChannel.WEBHOOK, level=level, send_after=now, created_at=now)
        )
    # ignore_conflicts: an escalation racing another lands each (alert, person, channel, level) once.
    AlertDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return rows


def _enqueue_delivery(alert_id: int) -> None:
    from alerts import tasks  # tasks import this module; the enqueue is the only way back

    # robust: with the broker down the rows wait in the outbox and the periodic alerts scan sends them.
    transaction.on_commit(lambda: tasks.deliver_alert.delay(alert_id), robust=True)


def alert_raise(
    *,
    patient_id: int,
    kind: str,
    key: str,
    summary: str,
    escalate_after_minutes: int,
    detail: dict | None = None,
    journey_id: int | None = None,
    step_id: int | None = None,
    raised_by=None,
) -> tuple[ClinicalAlert, bool]:
    """Raise the alert for a finding unless it was raised already; returns (alert, raised_now).

    Call it inside the transaction that recorded the finding."""
    if kind not in AlertKind.values:
        raise ValueError(f"Unknown alert kind {kind!r}")
    now = timezone.now()
    try:
        # A savepoint: two recordings of the same finding at once meet on the unique key, and the loser
        # goes on with the winner's alert instead of failing its whole transaction.
        with transaction.atomic():
            alert = ClinicalAlert.objects.create(
                patient_id=patient_id,
                journey_id=journey_id,
                step_id=step_id,
                kind=kind,
                key=key,
                summary=summary[:200],
                detail=detail or {},
                raised_at=now,
                raised_by=raised_by,
                escalate_after=now + timedelta(minutes=escalate_after_minutes),
            )
    except IntegrityError:
        return ClinicalAlert.objects.get(key=key), False
    patient = Patient.objects.select_related("physician", "coordinator").get(pk=patient_id)
    _deliveries(alert, _first_recipients(patient), AlertLevel.RAISED, now)
    _enqueue_delivery(alert.id)
    return alert, True


@transaction.atomic
def alert_acknowledge(
    *, actor, alert_id: int, password: str, note: str = "", expected_version: int | None = None
) -> ClinicalAlert:
    """Acknowledge an open alert with an electronic signature (the password again); escalation stops."""
    alert = ClinicalAlert.objects.select_for_update().get(pk=alert_id)
    authorize_alert_acknowledgement(actor, physician_only=alert.kind in PHYSICIAN_ONLY_KINDS)
    if expected_version is not None and alert.version != expected_version:
        raise StaleVersion("alert", expected_version, alert.version)
    if alert.acknowledged_at is not None:
        raise InvalidInput(
            f"{alert.acknowledged_by} acknowledged this alert already, at "
            f"{timezone.localtime(alert.acknowledged_at):%d %b %Y %H:%M}.",
            field_errors={"__all__": ["Already acknowledged."]},
        )
    if not password or not actor.check_password(password):
        raise InvalidInput(
            "That is not your password. The alert was not acknowledged.",
            field_errors={"password": ["That is not your password. The alert was not acknowledged."]},
        )
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput("The note is too long.", field_errors={"note": [f"At most {NOTE_MAX_LENGTH} characters."]})
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = actor
    alert.acknowledgement_note = note
    alert.version += 1
    alert._history_user = actor
    alert._change_reason = "Acknowledged"
    alert.save()
    return alert


def alerts_escalate_due(*, now: datetime | None = None) -> int:
    """Send every open alert past its `escalate_after` to every physician, once; returns how many escalated."""
    now = now or timezone.now()
    escalated = 0
    due = list(
        ClinicalAlert.objects.filter(acknowledged_at=None, escalated_at=None, escalate_after__lte=now).values_list(
            "id", flat=True
        )[:200]
    )
    physicians = _active_holders(Role.PHYSICIAN) if due else []
    for alert_id in due:
        with transaction.atomic():
            # The claim: of two scans, one moves escalated_at from NULL; the other finds nothing to do.
            if not ClinicalAlert.objects.filter(pk=alert_id, acknowledged_at=None, escalated_at=None).update(escalated_at=now):
                continue
            alert = ClinicalAlert.objects.get(pk=alert_id)
            _deliveries(alert, physicians, AlertLevel.ESCALATED, now)
            _enqueue_delivery(alert.id)
            escalated += 1
    return escalated
