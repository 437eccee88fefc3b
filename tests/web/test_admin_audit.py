"""Issue 12, findings 3 and 4: the admin neither deletes audit nor edits clinical records behind the services."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.test import Client
from django.utils import timezone

from journeys.models import Journey, JourneyEvent, ProtocolTemplate, Step
from notifications.models import Channel, Reminder, ReminderEvent, ReminderKind
from patients.models import Consent, Measurement, Patient
from staff.models import User

AUDITED = [Patient, Measurement, Consent, Journey, Step, JourneyEvent, Reminder, User]


@pytest.fixture
def admin_client_(superuser):
    http = Client()
    http.force_login(superuser)
    return http


@pytest.fixture
def reminder(journey, coordinator):
    now = timezone.now()
    reminder = Reminder.objects.create(
        kind=ReminderKind.OVERDUE,
        step=journey.steps.first(),
        for_day=now.date(),
        recipient=coordinator,
        channel=Channel.EMAIL,
        due_at=now,
        send_after=now + timedelta(hours=1),
        created_at=now,
    )
    ReminderEvent.objects.create(reminder=reminder, action="snoozed", reason="Ward busy", actor=coordinator, at=now)
    return reminder


@pytest.mark.parametrize("model", AUDITED, ids=lambda m: m.__name__)
def test_nothing_that_carries_audit_can_be_deleted_in_the_admin(model, rf, superuser):
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = superuser
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_a_reminder_and_its_events_survive_the_admins_delete_page(admin_client_, reminder):
    url = f"/admin/notifications/reminder/{reminder.pk}/delete/"
    assert admin_client_.get(url).status_code == 403
    assert admin_client_.post(url, {"post": "yes"}).status_code == 403
    response = admin_client_.post(
        "/admin/notifications/reminder/", {"action": "delete_selected", "_selected_action": [reminder.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert Reminder.objects.filter(pk=reminder.pk).exists()
    assert ReminderEvent.objects.filter(reminder=reminder).count() == 1


def test_a_user_with_reminders_cannot_be_deleted(admin_client_, reminder, coordinator):
    assert admin_client_.post(f"/admin/staff/user/{coordinator.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ReminderEvent.objects.filter(reminder=reminder).exists()


def test_a_patient_is_read_only_in_the_admin(admin_client_, patient, viewer):
    """An admin edit bumped no version and accepted a viewer as coordinator (patients.services checks both)."""
    url = f"/admin/patients/patient/{patient.pk}/change/"
    assert admin_client_.get(url).status_code == 200  # still viewable
    response = admin_client_.post(
        url, {"mrn": patient.mrn, "family_name": "Changed", "given_name": patient.given_name, "coordinator": viewer.pk}
    )
    assert response.status_code == 403
    patient.refresh_from_db()
    assert patient.family_name != "Changed" and patient.coordinator_id != viewer.pk and patient.version == 1
    assert admin_client_.get("/admin/patients/patient/add/").status_code == 403


@pytest.mark.parametrize(
    "model", [Patient, Measurement, Consent, Journey, Step, JourneyEvent, Reminder], ids=lambda m: m.__name__
)
def test_clinical_models_are_read_only_in_the_admin(model, rf, superuser):
    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")
    request.user = superuser
    assert not model_admin.has_change_permission(request) and not model_admin.has_add_permission(request)
    assert model_admin.has_view_permission(request)


def test_history_cannot_be_reverted_from_the_admin(admin_client_, patient, coordinator, viewer):
    """simple_history's page of a past version saved any complete form POSTed to it (the revert setting only hides
    the button): a viewer became coordinator and physician, with no version bump."""
    history_id = patient.history.earliest().history_id
    url = f"/admin/patients/patient/{patient.pk}/history/{history_id}/"
    assert admin_client_.get(url).status_code == 200  # still readable
    complete_form = {
        "mrn": patient.mrn,
        "given_name": patient.given_name,
        "family_name": "Reverted",
        "date_of_birth": patient.date_of_birth.isoformat(),
        "sex": patient.sex,
        "indication": patient.indication,
        "coordinator": viewer.pk,
        "physician": viewer.pk,
        "_save": "Save",
    }
    assert admin_client_.post(url, complete_form).status_code == 403
    patient.refresh_from_db()
    assert patient.family_name != "Reverted" and patient.coordinator_id != viewer.pk and patient.version == 1


@pytest.mark.parametrize("model", [Patient, Journey, Step, ProtocolTemplate], ids=lambda m: m.__name__)
def test_no_past_version_page_saves_a_form(admin_client_, journey, protocol, model):
    """A step marked done by hand there skipped the signature, the event and the version."""
    record = {Patient: journey.patient, Journey: journey, Step: journey.steps.first(), ProtocolTemplate: protocol}[model]
    history_id = record.history.earliest().history_id
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{record.pk}/history/{history_id}/"
    assert admin_client_.post(url, {"status": "done", "_save": "Save"}).status_code == 403
