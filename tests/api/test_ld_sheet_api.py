"""The lymphodepletion sheet through `POST /api/v1/steps/{id}/complete/` (issue 13): the same checks as the
page, 400 with per-field messages and nothing written; a two-person step is refused to an API key."""

from journeys.models import Step, StepStatus
from tests.journeys.test_ld_sheet import ld_journey, review, step_of  # noqa: F401 (ld_journey: a fixture)


def test_an_api_key_cannot_record_a_two_person_step(ld_journey, physician, make_api_client):
    journey = ld_journey()
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    _, http = make_api_client("integration")
    response = http.post(
        f"/api/v1/steps/{step.public_id}/complete/",
        {"record": {"fludarabine_mg": "45.5"}},
        format="json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )
    assert response.status_code == 403, response.content
    assert "an API key cannot record it" in response.json()["detail"]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


def test_the_api_refuses_a_dose_off_the_prescription_with_per_field_messages(ld_journey, physician, make_api_client):
    """The same check through the API: 400, the message on record.fludarabine_mg, nothing written (the values
    are judged before the two-person rule refuses the key)."""
    journey = ld_journey()
    review(journey, physician)
    step = step_of(journey, "ld-day-5")
    _, http = make_api_client("integration")
    response = http.post(
        f"/api/v1/steps/{step.public_id}/complete/",
        {"record": {"fludarabine_mg": "91"}},
        format="json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["field_errors"]) == ["record.fludarabine_mg"]
    assert "±5 %" in response.json()["field_errors"]["record.fludarabine_mg"][0]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
