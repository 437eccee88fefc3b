"""After enrolment: a patient's details are edited (a stale form loses, with a message) and a height and
weight recorded at the bedside, the body surface area shown where doses are calculated."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from patients.models import Measurement, Patient


def _details(patient, **changes) -> dict:
    data = {
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex": patient.sex,
        "indication": patient.indication,
        "indication_other": "",
        "phone": patient.phone,
        "email": patient.email,
        "coordinator": patient.coordinator_id or "",
        "nurse": patient.nurse_id or "",
        "physician": patient.physician_id or "",
        "version": patient.version,
    }
    return {**data, **changes}


@pytest.mark.django_db
def test_a_coordinator_names_the_treating_physician_and_a_stale_form_loses(client, coordinator, physician, journey):
    patient = journey.patient
    client.force_login(coordinator)
    page = client.get(reverse("patient_edit", args=[patient.public_id])).content.decode()
    assert f'value="{patient.mrn}"' in page and 'name="version"' in page
    stale = _details(patient)
    saved = client.post(reverse("patient_edit", args=[patient.public_id]), _details(patient, physician=physician.pk))
    assert saved.status_code == 302
    patient.refresh_from_db()
    assert patient.physician == physician and patient.version == 2
    assert patient.history.latest().history_user == coordinator

    lost = client.post(reverse("patient_edit", args=[patient.public_id]), {**stale, "phone": "+49 9131 1"})
    assert lost.status_code == 409
    assert "changed" in lost.content.decode().lower() and 'value="+49 9131 1"' in lost.content.decode()
    assert Patient.objects.get(pk=patient.pk).phone == ""


@pytest.mark.django_db
def test_a_nurse_records_height_and_weight_and_the_patient_page_shows_the_bsa(client, nurse, journey):
    client.force_login(nurse)
    url = reverse("measurement_new", args=[journey.patient.public_id])
    future = client.post(
        url, {"measured_on": (timezone.localdate() + timedelta(days=1)).isoformat(), "height_cm": "168", "weight_kg": "61.5"}
    )
    assert future.status_code == 400 and "Cannot be in the future." in future.content.decode()
    assert 'value="61.5"' in future.content.decode()
    done = client.post(url, {"measured_on": timezone.localdate().isoformat(), "height_cm": "168", "weight_kg": "61.5"})
    assert done.status_code == 302
    assert Measurement.objects.get(patient=journey.patient).recorded_by == nurse
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert "168.0 cm · 61.5 kg" in page and "BSA 1.69 m²" in page  # √(168 × 61.5 / 3600)


@pytest.mark.django_db
def test_a_viewer_sees_no_edit_links(client, viewer, journey):
    client.force_login(viewer)
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert reverse("patient_edit", args=[journey.patient.public_id]) not in page
    assert reverse("measurement_new", args=[journey.patient.public_id]) not in page


@pytest.mark.django_db
def test_success_messages_stay_on_the_server_not_in_a_cookie(client, coordinator, journey):
    """Issue 12, finding 5: messages naming a patient travelled in the `messages` cookie."""
    patient = journey.patient
    client.force_login(coordinator)
    saved = client.post(reverse("patient_edit", args=[patient.public_id]), _details(patient, phone="+49 9131 2"))
    assert saved.status_code == 302
    assert "messages" not in saved.cookies
    assert "Details saved." in client.get(saved["Location"]).content.decode()
    assert "messages" not in client.cookies or not client.cookies["messages"].value
