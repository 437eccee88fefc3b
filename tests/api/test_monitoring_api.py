"""Issue 13 through the API: the bedside sheet's checks answer 400 with per-field messages and write nothing;
the components give the computed grade, and a CRS 2 raises its alert in the same request."""

from alerts.models import ClinicalAlert
from journeys.models import JourneyEvent, StepStatus
from tests.factories import PatientFactory
from tests.journeys.test_monitoring_alerts import CALM, HYPOTENSION_LOW_FLOW, make_monitoring_step


def _complete(http, step, record):
    return http.post(
        f"/api/v1/steps/{step.public_id}/complete/",
        {"record": record},
        format="json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )


def test_a_typed_grade_and_a_missing_component_answer_400_per_field_and_write_nothing(make_api_client, coordinator):
    step = make_monitoring_step(coordinator, PatientFactory())
    _, http = make_api_client("integration")
    # issue 13: "CRS 3 with Tmax 37.0 ... accepted"
    record = {**CALM, "temperature_max": "37.0", "crs_grade": "3"}
    del record["oxygen"]
    response = _complete(http, step, record)
    assert response.status_code == 400, response.content
    errors = response.json()["field_errors"]
    assert errors["record.crs_grade"] == ["Computed, not typed: leave it out and it is calculated."]
    assert errors["record.oxygen"] == ["Required for this step."]
    step.refresh_from_db()
    assert (step.status, step.record) == (StepStatus.PENDING, {})
    assert not JourneyEvent.objects.filter(step=step).exists() and not ClinicalAlert.objects.exists()


def test_hypotension_with_low_flow_oxygen_through_the_api_is_crs_2_with_its_alert(make_api_client, coordinator):
    step = make_monitoring_step(coordinator, PatientFactory())
    _, http = make_api_client("integration")
    response = _complete(http, step, HYPOTENSION_LOW_FLOW)
    assert response.status_code == 200, response.content
    assert response.json()["record"]["crs_grade"] == "2"
    assert ClinicalAlert.objects.get().key == f"crs:{step.public_id}:2"
