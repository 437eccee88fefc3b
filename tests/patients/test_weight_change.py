"""Issue 13: a weight typed in pounds as kilograms (154 for a 70 kg patient) is refused until the person
recording it confirms the weight changed, on the page as in the service; the message shows both weights."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import InvalidInput
from patients.models import Measurement
from patients.services import measurement_record
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def weigh(nurse, patient, on, weight, **kwargs):
    return measurement_record(
        actor=nurse, patient_id=patient.id, measured_on=on, height_cm=Decimal("170"), weight_kg=Decimal(weight), **kwargs
    )


def test_154_after_70_is_refused_with_both_weights_and_then_recorded_once_confirmed(nurse):
    patient = PatientFactory()
    today = timezone.localdate()
    weigh(nurse, patient, today - timedelta(days=3), "70")
    with pytest.raises(InvalidInput) as error:
        weigh(nurse, patient, today, "154")
    message = error.value.field_errors["weight_kg"][0]
    assert message.startswith(
        f"154 kg is +120 % from the previous weight, 70.0 kg on {today - timedelta(days=3):%d %b %Y} (3 days earlier)."
    )
    assert "154 lb is 69.9 kg" in message
    assert "weight_change_confirmed" in error.value.field_errors
    assert Measurement.objects.filter(patient=patient).count() == 1
    confirmed = weigh(nurse, patient, today, "154", weight_change_confirmed=True)
    assert confirmed.weight_kg == Decimal("154")
    assert confirmed.history.latest().history_change_reason == "Weight change confirmed by the person recording it"


def test_a_small_change_a_first_weight_and_an_old_previous_weight_need_no_confirmation(nurse):
    patient = PatientFactory()
    today = timezone.localdate()
    weigh(nurse, patient, today - timedelta(days=100), "70")  # the first weight: nothing to compare with
    weigh(nurse, patient, today - timedelta(days=60), "90")  # 40 days later: left to the body
    weigh(nurse, patient, today, "95")  # +5.6 %
    assert Measurement.objects.filter(patient=patient).count() == 3


def test_the_threshold_is_an_argument(nurse):
    patient = PatientFactory()
    weigh(nurse, patient, date(2026, 1, 1), "70")
    weigh(nurse, patient, date(2026, 1, 2), "80", weight_change_confirm_percent=Decimal("20"))
    with pytest.raises(InvalidInput):
        weigh(nurse, patient, date(2026, 1, 3), "90", weight_change_confirm_percent=Decimal("5"))


def test_the_clinics_thresholds_are_settings(nurse, settings):
    # Product data, from the environment: a clinic that weighs daily on the ward may ask at 5 % within 7 days.
    settings.WEIGHT_CHANGE_CONFIRM_PERCENT, settings.WEIGHT_CHANGE_WITHIN_DAYS = "5", 7
    patient = PatientFactory()
    weigh(nurse, patient, date(2026, 1, 1), "70")
    with pytest.raises(InvalidInput):
        weigh(nurse, patient, date(2026, 1, 2), "74")  # +5.7 %
    weigh(nurse, patient, date(2026, 1, 9), "74")  # 8 days after: outside the window


def test_the_page_asks_yes_the_weight_changed_and_keeps_what_was_typed(client, nurse):
    patient = PatientFactory()
    today = timezone.localdate()
    weigh(nurse, patient, today - timedelta(days=1), "70")
    client.force_login(nurse)
    url = reverse("measurement_new", args=[patient.public_id])
    typed = {"measured_on": today.isoformat(), "height_cm": "170", "weight_kg": "154"}
    refused = client.post(url, typed)
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "154 kg is +120 % from the previous weight, 70.0 kg" in page and "154 lb is 69.9 kg" in page
    assert "Yes, the weight changed" in page and 'value="154"' in page
    assert Measurement.objects.filter(patient=patient).count() == 1
    assert client.post(url, {**typed, "weight_change_confirmed": "on"}).status_code == 302
    assert Measurement.objects.filter(patient=patient).latest("id").weight_kg == Decimal("154")
