"""Issue 12, finding 6: hostile input answers 4xx in the usual error shape and writes nothing; never 500."""

import json
from base64 import b64encode
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from carclinic.errors import InvalidInput
from journeys.services import day0_reschedule, journey_start
from patients.services import measurement_record, patient_update
from tests.factories import PatientFactory


def _error_shape(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"status", "code", "detail", "field_errors"} and body["status"] == status
    return body


def _complete(http, step, raw: bytes):
    return http.generic(
        "POST",
        f"/api/v1/steps/{step.public_id}/complete/",
        raw,
        content_type="application/json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )


@pytest.fixture
def step(journey):
    return journey.steps.get(template__code="eligibility-labs")


def test_a_ten_megabyte_body_is_413(integration_api, step):
    raw = json.dumps({"notes": "x" * (10 * 1024 * 1024)}).encode()
    _error_shape(_complete(integration_api, step, raw), 413)
    step.refresh_from_db()
    assert step.status == "pending"


def test_json_nested_five_thousand_deep_is_400(integration_api, step):
    _error_shape(_complete(integration_api, step, b"[" * 5000 + b"]" * 5000), 400)
    _error_shape(_complete(integration_api, step, b'{"record": ' + b"[" * 100 + b"]" * 100 + b"}"), 400)
    step.refresh_from_db()
    assert step.status == "pending"


def test_a_lone_surrogate_in_a_text_value_is_400(integration_api, journey):
    step = journey.steps.get(template__code="eligibility-labs")
    _error_shape(_complete(integration_api, step, b'{"notes": "\\ud800"}'), 400)
    _error_shape(_complete(integration_api, step, b'{"record": {"\\ud800": 1}}'), 400)
    step.refresh_from_db()
    assert step.status == "pending" and not step.events.exists()


@pytest.mark.parametrize("page_size", ["²", "١٢", "0", "-1", "501", "1e3"])
def test_a_page_size_that_is_not_plain_digits_is_400(viewer_api, page_size):
    body = _error_shape(viewer_api.get("/api/v1/patients/", {"page_size": page_size}), 400)
    assert "page_size" in body["field_errors"]


def _cursor(**tokens) -> str:
    return b64encode(urlencode(tokens).encode()).decode()


@pytest.mark.parametrize(
    "url,cursor",
    [
        ("/api/v1/patients/", _cursor(p="not-a-uuid")),
        ("/api/v1/patients/", _cursor(p="\x00")),
        ("/api/v1/steps/", _cursor(p="9999-99-99")),
        ("/api/v1/steps/", _cursor(p="0000-01-01")),
        ("/api/v1/steps/", _cursor(p="x" * 3000, o="999999999999")),
        ("/api/v1/patients/", "\u00e9"),
    ],
)
def test_a_crafted_cursor_is_404(viewer_api, journey, url, cursor):
    _error_shape(viewer_api.get(url, {"cursor": cursor}), 404)


@pytest.mark.parametrize("day", [date(9999, 12, 31), date(1, 1, 1)])
def test_a_journey_is_not_started_or_rescheduled_at_the_ends_of_the_calendar(coordinator, protocol, journey, day):
    patient = PatientFactory()
    with pytest.raises(InvalidInput) as error:
        journey_start(actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=day)
    assert "leukapheresis_date" in error.value.field_errors
    with pytest.raises(InvalidInput):
        journey_start(
            actor=coordinator,
            patient_id=patient.id,
            protocol_id=protocol.id,
            leukapheresis_date=timezone.localdate(),
            day0_planned=day,
        )
    with pytest.raises(InvalidInput) as error:
        day0_reschedule(actor=coordinator, journey_id=journey.id, new_day0=day, reason="typo test")
    assert "new_day0" in error.value.field_errors
    assert not patient.journeys.exists()


@pytest.mark.django_db
def test_the_journey_start_page_says_so_by_the_field(client, coordinator, protocol):
    patient = PatientFactory()
    client.force_login(coordinator)
    response = client.post(
        f"/patients/{patient.public_id}/start/", {"protocol": protocol.id, "leukapheresis_date": "9999-12-31", "day0_planned": ""}
    )
    assert 400 <= response.status_code < 500
    assert "within 5 years of today" in response.content.decode()
    assert not patient.journeys.exists()


@pytest.mark.parametrize("born", [date(1899, 12, 31), timezone.localdate() + timedelta(days=1)])
def test_dates_of_birth_are_plausible(coordinator, patient, born):
    with pytest.raises(InvalidInput) as error:
        patient_update(actor=coordinator, patient_id=patient.id, expected_version=patient.version, date_of_birth=born)
    assert "date_of_birth" in error.value.field_errors


@pytest.mark.parametrize("measured", [date(1, 1, 1), date(1899, 12, 31), timezone.localdate() + timedelta(days=1)])
def test_measurement_dates_are_plausible(coordinator, patient, measured):
    from decimal import Decimal

    with pytest.raises(InvalidInput) as error:
        measurement_record(
            actor=coordinator, patient_id=patient.id, measured_on=measured, height_cm=Decimal("170"), weight_kg=Decimal("70")
        )
    assert "measured_on" in error.value.field_errors


@pytest.mark.parametrize("coordinator", ["\U00024901", "cøordinator", "a b"])
def test_a_coordinator_filter_outside_the_schemas_pattern_is_400(viewer_api, coordinator):
    # The schema's pattern reads \w as ASCII (ECMA-262); a CJK character was accepted with a 200 (schemathesis).
    response = viewer_api.get("/api/v1/patients/", {"coordinator": coordinator})
    body = _error_shape(response, 400)
    assert "coordinator" in body["field_errors"]
