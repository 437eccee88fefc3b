"""Outbound webhooks against a real HTTP receiver on the loopback: created once, signed, retried, given up."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from apiclients.models import DeliveryStatus, WebhookDelivery
from apiclients.services import api_client_create
from apiclients.tasks import webhook_deliver_task, webhooks_scan_task
from apiclients.webhooks import MAX_ATTEMPTS, SETTLE, webhook_deliver, webhook_endpoint_create, webhooks_scan
from journeys.services import journey_start, step_complete
from tests.factories import PatientFactory, lymphodepletion_earlier, minimal_record, second_signer


@pytest.fixture
def receiver():
    """A tiny HTTP server that records what it is sent and answers `receiver.status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            server.received.append((dict(self.headers), body))
            self.send_response(server.status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.received, server.status = [], 200
    server.url = f"http://127.0.0.1:{server.server_port}/hooks/carclinic"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(db, receiver):
    api_client_create(name="registry", role="viewer", sees_all_patients=True)
    endpoint, secret = webhook_endpoint_create(client_name="registry", url=receiver.url, events=["stage.changed", "step.overdue"])
    endpoint.test_secret = secret
    return endpoint


def _later(minutes=5):
    return timezone.now() + timedelta(minutes=minutes)


def test_a_stage_change_is_delivered_once_signed_with_ids_only(endpoint, receiver, journey, nurse, physician, coordinator):
    for code, actor in [
        ("eligibility-labs", nurse),
        ("eligibility-signoff", physician),
        ("leukapheresis", nurse),
        ("shipment", coordinator),
    ]:
        step = journey.steps.get(template__code=code)
        step_complete(
            actor=actor, step_id=step.pk, record=minimal_record(step), **second_signer(step), **lymphodepletion_earlier(step)
        )
    due = webhooks_scan(now=_later())
    assert webhooks_scan(now=_later()) == due  # a second scan creates nothing new
    stage_events = WebhookDelivery.objects.filter(event="stage.changed")
    # stage 1 completed and stage 2 started (and stage 1 started, if the journey began after the endpoint)
    assert {(d.payload["stage"]["number"], d.payload["stage"]["status"]) for d in stage_events} >= {
        (1, "completed"),
        (2, "in_progress"),
    }
    for delivery_id in due:
        assert webhook_deliver(delivery_id=delivery_id, now=_later()) == "delivered"
    assert len(receiver.received) == len(due)
    headers, body = receiver.received[0]
    timestamp, digest = (part.split("=", 1)[1] for part in headers["X-Carclinic-Signature"].split(","))
    expected = hmac.new(endpoint.test_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(digest, expected)
    message = json.loads(body)
    assert message["patient"] == str(journey.patient.public_id)
    assert journey.patient.mrn not in body.decode() and journey.patient.family_name not in body.decode()
    assert webhook_deliver(delivery_id=due[0], now=_later()) == "not due"  # delivered stays delivered


def test_an_overdue_step_is_told_once(endpoint, receiver, journey):
    later = timezone.now() + timedelta(days=20)
    due = webhooks_scan(now=later)
    overdue = WebhookDelivery.objects.filter(event="step.overdue")
    assert {d.payload["step"]["code"] for d in overdue} >= {"eligibility-labs"}
    count = overdue.count()
    webhooks_scan(now=later + timedelta(minutes=1))
    assert WebhookDelivery.objects.filter(event="step.overdue").count() == count
    assert set(overdue.values_list("id", flat=True)) <= set(due)


def test_a_step_blocked_behind_its_stage_is_not_told_as_overdue(endpoint, receiver, journey):
    # Sixty days on nothing was done: stage 1's steps are late; the later stages have not started, so
    # their steps (the lymphodepletion days among them) are blocked, never overdue.
    webhooks_scan(now=timezone.now() + timedelta(days=60))
    told = {d.payload["step"]["code"] for d in WebhookDelivery.objects.filter(event="step.overdue")}
    assert told == set(journey.steps.filter(stage__number=1).values_list("template__code", flat=True))


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(endpoint, receiver, coordinator, protocol):
    receiver.status = 503
    journey_start(
        actor=coordinator,
        patient_id=PatientFactory().pk,
        protocol_id=protocol.pk,
        leukapheresis_date=timezone.localdate() + timedelta(days=30),
    )  # stage 1 starts: one message
    now = _later(SETTLE.total_seconds() / 60 + 1)
    (delivery_id,) = webhooks_scan(now=now)
    assert webhook_deliver(delivery_id=delivery_id, now=now) == "retry"
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.attempts == 1 and delivery.last_error == "HTTP 503"
    assert delivery.next_attempt_at == now + timedelta(minutes=1)
    assert webhook_deliver(delivery_id=delivery_id, now=now) == "not due"  # waits for its backoff
    for _ in range(MAX_ATTEMPTS - 1):
        now = WebhookDelivery.objects.get(pk=delivery_id).next_attempt_at
        result = webhook_deliver(delivery_id=delivery_id, now=now)
    assert result == "failed"
    assert WebhookDelivery.objects.get(pk=delivery_id).status == DeliveryStatus.FAILED
    assert len(receiver.received) == MAX_ATTEMPTS


def test_a_client_limited_to_some_patients_hears_only_of_those(db, receiver, coordinator, protocol):
    client, _ = api_client_create(name="payer")
    client.sees_all_patients = False
    client.save()
    mine = PatientFactory()
    client.patients.add(mine)
    webhook_endpoint_create(client_name="payer", url=receiver.url, events=["stage.changed"])
    for patient in (mine, PatientFactory()):
        journey_start(
            actor=coordinator,
            patient_id=patient.pk,
            protocol_id=protocol.pk,
            leukapheresis_date=timezone.localdate() + timedelta(days=30),
        )
    webhooks_scan(now=_later())
    assert {d.payload["patient"] for d in WebhookDelivery.objects.all()} == {str(mine.public_id)}


def test_tasks_and_command(db, receiver, capsys, coordinator, protocol):
    api_client_create(name="ehr", sees_all_patients=True)
    call_command("add_webhook", "ehr", receiver.url, "--events", "stage.changed")
    assert len(capsys.readouterr().out.strip()) == 64
    journey_start(
        actor=coordinator,
        patient_id=PatientFactory().pk,
        protocol_id=protocol.pk,
        leukapheresis_date=timezone.localdate() + timedelta(days=30),
    )
    assert webhooks_scan_task.run() == 1  # enqueues; the task body is what a worker runs
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver_task.run(delivery.pk) == "delivered"
    assert len(receiver.received) == 1
