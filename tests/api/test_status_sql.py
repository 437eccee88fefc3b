"""The status read (journeys/status.py) has two implementations: one hand-written statement on PostgreSQL
(what the API runs in production) and the ORM (SQLite under `make run`). Both run here on the same data and must give the same
answer, in every state a journey can be in and for clients with and without a scope."""

import functools
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.serializers import PatientStatusSerializer
from apiclients.selectors import patients_visible_to
from apiclients.services import api_client_create
from journeys import status as journey_status
from journeys.services import journey_hold, journey_start, journey_withdraw, step_complete
from patients.models import Patient
from tests.factories import PatientFactory


def both(patients, public_id, now):
    """(SQL answer, ORM answer), each as the API would serialize it, or None for 'not found'."""
    today = timezone.localdate(now)
    answers = []
    for read in (journey_status._patient_status_sql, journey_status._patient_status_orm):
        status = read(patients=patients, public_id=public_id, now=now, today=today)
        answers.append(None if status is None else PatientStatusSerializer.from_status(status))
    return answers


def assert_same(patients, public_id, now):
    sql, orm = both(patients, public_id, now)
    assert sql == orm
    return sql


@pytest.fixture
def lead(make_user):
    return make_user("coordinator", "physician", "nurse")


@pytest.fixture
def clinic(lead, protocol):
    """Patients in the states that shape a status: on track, late, on hold, withdrawn, restarted, no journey."""
    today = timezone.localdate()
    patients = {}

    def start(name, days_to_collection):
        patient = PatientFactory()
        journey = journey_start(
            actor=lead,
            patient_id=patient.pk,
            protocol_id=protocol.pk,
            leukapheresis_date=today + timedelta(days=days_to_collection),
        )
        patients[name] = patient
        return journey

    on_track = start("on_track", 14)
    step_complete(actor=lead, step_id=on_track.steps.get(template__code="eligibility-labs").pk)  # done early
    late = start("late", 0)  # collecting today: the eligibility labs are already late
    late.steps.filter(template__code="eligibility-labs").update(overdue_since=timezone.now())  # as the scan marks it
    held = start("on_hold", 0)
    journey_hold(actor=lead, journey_id=held.pk, reason="infection")
    withdrawn = start("withdrawn", 0)
    journey_withdraw(actor=lead, journey_id=withdrawn.pk, reason="patient's wish")
    restarted = start("restarted", 0)
    journey_withdraw(actor=lead, journey_id=restarted.pk, reason="new protocol")
    journey_start(
        actor=lead, patient_id=restarted.patient_id, protocol_id=protocol.pk, leukapheresis_date=today + timedelta(days=7)
    )
    patients["no_journey"] = PatientFactory()
    return patients


@pytest.mark.parametrize("days_later", [0, 1, 14, 40, 400])
def test_sql_and_orm_give_the_same_status(clinic, days_later):
    now = timezone.now() + timedelta(days=days_later)
    everyone = Patient.objects.all()
    for name, patient in clinic.items():
        body = assert_same(everyone, patient.public_id, now)
        assert body["patient"] == str(patient.public_id), name
    # the shapes the comparison covers, so it cannot pass on empty answers alone
    late = assert_same(everyone, clinic["late"].public_id, now)
    assert late["overdue_steps"] and late["next_step"] is not None
    held = assert_same(everyone, clinic["on_hold"].public_id, now)
    assert held["journey_status"] == "on_hold" and held["overdue_steps"] == [] and held["next_step"] is not None
    withdrawn = assert_same(everyone, clinic["withdrawn"].public_id, now)
    assert withdrawn["journey_status"] == "withdrawn" and withdrawn["next_step"] is None
    assert assert_same(everyone, clinic["restarted"].public_id, now)["journey_status"] == "active"
    assert assert_same(everyone, clinic["no_journey"].public_id, now)["journey"] is None


def test_sql_and_orm_respect_a_clients_scope_alike(clinic):
    client, _ = api_client_create(name="payer")
    client.sees_all_patients = False
    client.save()
    client.patients.add(clinic["late"], clinic["no_journey"])
    scope = patients_visible_to(client=client)
    now = timezone.now()
    for name, patient in clinic.items():
        sql, orm = both(scope, patient.public_id, now)
        assert sql == orm
        assert (sql is not None) == (name in ("late", "no_journey")), name
    assert both(scope, PatientFactory.build().public_id, now) == [None, None]  # no such patient


def test_the_endpoint_runs_the_statement_once(viewer_api, clinic, django_assert_num_queries):
    url = f"/api/v1/patients/{clinic['late'].public_id}/status/"
    viewer_api.get(url)
    with django_assert_num_queries(2) as captured:  # the key (no shared cache here), then the status
        body = viewer_api.get(url).json()
    assert captured.captured_queries[-1]["sql"].startswith("EXECUTE carclinic_status_")  # prepared by the first
    assert body["overdue_steps"] and body["next_step"] is not None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # it closes the connection
def test_the_statement_is_prepared_once_per_connection(clinic, django_assert_num_queries):
    """PREPARE on a connection's first status call only; a new connection prepares it again."""
    patient = clinic["late"]
    connection.close()  # a fresh connection, as after a restart or CONN_MAX_AGE
    read = functools.partial(journey_status.patient_status_by_id, patients=Patient.objects.all(), public_id=patient.public_id)
    with django_assert_num_queries(2) as first:
        assert read()["overdue_steps"]
    assert [query["sql"].split()[0] for query in first.captured_queries] == ["PREPARE", "EXECUTE"]
    assert "LATERAL" in first.captured_queries[0]["sql"]
    with django_assert_num_queries(1) as again:
        assert read()["overdue_steps"]
    assert again.captured_queries[0]["sql"].startswith("EXECUTE carclinic_status_")


@pytest.mark.parametrize("days_later", [0, 14, 400])
def test_the_built_body_is_the_declared_serializers_body(clinic, days_later):
    """`from_status` builds the body by hand for speed; byte for byte it is what the serializers declare."""
    from rest_framework.renderers import JSONRenderer

    now = timezone.now() + timedelta(days=days_later)
    render = JSONRenderer().render
    for patient in clinic.values():
        reads = [journey_status._patient_status_orm]
        if connection.vendor == "postgresql":
            reads.append(journey_status._patient_status_sql)
        for read in reads:
            status = read(patients=Patient.objects.all(), public_id=patient.public_id, now=now, today=timezone.localdate(now))
            built, declared = PatientStatusSerializer.from_status(status), PatientStatusSerializer.from_status_declared(status)
            assert built == declared
            assert render(built) == render(declared)


# serialized_rollback: the flush after a transactional test would otherwise take the shipped protocol
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_connection_the_server_dropped_is_replaced_once(clinic):
    """The statement skips Django's per-request health check; a dead connection is replaced instead."""
    patient = clinic["late"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    from django.db import connections

    # Another connection ends this one's server process, as a PostgreSQL restart would.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    status = journey_status.patient_status_by_id(patients=Patient.objects.all(), public_id=patient.public_id)
    assert status["patient"].public_id == patient.public_id and status["overdue_steps"]


def test_without_prepared_statements_the_answer_is_the_same(clinic, settings):
    """STATUS_PREPARED_STATEMENTS = False (a transaction-mode pooler in front of PostgreSQL): plain cursor."""
    now = timezone.now() + timedelta(days=14)
    prepared = {name: both(Patient.objects.all(), patient.public_id, now)[0] for name, patient in clinic.items()}
    settings.STATUS_PREPARED_STATEMENTS = False
    for name, patient in clinic.items():
        assert assert_same(Patient.objects.all(), patient.public_id, now) == prepared[name]
