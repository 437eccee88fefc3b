from journeys.models import StageStatus, StepStatus
from journeys.services import step_complete


def test_journey_start_creates_five_stages_with_stage_one_running(journey):
    stages = list(journey.stages.order_by("number").values_list("number", "status"))
    assert stages[0] == (1, StageStatus.IN_PROGRESS)
    assert [status for _, status in stages[1:]] == [StageStatus.PENDING] * 4
    assert journey.steps.filter(status=StepStatus.PENDING).count() == journey.protocol.step_templates.count()


def test_nurse_records_a_step(journey, nurse):
    step = journey.steps.get(template__code="eligibility-labs")
    step = step_complete(actor=nurse, step_id=step.id, notes="drawn")
    assert step.status == StepStatus.DONE
    assert step.completed_by == nurse
    assert step.history.first().history_user == nurse
