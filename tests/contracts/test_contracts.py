"""Outcome contracts through the app: the selector's query count, the services' refresh (idempotent, history,
the coordinators' bell), the finance page per role, its audited CSV, the patient page's line and the payer API."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from apiclients.services import api_client_create
from contracts import selectors, services, tasks
from contracts.models import ContractEnrolment, ContractExport, ContractStatus, Payer
from journeys.models import JourneyEvent, JourneyStatus
from notifications.models import Notification
from tests.contracts.builders import BERLIN, enrol_all, infused_journeys, make_contract, record_visit, remission_protocol

DAY0 = date(2026, 1, 10)


def at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=BERLIN)


@pytest.fixture
def proto(db):
    return remission_protocol()


def _enrolments():
    return selectors.enrolments_with_context().order_by("id")


@pytest.mark.parametrize("count", [5, 50])
def test_standings_cost_the_same_queries_for_5_and_50(proto, count, django_assert_num_queries):
    journeys = infused_journeys(protocol=proto, count=count, day0=DAY0)
    for journey in journeys[::2]:
        record_visit(journey, "remission-month-3", "doris")
    enrol_all(make_contract(), journeys)
    with django_assert_num_queries(3):  # the enrolments, the remission templates, the remission visits
        standings = selectors.enrolment_standings(_enrolments(), now=at(DAY0 + timedelta(days=120)))
    statuses = {s.status for s in standings.values()}
    assert len(standings) == count and statuses == {ContractStatus.ON_TRACK, ContractStatus.AT_RISK}


def test_statuses_from_the_steps(proto):
    on_track, at_risk, met, failed, overdue = infused_journeys(protocol=proto, count=5, day0=DAY0)
    record_visit(on_track, "remission-month-3", "doris")
    record_visit(at_risk, "remission-month-3", "lldas", "4")
    record_visit(met, "remission-month-3", "doris")
    record_visit(met, "remission-month-24", "doris")
    record_visit(failed, "remission-month-3", "doris")
    record_visit(failed, "remission-month-24", "active", "9", on=DAY0 + timedelta(days=729))
    enrol_all(make_contract(), [on_track, at_risk, met, failed, overdue])
    today = at(date(2028, 1, 10))  # the 24-month milestone
    standings = selectors.enrolment_standings(_enrolments(), now=today)
    by_journey = {e.journey_id: standings[e.id] for e in _enrolments()}
    assert by_journey[met.id].status == ContractStatus.MET
    assert by_journey[failed.id].status == ContractStatus.FAILED
    assert by_journey[at_risk.id].status == ContractStatus.AT_RISK
    # month 3 never recorded: overdue by journeys' rule (window 7 days + 48 h grace)
    assert by_journey[overdue.id].status == ContractStatus.AT_RISK
    assert by_journey[overdue.id].since == date(2026, 4, 20)  # window closes 17 April; + its grace, by journeys.clock
    # month 24 still in its window at the milestone: awaiting it
    assert by_journey[on_track.id].status == ContractStatus.ON_TRACK
    assert by_journey[met.id].milestone_on == date(2028, 1, 10)


def test_refresh_twice_changes_nothing_the_second_time(proto, coordinator):
    journeys = infused_journeys(protocol=proto, count=3, day0=DAY0)
    record_visit(journeys[0], "remission-month-3", "doris")
    record_visit(journeys[1], "remission-month-3", "active", "12")
    enrol_all(make_contract(), journeys)
    now = at(DAY0 + timedelta(days=120))
    first = services.enrolments_refresh(now=now)
    history, told = ContractEnrolment.history.count(), Notification.objects.count()
    rows = list(
        ContractEnrolment.objects.order_by("id").values("status", "status_since", "milestone_on", "version", "refreshed_at")
    )
    second = services.enrolments_refresh(now=now + timedelta(hours=1))
    assert (first.changed, second.changed, second.told) == (3, 0, 0)
    assert ContractEnrolment.history.count() == history and Notification.objects.count() == told
    assert (
        list(ContractEnrolment.objects.order_by("id").values("status", "status_since", "milestone_on", "version", "refreshed_at"))
        == rows
    )


def test_the_task_run_twice_changes_nothing_the_second_time(proto, coordinator, time_machine):
    time_machine.move_to(at(DAY0 + timedelta(days=120)), tick=False)
    journeys = infused_journeys(protocol=proto, count=2, day0=DAY0)
    enrol_all(make_contract(), journeys)
    assert tasks.refresh_all()["changed"] == 2
    assert tasks.refresh_all() == {"looked_at": 2, "changed": 0, "told": 0}


def test_a_change_to_at_risk_tells_the_coordinators_once(proto, coordinator, nurse):
    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    record_visit(journey, "remission-month-3", "doris")
    enrolment = enrol_all(make_contract(), [journey])[0]
    services.enrolments_refresh(now=at(DAY0 + timedelta(days=100)))
    assert not Notification.objects.exists()
    record_visit(journey, "remission-month-24", "active", "10", on=DAY0 + timedelta(days=300))
    result = services.enrolments_refresh(now=at(DAY0 + timedelta(days=301)))
    enrolment.refresh_from_db()
    assert enrolment.status == ContractStatus.FAILED and result.told == 1
    notice = Notification.objects.get()
    assert notice.recipient == coordinator and "failed" in notice.title and journey.patient.family_name not in notice.title
    last = enrolment.history.first()
    assert (
        last.status == ContractStatus.FAILED
        and last.history_user is None
        and last.history_change_reason == "Status on_track → failed"
    )


def test_enrolment_by_service_computes_at_once_and_refuses_a_second_contract(proto, coordinator, nurse):
    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    record_visit(journey, "remission-month-3", "doris")
    payer = services.payer_create(actor=coordinator, name="AOK", contact="contracts@aok.example")
    contract = services.contract_create(
        actor=coordinator,
        payer_id=payer.id,
        name="AOK SLE",
        product_name="CD19 CAR-T",
        price=Decimal("300000"),
        currency="eur",
        remission_definition="doris",
        milestone_months=24,
        rebate_kind="percent",
        rebate_value=Decimal("40"),
        starts_on=date(2025, 1, 1),
    )
    assert contract.currency == "EUR" and contract.amount_at_stake == Decimal("120000.00")
    enrolment = services.enrolment_create(
        actor=coordinator, contract_id=contract.id, journey_id=journey.id, now=at(DAY0 + timedelta(days=100))
    )
    assert enrolment.status == ContractStatus.ON_TRACK and enrolment.milestone_on == date(2028, 1, 10)
    assert enrolment.history.first().history_user == coordinator
    from carclinic.errors import InvalidInput, NotPermitted

    with pytest.raises(InvalidInput):
        services.enrolment_create(actor=coordinator, contract_id=contract.id, journey_id=journey.id)
    with pytest.raises(NotPermitted):
        services.payer_create(actor=nurse, name="TK")
    with pytest.raises(InvalidInput) as bad:
        services.contract_create(
            actor=coordinator,
            payer_id=payer.id,
            name="Bad",
            product_name="X",
            price=Decimal("1"),
            currency="euro",
            remission_definition="doris",
            milestone_months=24,
            rebate_kind="percent",
            rebate_value=Decimal("120"),
            starts_on=date(2025, 1, 1),
        )
    assert "currency" in bad.value.field_errors or "non_field_errors" in bad.value.field_errors


def test_incremental_refresh_follows_journey_events(proto):
    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    record_visit(journey, "remission-month-3", "doris")
    enrolment = enrol_all(make_contract(), [journey])[0]
    now = at(DAY0 + timedelta(days=100))
    assert services.enrolments_refresh_changed(now=now).looked_at == 0  # no event since the start
    JourneyEvent.objects.create(journey=journey, kind="step_done", at=now)
    assert services.enrolments_refresh_changed(now=now).changed == 1
    assert services.enrolments_refresh_changed(now=now).looked_at == 0  # the cursor moved on
    enrolment.refresh_from_db()
    assert enrolment.status == ContractStatus.ON_TRACK


def test_withdrawn_after_infusion_fails(proto, physician):
    from journeys.services import journey_withdraw

    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    enrolment = enrol_all(make_contract(), [journey])[0]
    journey_withdraw(actor=physician, journey_id=journey.id, reason="Moved abroad")
    services.enrolments_refresh(enrolment_ids=[enrolment.id])
    enrolment.refresh_from_db()
    assert enrolment.journey.status == JourneyStatus.WITHDRAWN and enrolment.status == ContractStatus.FAILED


# --- Pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, status", [("coordinator", 200), ("physician", 200), ("admin", 200), ("nurse", 403), ("viewer", 403)]
)
def test_finance_page_per_role(client, make_user, who, status, db):
    client.force_login(make_user(who))
    assert client.get(reverse("contracts:finance")).status_code == status
    assert client.get(reverse("contracts:contract_new")).status_code == (200 if who in ("coordinator", "admin") else 403)


@pytest.mark.parametrize("count", [5, 50])
def test_finance_page_queries_do_not_grow(client, coordinator, proto, count, django_assert_max_num_queries):
    journeys = infused_journeys(protocol=proto, count=count, day0=DAY0)
    contract = make_contract()
    enrol_all(contract, journeys)
    services.enrolments_refresh(now=at(DAY0 + timedelta(days=120)))
    ContractEnrolment.objects.filter(id__in=ContractEnrolment.objects.order_by("id").values("id")[:2]).update(status="failed")
    client.force_login(coordinator)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("contracts:finance"))
    assert response.status_code == 200
    assert b"300000.00 EUR" in response.content
    money = {c.id: m for c, m in selectors.finance_overview()["contracts"]}[contract.id]
    assert money.refunds_owed == Decimal("300000.00")  # two failed × 50 % of 300,000


def test_csv_export_is_audited_and_refused_to_a_nurse(client, coordinator, nurse, proto):
    journeys = infused_journeys(protocol=proto, count=3, day0=DAY0)
    enrol_all(make_contract(), journeys)
    client.force_login(coordinator)
    response = client.post(reverse("contracts:export"), {"status": ""})
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response.status_code == 200 and len(lines) == 4 and lines[0].startswith("Enrolment,Payer,Contract")
    audit = ContractExport.objects.get()
    assert audit.exported_by == coordinator and audit.row_count == 3
    client.force_login(nurse)
    assert client.post(reverse("contracts:export")).status_code == 403
    assert ContractExport.objects.count() == 1


def test_the_patient_page_loads_the_contract_line(client, nurse, proto):
    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    enrol_all(make_contract(name="TK lupus"), [journey])
    services.enrolments_refresh(now=at(DAY0 + timedelta(days=20)))
    client.force_login(nurse)
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert reverse("contracts:journey_status", args=[journey.public_id]) in page
    line = client.get(reverse("contracts:journey_status", args=[journey.public_id])).content.decode()
    assert "On track" in line and "TK lupus" in line and "10 Jan 2028" in line
    assert reverse("contracts:finance") not in line  # a nurse sees the status, not the money


def test_the_enrolment_form_enrols(client, coordinator, proto):
    journey = infused_journeys(protocol=proto, count=1, day0=DAY0)[0]
    contract = make_contract()
    client.force_login(coordinator)
    response = client.post(reverse("contracts:enrolment_new"), {"contract": contract.id, "journey": journey.id})
    assert response.status_code == 302 and ContractEnrolment.objects.get().journey == journey
    bad = client.post(reverse("contracts:contract_new"), {"payer": contract.payer_id, "name": "X"})
    assert bad.status_code == 400


# --- The payer API -------------------------------------------------------------------------------


@pytest.fixture
def payer_api(db):
    from rest_framework.test import APIClient

    client, key = api_client_create(name="aok-payer", role="payer")
    payer = Payer.objects.create(name="AOK", api_user=client.user)
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return payer, http


def test_a_payer_reads_only_its_own_enrolments_with_the_minimum_fields(payer_api, proto):
    payer, http = payer_api
    mine_journey, other_journey = infused_journeys(protocol=proto, count=2, day0=DAY0)
    mine = enrol_all(make_contract(payer=payer), [mine_journey])[0]
    other = enrol_all(make_contract(name="Other"), [other_journey])[0]
    services.enrolments_refresh(now=at(DAY0 + timedelta(days=20)))
    listed = http.get("/api/v1/contracts/enrolments/")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == [str(mine.public_id)]
    row = listed.json()[0]
    assert set(row) == {"id", "contract", "contract_name", "product", "infusion_date", "milestone_date", "status", "status_since"}
    assert row["status"] == "on_track" and row["milestone_date"] == "2028-01-10" and row["infusion_date"] == "2026-01-10"
    assert mine_journey.patient.mrn not in listed.content.decode()
    assert http.get(f"/api/v1/contracts/enrolments/{mine.public_id}/").status_code == 200
    assert http.get(f"/api/v1/contracts/enrolments/{other.public_id}/").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/api/v1/patients/", "/api/v1/steps/", "/api/v1/manufacturing/orders/", "/api/v1/patients/search/?q=a"],
)
def test_every_other_endpoint_refuses_a_payer_key(payer_api, path):
    _, http = payer_api
    assert http.get(path).status_code == 403


def test_clinic_clients_without_contracts_are_refused(db):
    from rest_framework.test import APIClient

    _, key = api_client_create(name="ehr", role="integration", sees_all_patients=True)
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert http.get("/api/v1/contracts/enrolments/").status_code == 403


def test_a_payer_client_speaking_for_no_payer_sees_nothing(db):
    from rest_framework.test import APIClient

    _, key = api_client_create(name="loose-payer", role="payer")
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = http.get("/api/v1/contracts/enrolments/")
    assert response.status_code == 200 and response.json() == []
