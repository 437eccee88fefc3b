"""The demo clinic that `make run` loads: every stage populated, some steps late, each role able to sign in."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from journeys.models import Journey, JourneyStatus, Step, StepStatus
from journeys.selectors import patient_search, patients_per_stage
from patients.models import Patient


@pytest.mark.django_db
def test_the_demo_clinic_loads_once_with_every_stage_and_role(client):
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert Patient.objects.count() == 40
    assert all(patients_per_stage().values()), patients_per_stage()
    assert Journey.objects.filter(status=JourneyStatus.ON_HOLD).count() == 1
    late = Step.objects.filter(status=StepStatus.PENDING, overdue_after__lte=timezone.now(), journey__status=JourneyStatus.ACTIVE)
    assert late.exists()
    # The demo follows its own protocol's rules: every COI check passed before its infusion.
    infused = Step.objects.filter(template__code="infusion", status=StepStatus.DONE).values("journey_id")
    assert infused.exists()
    assert (
        not Step.objects.filter(journey_id__in=infused, template__code="coi-check")
        .exclude(status=StepStatus.DONE, record__coi_match=True)
        .exists()
    )
    found = [p.family_name for p in patient_search(text="muller")]
    assert found and set(found) == {"Müller"}

    call_command("load_demo", stdout=out)
    assert "Demo clinic already loaded." in out.getvalue() and Patient.objects.count() == 40
    for username in ("coordinator", "nurse", "physician", "viewer", "admin"):
        signed_in = client.post(reverse("login"), {"username": username, "password": "ward-demo-2026"})
        assert signed_in.status_code == 302 and client.session.get("_auth_user_id"), username
        client.logout()
