"""Two people at the same moment, on the real PostgreSQL, with real threads and their own connections."""

import threading
from datetime import date

import pytest
from django.db import connections

from journeys.errors import JourneyAlreadyOpen, StepAlreadyCompleted
from journeys.models import EventKind, Journey, JourneyEvent, Step, StepStatus
from journeys.services import journey_start, step_complete
from tests.factories import PatientFactory

THREADS = 8


def run_together(work, count: int):
    """Run `work(i)` in `count` threads released at the same instant; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = ("ok", work(i))
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            results[i] = ("error", error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


# serialized_rollback: the flush after a transactional test would otherwise take the shipped protocol
# and role groups (data migrations) away from every test that runs after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_eight_nurses_record_the_same_step_at_once_and_exactly_one_wins(make_user, protocol):
    coordinator = make_user("coordinator")
    nurses = [make_user("nurse", first_name=f"Nurse{i}", last_name="Ward") for i in range(THREADS)]
    journey = journey_start(
        actor=coordinator, patient_id=PatientFactory().id, protocol_id=protocol.id, leukapheresis_date=date.today()
    )
    step = Step.objects.get(journey=journey, template__code="eligibility-labs")

    results = run_together(lambda i: step_complete(actor=nurses[i], step_id=step.id, notes=f"by {i}"), THREADS)

    winners = [i for i, (outcome, _) in enumerate(results) if outcome == "ok"]
    assert len(winners) == 1, results
    winner = nurses[winners[0]]
    losers = [value for outcome, value in results if outcome == "error"]
    assert len(losers) == THREADS - 1
    assert all(isinstance(error, StepAlreadyCompleted) for error in losers), losers
    assert all(error.by == str(winner) and str(winner) in error.message for error in losers)

    step.refresh_from_db()
    assert (step.status, step.completed_by_id, step.notes, step.version) == (StepStatus.DONE, winner.id, f"by {winners[0]}", 2)
    assert JourneyEvent.objects.filter(step=step, kind=EventKind.STEP_DONE).count() == 1
    changes = step.history.filter(history_type="~")
    assert changes.count() == 1 and changes.get().history_user_id == winner.id


# serialized_rollback: the flush after a transactional test would otherwise take the shipped protocol
# and role groups (data migrations) away from every test that runs after it.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_coordinators_start_a_journey_for_the_same_patient_at_once(make_user, protocol):
    coordinators = [make_user("coordinator") for _ in range(2)]
    patient = PatientFactory()

    results = run_together(
        lambda i: journey_start(
            actor=coordinators[i], patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=date.today()
        ),
        2,
    )

    outcomes = sorted(outcome for outcome, _ in results)
    assert outcomes == ["error", "ok"], results
    assert isinstance(next(value for outcome, value in results if outcome == "error"), JourneyAlreadyOpen)
    assert Journey.objects.filter(patient=patient).count() == 1
    journey = Journey.objects.get(patient=patient)
    assert Step.objects.filter(journey=journey).count() == protocol.step_templates.count()
