"""The eligibility labs through `POST /api/v1/steps/{id}/complete/` (issue 13): a criterion not met is 400 with the
message on its field and nothing written, as on the page."""

from journeys.models import Step, StepStatus


def test_the_api_refuses_a_cd3_count_below_the_protocols_minimum(journey, make_api_client):
    step = journey.steps.get(template__code="eligibility-labs")
    _, http = make_api_client("integration")
    response = http.post(
        f"/api/v1/steps/{step.public_id}/complete/",
        {"record": {"cd3_count": 20, "pregnancy_test": "not_applicable", "infection_screen": "clear"}},
        format="json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["field_errors"]) == ["record.cd3_count"]
    assert "eligibility criterion is at least 100 /µL" in response.json()["field_errors"]["record.cd3_count"][0]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


def test_an_api_key_cannot_go_on_with_a_criterion_not_met(journey, make_api_client):
    step = journey.steps.get(template__code="eligibility-labs")
    _, http = make_api_client("integration")
    response = http.post(
        f"/api/v1/steps/{step.public_id}/complete/",
        {
            "record": {
                "cd3_count": 20,
                "pregnancy_test": "not_applicable",
                "infection_screen": "clear",
                "eligibility_override_reason": "Trust me",
            }
        },
        format="json",
        HTTP_IF_MATCH=f'"{step.public_id}.{step.version}"',
    )
    assert response.status_code == 403, response.content
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING
