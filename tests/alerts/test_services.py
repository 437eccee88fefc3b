"""Clinical alerts through their services: raised once per finding, to the right people, sent exactly
once in effect, escalated once when nobody acknowledges, acknowledged only with a signature."""

import logging
import threading
import urllib.error
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from alerts import delivery, services
from alerts.models import AlertChannel, AlertDelivery, AlertKind, AlertLevel, ClinicalAlert, DeliveryState
from carclinic.errors import InvalidInput, NotPermitted
from tests.factories import PatientFactory

PASSWORD = "correct-horse-battery"  # UserFactory's


@pytest.fixture
def ward(make_user):
    physician = make_user("physician", first_name="Theo", last_name="Treating")
    other = make_user("physician", first_name="Olga", last_name="Other")
    coordinator = make_user("coordinator", first_name="Cora", last_name="Coord")
    patient = PatientFactory(physician=physician, coordinator=coordinator)
    return {"physician": physician, "other": other, "coordinator": coordinator, "patient": patient}


def raise_crs(patient, *, key="crs:step-1", minutes=30):
    return services.alert_raise(
        patient_id=patient.id,
        kind=AlertKind.CRS,
        key=key,
        summary="CRS grade 2 (computed) on Day +1",
        escalate_after_minutes=minutes,
        detail={"findings": ["Tmax 39.1 °C", "hypotension"]},
    )


def test_an_alert_goes_to_the_treating_physician_and_the_coordinator_at_once(ward, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued:
        alert, raised_now = raise_crs(ward["patient"])
    assert raised_now and alert.is_open
    rows = set(AlertDelivery.objects.values_list("recipient__username", "channel", "level", "state"))
    assert rows == {
        (ward["physician"].username, AlertChannel.IN_APP, AlertLevel.RAISED, DeliveryState.SENT),
        (ward["physician"].username, AlertChannel.EMAIL, AlertLevel.RAISED, DeliveryState.PENDING),
        (ward["coordinator"].username, AlertChannel.IN_APP, AlertLevel.RAISED, DeliveryState.SENT),
        (ward["coordinator"].username, AlertChannel.EMAIL, AlertLevel.RAISED, DeliveryState.PENDING),
    }
    assert len(enqueued) == 1  # the delivery task, on commit: at once, not at the next scan


def test_without_a_treating_physician_every_physician_is_told(ward):
    patient = PatientFactory(coordinator=ward["coordinator"])
    raise_crs(patient)
    told = set(AlertDelivery.objects.filter(channel=AlertChannel.IN_APP).values_list("recipient__username", flat=True))
    assert told == {ward["physician"].username, ward["other"].username, ward["coordinator"].username}


def test_the_same_finding_raised_twice_is_one_alert(ward, django_capture_on_commit_callbacks):
    first, _ = raise_crs(ward["patient"])
    with django_capture_on_commit_callbacks() as enqueued:
        second, raised_now = raise_crs(ward["patient"])
    assert second == first and not raised_now
    assert ClinicalAlert.objects.count() == 1 and AlertDelivery.objects.count() == 4
    assert enqueued == []


# serialized_rollback, as every transactional test here: the flush after it must leave what the next one loads
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_recordings_at_the_same_moment_raise_one_alert(make_user):
    patient = PatientFactory(physician=make_user("physician"))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def record():
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                results.append(raise_crs(patient)[1])
        except Exception as error:  # pragma: no cover - shown by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert sorted(results) == [False, True]
    assert ClinicalAlert.objects.count() == 1
    assert AlertDelivery.objects.filter(channel=AlertChannel.IN_APP).count() == 1


def test_email_is_sent_once_and_names_no_patient(ward):
    alert, _ = raise_crs(ward["patient"])
    first = delivery.alert_deliveries_send(alert_id=alert.id)
    again = delivery.alert_deliveries_send(alert_id=alert.id)
    assert (first.sent, again.sent) == (2, 0)
    assert len(mail.outbox) == 2
    message = mail.outbox[0]
    patient = ward["patient"]
    text = message.subject + message.body
    assert str(patient.public_id) in message.subject and "CRS grade 2" in message.subject
    for phi in (patient.family_name, patient.given_name, patient.mrn, patient.date_of_birth.isoformat()):
        assert phi not in text


def test_a_send_whose_worker_died_goes_again_with_the_same_message_id(ward, time_machine):
    alert, _ = raise_crs(ward["patient"])
    email = AlertDelivery.objects.filter(channel=AlertChannel.EMAIL, recipient=ward["physician"]).get()
    # A worker claimed it and died before marking it sent.
    AlertDelivery.objects.filter(pk=email.pk).update(state=DeliveryState.SENDING, claimed_at=timezone.now())
    assert delivery.alert_deliveries_send(alert_id=alert.id).sent == 1  # only the coordinator's
    time_machine.move_to(timezone.now() + timedelta(minutes=3))
    assert delivery.alert_deliveries_send(alert_id=alert.id).sent == 1
    email.refresh_from_db()
    assert email.state == DeliveryState.SENT
    ids = {m.extra_headers["Message-ID"] for m in mail.outbox if m.to == [ward["physician"].email]}
    assert ids == {f"<{delivery.message_key(email)}@carclinic.local>"}


def test_a_failing_pager_is_retried_then_given_up_visibly(ward, settings, monkeypatch, time_machine, caplog):
    settings.ALERT_MAX_ATTEMPTS = 2
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/pager"

    def refused(*args, **kwargs):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(delivery.urllib.request, "urlopen", refused)
    alert, _ = raise_crs(ward["patient"])
    first = delivery.alert_deliveries_send(alert_id=alert.id)
    assert (first.sent, first.retrying) == (2, 1)
    pager = AlertDelivery.objects.get(channel=AlertChannel.WEBHOOK)
    assert pager.state == DeliveryState.PENDING and pager.send_after > timezone.now()
    assert delivery.alert_deliveries_send(alert_id=alert.id).retrying == 0  # not before its backoff
    time_machine.move_to(pager.send_after + timedelta(seconds=1))
    with caplog.at_level(logging.WARNING, logger="carclinic.outbox"):
        assert delivery.alert_deliveries_send(alert_id=alert.id).failed == 1
    pager.refresh_from_db()
    assert pager.state == DeliveryState.FAILED and "connection refused" in pager.last_error
    # Given up loudly, through the outboxes' one helper: an operator sees it at ERROR with the row's id only.
    assert [(r.levelname, r.getMessage().split(" error=")[0]) for r in caplog.records if r.name == "carclinic.outbox"] == [
        ("ERROR", f"alert delivery gave up id={pager.pk} attempts=2")
    ]


def test_unacknowledged_it_escalates_to_every_physician_once(ward, time_machine):
    alert, _ = raise_crs(ward["patient"], minutes=30)
    assert services.alerts_escalate_due() == 0
    time_machine.move_to(timezone.now() + timedelta(minutes=31))
    assert services.alerts_escalate_due() == 1
    assert services.alerts_escalate_due() == 0  # a second scan finds nothing to do
    escalated = set(
        AlertDelivery.objects.filter(level=AlertLevel.ESCALATED, channel=AlertChannel.IN_APP).values_list(
            "recipient__username", flat=True
        )
    )
    assert escalated == {ward["physician"].username, ward["other"].username}
    alert.refresh_from_db()
    assert alert.escalated_at is not None


def test_an_acknowledged_alert_does_not_escalate(ward, time_machine):
    alert, _ = raise_crs(ward["patient"], minutes=30)
    services.alert_acknowledge(actor=ward["physician"], alert_id=alert.id, password=PASSWORD, note="Tocilizumab given")
    time_machine.move_to(timezone.now() + timedelta(hours=2))
    assert services.alerts_escalate_due() == 0


def test_acknowledging_needs_the_signers_password_and_writes_history(ward):
    alert, _ = raise_crs(ward["patient"])
    with pytest.raises(InvalidInput) as refused:
        services.alert_acknowledge(actor=ward["physician"], alert_id=alert.id, password="wrong")
    assert "password" in refused.value.field_errors
    alert.refresh_from_db()
    assert alert.is_open
    services.alert_acknowledge(actor=ward["physician"], alert_id=alert.id, password=PASSWORD, note="Seen, on my way")
    alert.refresh_from_db()
    assert (alert.acknowledged_by, alert.acknowledgement_note, alert.version) == (ward["physician"], "Seen, on my way", 2)
    latest = alert.history.first()
    assert latest.history_user == ward["physician"] and latest.history_change_reason == "Acknowledged"
    with pytest.raises(InvalidInput, match="acknowledged this alert already"):
        services.alert_acknowledge(actor=ward["other"], alert_id=alert.id, password=PASSWORD)


def test_a_finding_about_the_body_is_acknowledged_by_a_physician_only(ward, make_user):
    alert, _ = raise_crs(ward["patient"])
    for who in (ward["coordinator"], make_user("nurse"), make_user("viewer")):
        with pytest.raises(NotPermitted):
            services.alert_acknowledge(actor=who, alert_id=alert.id, password=PASSWORD)
    excursion, _ = services.alert_raise(
        patient_id=ward["patient"].id,
        kind=AlertKind.CUSTODY_EXCURSION,
        key="exc:1",
        summary="Temperature excursion: +12 °C on arrival",
        escalate_after_minutes=30,
    )
    services.alert_acknowledge(actor=ward["coordinator"], alert_id=excursion.id, password=PASSWORD)
    with pytest.raises(NotPermitted):
        services.alert_acknowledge(actor=make_user("nurse"), alert_id=excursion.id, password=PASSWORD)
