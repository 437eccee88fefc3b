"""Pages, through the Django test client: who may open what, forms and their errors, the e-signature,
the conflict when two people record the same step, idle sign-out, and constant query counts."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from journeys import services
from journeys.models import EventKind, Journey, JourneyEvent, JourneyStatus, Step, StepStatus
from patients.models import Patient
from staff.middleware import LAST_ACTIVITY_KEY
from tests.factories import PatientFactory
from tests.web.bulk import build_patients

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def _step(journey, code):
    return journey.steps.select_related("template").get(template__code=code)


def search(client, text, **filters):
    """Search the dashboard as the page does: the text by POST, then the page its token names."""
    response = client.post(reverse("dashboard_search"), {"q": text, **filters})
    assert response.status_code == 302 and text not in response["Location"]
    return client.get(response["Location"])


def _page_urls(journey, patient):
    from patients.models import Consent

    step = _step(journey, "eligibility-labs")
    consent, _ = Consent.objects.get_or_create(
        patient=patient, defaults={"signed_on": timezone.localdate(), "document_version": "1"}
    )
    return {
        "dashboard": reverse("dashboard"),
        "dashboard_panels": reverse("dashboard_panels"),
        "stage_list": reverse("stage_list", args=[1]),
        "patient_detail": reverse("patient_detail", args=[patient.public_id]),
        "my_steps": reverse("my_steps"),
        "step_complete": reverse("step_complete", args=[step.public_id]),
        "step_skip": reverse("step_skip", args=[step.public_id]),
        "patient_enrol": reverse("patient_enrol"),
        "patient_edit": reverse("patient_edit", args=[patient.public_id]),
        "measurement_new": reverse("measurement_new", args=[patient.public_id]),
        "journey_start": reverse("journey_start", args=[patient.public_id]),
        "day0_reschedule": reverse("day0_reschedule", args=[journey.public_id]),
        "journey_hold": reverse("journey_status", args=[journey.public_id, "hold"]),
        "journey_withdraw": reverse("journey_status", args=[journey.public_id, "withdraw"]),
        "password_change": reverse("password_change"),
        "consent_new": reverse("consent_new", args=[patient.public_id]),
        "consent_withdraw": reverse("consent_withdraw", args=[patient.public_id, consent.pk]),
        "latest_unread": reverse("notifications:latest_unread"),
    }


# Who may open which page (GET). Mirrors staff.roles.PERMISSIONS; a 403 is the answer even to a typed URL.
ALLOWED = {
    "dashboard": {"coordinator", "nurse", "physician", "viewer", "admin"},
    "dashboard_panels": {"coordinator", "nurse", "physician", "viewer", "admin"},
    "stage_list": {"coordinator", "nurse", "physician", "viewer", "admin"},
    "patient_detail": {"coordinator", "nurse", "physician", "viewer", "admin"},
    "my_steps": {"coordinator", "nurse", "physician", "admin"},
    "step_complete": {"coordinator", "nurse", "physician", "admin"},
    "step_skip": {"coordinator", "physician", "admin"},
    "patient_enrol": {"coordinator", "admin"},
    "patient_edit": {"coordinator", "nurse", "physician", "admin"},
    "measurement_new": {"coordinator", "nurse", "physician", "admin"},
    "journey_start": {"coordinator", "physician", "admin"},
    "day0_reschedule": {"coordinator", "physician", "admin"},
    "journey_hold": {"coordinator", "physician", "admin"},
    "journey_withdraw": {"coordinator", "physician", "admin"},
    "password_change": {"coordinator", "nurse", "physician", "viewer", "admin"},
    "consent_new": {"coordinator", "nurse", "physician", "admin"},
    "consent_withdraw": {"coordinator", "nurse", "physician", "admin"},
    "latest_unread": {"coordinator", "nurse", "physician", "viewer", "admin"},
}
ROLES = ["coordinator", "nurse", "physician", "viewer", "admin"]


@pytest.mark.django_db
@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_anonymous_is_sent_to_sign_in(client, journey, page):
    url = _page_urls(journey, journey.patient)[page]
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_page_for_every_role(client, users, journey, role):
    client.force_login(users[role])
    for page, url in _page_urls(journey, journey.patient).items():
        response = client.get(url)
        expected = 200 if role in ALLOWED[page] else 403
        assert response.status_code == expected, (role, page, response.status_code)
        if expected == 403:
            assert b"Not allowed for your role" in response.content


@pytest.mark.django_db
def test_a_nurse_cannot_post_to_coordinator_actions_either(client, nurse, journey):
    client.force_login(nurse)
    new_day0 = journey.day0_planned + timedelta(days=3)
    response = client.post(
        reverse("day0_reschedule", args=[journey.public_id]),
        {"new_day0": new_day0.isoformat(), "reason": "late product", "version": journey.version},
    )
    assert response.status_code == 403
    journey.refresh_from_db()
    assert journey.day0_planned != new_day0
    response = client.post(
        reverse("journey_status", args=[journey.public_id, "withdraw"]), {"reason": "x", "version": journey.version}
    )
    assert response.status_code == 403
    assert Journey.objects.get(pk=journey.pk).status == JourneyStatus.ACTIVE


@pytest.mark.django_db
def test_navigation_shows_only_what_the_role_may_do(client, nurse, coordinator):
    client.force_login(nurse)
    page = client.get(reverse("my_steps")).content.decode()
    enrol_link = f'href="{reverse("patient_enrol")}"'
    assert "My steps today" in page and enrol_link not in page
    client.force_login(coordinator)
    page = client.get(reverse("dashboard")).content.decode()
    assert enrol_link in page and 'Enrol<span class="nav-long"> patient</span>' in page and "Sign out" in page


@pytest.mark.django_db
def test_home_sends_each_role_to_its_start_page(client, nurse, coordinator, viewer, physician):
    for user, target in [(nurse, "my_steps"), (coordinator, "dashboard"), (viewer, "dashboard"), (physician, "my_steps")]:
        client.force_login(user)
        assert client.get(reverse("home"))["Location"] == reverse(target)


# --- Sign-in, lockout, sign-out, idle timeout, password change ---------------------------------------


@pytest.mark.django_db
def test_sign_in_and_out(client, coordinator):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'autocomplete="current-password"' in page.content
    response = client.post(reverse("login"), {"username": coordinator.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("dashboard")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_wrong_password_says_so_without_saying_which_part(client, coordinator):
    response = client.post(reverse("login"), {"username": coordinator.username, "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


@pytest.mark.django_db
def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(client, coordinator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": coordinator.username, "password": "wrong-password"})
    response = client.post(reverse("login"), {"username": coordinator.username, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Account locked for now" in response.content
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_idle_sign_out_after_the_timeout_and_polling_does_not_count(client, coordinator, journey):
    start = timezone.now()
    timeout = settings.SESSION_IDLE_TIMEOUT_SECONDS
    with time_machine.travel(start, tick=False) as traveller:
        client.force_login(coordinator)
        assert client.get(reverse("dashboard")).status_code == 200
        # The open dashboard polls all the time; none of that is a person at the screen.
        for _ in range(int(timeout // 60)):
            traveller.shift(60)
            poll = client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
            assert poll.status_code == 200 and b"Overdue" in poll.content
        traveller.shift(61)
        poll = client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
        assert poll["HX-Redirect"] == reverse("login")
        response = client.get(reverse("dashboard"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_a_poll_after_the_session_expired_sends_the_window_to_sign_in(client):
    response = client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("login")
    assert response.content == b""


@pytest.mark.django_db
def test_real_activity_keeps_the_session(client, coordinator):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.force_login(coordinator)
        for _ in range(4):
            traveller.shift(settings.SESSION_IDLE_TIMEOUT_SECONDS - 60)
            assert client.get(reverse("dashboard")).status_code == 200
        assert LAST_ACTIVITY_KEY in client.session


@pytest.mark.django_db
def test_idle_sign_out_of_a_page_request_tells_the_user(client, coordinator):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        client.force_login(coordinator)
        client.get(reverse("dashboard"))
        # The dashboard's poll kept the session itself alive; the middleware still signs out.
        traveller.shift(settings.SESSION_IDLE_TIMEOUT_SECONDS - 30)
        client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
        traveller.shift(31)
        response = client.get(reverse("dashboard"), follow=True)
        assert b"signed out after 15 minutes without activity" in response.content
        assert response.redirect_chain[0][0].startswith(reverse("login"))
        # With no poll at all the session cookie itself has expired: straight to sign-in.
        client.force_login(coordinator)
        client.get(reverse("dashboard"))
        traveller.shift(settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
        assert client.get(reverse("dashboard"))["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_password_change(client, nurse):
    client.force_login(nurse)
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"}
    )
    assert response.status_code == 200 and b"too short" in response.content
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "ward-7-night-shift", "new_password2": "ward-7-night-shift"},
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.check_password("ward-7-night-shift")


# --- Dashboard -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_lists_overdue_sorted_by_lateness_with_the_responsible_role(client, coordinator, nurse):
    build_patients(10, coordinator=coordinator, overdue_every=2)
    client.force_login(coordinator)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    rows = response.context["overdue"]["rows"]
    assert rows, "the bulk data leaves every second patient with an overdue step"
    lateness = [step.overdue_after for step in rows]
    assert lateness == sorted(lateness)
    assert all(step.overdue_after <= timezone.now() for step in rows)
    page = response.content.decode()
    assert "Overdue" in page and "Responsible" in page and "Late by" in page
    assert sum(count for _, _, count in response.context["pipeline"]) == 10


@pytest.mark.django_db
def test_dashboard_search_by_mrn_and_name(client, coordinator):
    build_patients(10, prefix="SRCH")
    client.force_login(coordinator)
    by_mrn = search(client, "SRCH0000003")
    assert [p.mrn for p in by_mrn.context["search_results"]] == ["SRCH0000003"]
    target = Patient.objects.get(mrn="SRCH0000004")
    by_name = search(client, f"{target.given_name} {target.family_name}")
    assert [p.mrn for p in by_name.context["search_results"]] == ["SRCH0000004"]
    assert str(target.public_id) in by_name.content.decode()
    nothing = search(client, "nobody-by-this-name")
    assert b"No patient has that MRN or name" in nothing.content


@pytest.mark.django_db
def test_dashboard_search_ignores_accents_and_case_both_ways(client, coordinator):
    muller, bjork = PatientFactory(family_name="Müller", given_name="Zoë"), PatientFactory(family_name="Bjork")
    client.force_login(coordinator)
    for typed, expected in (("muller", muller), ("MÜLLER zoe", muller), ("zoë", muller), ("björk", bjork)):
        found = search(client, typed).context["search_results"]
        assert [p.mrn for p in found] == [expected.mrn], typed


@pytest.mark.django_db
def test_dashboard_filters_by_stage_indication_and_coordinator(client, coordinator, make_user):
    other = make_user("coordinator", first_name="Otto", last_name="Other")
    build_patients(20, prefix="A", coordinator=coordinator, overdue_every=1)
    build_patients(5, prefix="B", coordinator=other, overdue_every=1)
    client.force_login(coordinator)
    mine = client.get(reverse("dashboard"), {"coordinator": other.id}).context
    assert {step.journey.patient.coordinator_id for step in mine["overdue"]["rows"]} == {other.id}
    assert mine["pipeline_total"] == 5
    stage2 = client.get(reverse("dashboard"), {"stage": 2}).context
    assert stage2["overdue"]["rows"] and {s.journey.current_stage for s in stage2["overdue"]["rows"]} == {2}
    sle = client.get(reverse("dashboard"), {"indication": "sle"}).context
    assert {s.journey.patient.indication for s in sle["overdue"]["rows"]} == {"sle"}


@pytest.mark.django_db
def test_a_completion_on_the_ward_shows_in_the_next_poll(client, coordinator, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(coordinator)
    today = timezone.localdate()
    before = client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
    assert step in before.context["due_today"]["rows"] or step.due_on < today
    services.step_complete(actor=nurse, step_id=step.id)
    after = client.get(reverse("dashboard_panels"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
    shown = [s.id for key in ("overdue", "due_today", "next_week") for s in after.context[key]["rows"]]
    assert step.id not in shown


@pytest.mark.django_db
def test_stage_list_opens_from_the_pipeline(client, viewer):
    build_patients(12, prefix="STG")
    client.force_login(viewer)
    response = client.get(reverse("stage_list", args=[2]))
    assert response.status_code == 200
    assert all(j.current_stage == 2 for j in response.context["page"].object_list)
    assert client.get(reverse("stage_list", args=[9])).status_code == 404


# --- Patient page and its actions ------------------------------------------------------------------


@pytest.mark.django_db
def test_patient_page_shows_header_day_strip_timeline_and_history(client, physician, journey):
    client.force_login(physician)
    response = client.get(reverse("patient_detail", args=[journey.patient.public_id]))
    page = response.content.decode()
    patient = journey.patient
    assert patient.mrn in page and patient.family_name in page
    assert "Day \u221221" in page  # leukapheresis today, Day 0 planned 21 days on
    assert page.count('class="progress-stage') == 5
    assert "Eligibility labs" in page and "Journey started" in page
    assert "Reminders" in page


@pytest.mark.django_db
def test_patient_page_without_journey_offers_to_start_one(client, coordinator, patient, protocol):
    client.force_login(coordinator)
    page = client.get(reverse("patient_detail", args=[patient.public_id])).content.decode()
    assert "No journey yet" in page and reverse("journey_start", args=[patient.public_id]) in page
    today = timezone.localdate()
    response = client.post(
        reverse("journey_start", args=[patient.public_id]),
        {
            "protocol": protocol.id,
            "leukapheresis_date": (today + timedelta(days=5)).isoformat(),
            "day0_planned": today.isoformat(),
        },
    )
    assert response.status_code == 400
    assert "Day 0 must be on or after the leukapheresis date." in response.content.decode()
    assert not Journey.objects.filter(patient=patient).exists()
    response = client.post(
        reverse("journey_start", args=[patient.public_id]),
        {"protocol": protocol.id, "leukapheresis_date": (today + timedelta(days=5)).isoformat()},
    )
    assert response.status_code == 302
    assert Journey.objects.get(patient=patient).day0_planned == today + timedelta(days=26)


@pytest.mark.django_db
def test_enrol_errors_keep_what_was_typed_and_save_nothing(client, coordinator, patient):
    client.force_login(coordinator)
    data = {
        "mrn": patient.mrn,
        "given_name": "Lena",
        "family_name": "Vogel",
        "date_of_birth": "2999-01-01",
        "sex": "female",
        "indication": "other",
        "indication_other": "",
    }
    response = client.post(reverse("patient_enrol"), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Describe the indication." in page
    assert 'value="Vogel"' in page and 'value="Lena"' in page
    assert Patient.objects.count() == 1
    data.update(indication="sle")
    response = client.post(reverse("patient_enrol"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors["date_of_birth"] == ["Cannot be in the future."]
    data.update(date_of_birth="1990-05-01")
    response = client.post(reverse("patient_enrol"), data)
    assert response.status_code == 400
    assert "mrn" in response.context["form"].errors  # already used by another patient
    assert Patient.objects.count() == 1
    data.update(mrn="MRN-NEW-1")
    response = client.post(reverse("patient_enrol"), data)
    created = Patient.objects.get(mrn="MRN-NEW-1")
    assert response["Location"] == reverse("patient_detail", args=[created.public_id])


@pytest.mark.django_db
def test_reschedule_day0_with_a_reason(client, coordinator, journey):
    client.force_login(coordinator)
    url = reverse("day0_reschedule", args=[journey.public_id])
    new_day0 = journey.day0_planned + timedelta(days=7)
    missing_reason = client.post(url, {"new_day0": new_day0.isoformat(), "reason": "", "version": journey.version})
    assert missing_reason.status_code == 400 and "reason" in missing_reason.context["form"].errors
    past = client.post(
        url, {"new_day0": (timezone.localdate() - timedelta(days=1)).isoformat(), "reason": "typo", "version": journey.version}
    )
    assert past.status_code == 400
    assert "Day 0 cannot be moved into the past." in past.context["form"].errors["new_day0"]
    assert 'value="typo"' not in past.content.decode()  # a textarea keeps its text inside the tag
    assert "typo</textarea>" in past.content.decode()
    response = client.post(
        url, {"new_day0": new_day0.isoformat(), "reason": "Product late from the plant", "version": journey.version}
    )
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.day0_planned == new_day0
    event = JourneyEvent.objects.get(journey=journey, kind=EventKind.ANCHOR_MOVED)
    assert event.reason == "Product late from the plant" and event.actor == coordinator
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert "Product late from the plant" in page


@pytest.mark.django_db
def test_reschedule_with_a_stale_version_is_refused(client, coordinator, physician, journey):
    client.force_login(coordinator)
    version = journey.version
    services.journey_hold(actor=physician, journey_id=journey.id, reason="infection")
    services.journey_resume(actor=physician, journey_id=journey.id, reason="treated")
    response = client.post(
        reverse("day0_reschedule", args=[journey.public_id]),
        {"new_day0": (journey.day0_planned + timedelta(days=2)).isoformat(), "reason": "late", "version": version},
    )
    assert response.status_code == 409
    assert "changed by someone else" in response.content.decode()


@pytest.mark.django_db
def test_hold_resume_withdraw(client, coordinator, journey):
    client.force_login(coordinator)
    patient_url = reverse("patient_detail", args=[journey.patient.public_id])
    response = client.post(reverse("journey_status", args=[journey.public_id, "hold"]), {"reason": "", "version": 1})
    assert response.status_code == 400
    assert (
        client.post(
            reverse("journey_status", args=[journey.public_id, "hold"]),
            {"reason": "Fever, infection screen", "version": journey.version},
        )["Location"]
        == patient_url
    )
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ON_HOLD
    assert "Resume" in client.get(patient_url).content.decode()
    client.post(
        reverse("journey_status", args=[journey.public_id, "resume"]), {"reason": "Afebrile 48 h", "version": journey.version}
    )
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.ACTIVE
    client.post(
        reverse("journey_status", args=[journey.public_id, "withdraw"]),
        {"reason": "Patient declined", "version": journey.version},
    )
    journey.refresh_from_db()
    assert journey.status == JourneyStatus.WITHDRAWN
    assert not journey.steps.filter(status=StepStatus.PENDING).exists()
    assert client.get(reverse("journey_status", args=[journey.public_id, "explode"])).status_code == 404


# --- Nurse: my steps today, record and sign ---------------------------------------------------------


@pytest.mark.django_db
def test_my_steps_today_lists_the_nurses_steps_only(client, nurse, journey):
    client.force_login(nurse)
    response = client.get(reverse("my_steps"))
    codes = [step.template.code for step in response.context["steps"]]
    assert "eligibility-labs" in codes
    assert "eligibility-signoff" not in codes  # a physician's step
    assert all(step.template.responsible_role == "nurse" for step in response.context["steps"])
    poll = client.get(reverse("my_steps"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
    assert b"<html" not in poll.content and b"Record and sign" in poll.content


def _sign(client, step, *, password=PASSWORD, meaning="performed", version=None, notes="Bloods drawn"):
    performed = timezone.localtime().replace(second=0, microsecond=0) - timedelta(minutes=10)
    return client.post(
        reverse("step_complete", args=[step.public_id]),
        {
            "performed_at": performed.strftime("%Y-%m-%dT%H:%M"),
            "notes": notes,
            "signature_meaning": meaning,
            "password": password,
            "version": step.version if version is None else version,
        },
    )


@pytest.mark.django_db
def test_recording_a_step_needs_the_signers_password(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    form_page = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    assert "electronic signature" in form_page.lower() and nurse.display_name in form_page
    response = _sign(client, step, password="not-my-password", notes="Typed before the mistake")
    assert response.status_code == 400
    page = response.content.decode()
    assert "That is not your password. The step was not recorded." in page
    assert "Typed before the mistake" in page
    step.refresh_from_db()
    assert step.status == StepStatus.PENDING and step.completed_by is None
    response = _sign(client, step, meaning="verified")
    assert response.status_code == 302 and response["Location"] == reverse("my_steps")
    step.refresh_from_db()
    assert step.status == StepStatus.DONE
    assert (step.completed_by, step.signature_meaning) == (nurse, "verified")
    assert step.completed_at is not None and step.notes == "Bloods drawn"
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert f"Signed by {nurse.display_name} (verified)" in page


@pytest.mark.django_db
def test_second_nurse_is_told_who_recorded_it_first_and_nothing_is_overwritten(client, nurse, make_user, journey):
    other = make_user("nurse", first_name="Olga", last_name="Otherward")
    step = _step(journey, "eligibility-labs")
    stale_version = step.version
    client.force_login(nurse)
    assert _sign(client, step, notes="first").status_code == 302
    client.force_login(other)
    response = _sign(client, step, version=stale_version, notes="second")
    assert response.status_code == 409
    page = response.content.decode()
    assert "already recorded as done by Nina Nurse" in page and "Nothing was changed." in page
    step.refresh_from_db()
    assert (step.completed_by, step.notes) == (nurse, "first")
    # Opening the form again afterwards says so plainly, without a form to send.
    again = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    assert "Already recorded" in again and "Nina Nurse" in again and 'name="password"' not in again


@pytest.mark.django_db
def test_a_step_moved_since_the_form_opened_is_not_recorded(client, nurse, coordinator, journey):
    step = _step(journey, "coi-check")  # anchored on Day 0: moves when Day 0 moves
    stale = step.version
    services.day0_reschedule(
        actor=coordinator, journey_id=journey.id, new_day0=journey.day0_planned + timedelta(days=3), reason="slot moved"
    )
    client.force_login(nurse)
    response = _sign(client, step, version=stale)
    # Stage 4 has not started, which the rules say first; either way nothing is recorded.
    assert response.status_code in (400, 409)
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


@pytest.mark.django_db
def test_a_future_time_performed_is_a_field_error(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    response = client.post(
        reverse("step_complete", args=[step.public_id]),
        {
            "performed_at": (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "signature_meaning": "performed",
            "password": PASSWORD,
            "version": step.version,
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors["performed_at"] == ["Cannot be in the future."]
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


@pytest.mark.django_db
def test_nurse_cannot_record_a_physicians_step(client, nurse, journey):
    step = _step(journey, "eligibility-signoff")
    client.force_login(nurse)
    patient_page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert reverse("step_complete", args=[step.public_id]) not in patient_page
    assert reverse("step_complete", args=[_step(journey, "eligibility-labs").public_id]) in patient_page
    assert client.get(reverse("step_complete", args=[step.public_id])).status_code == 403
    assert _sign(client, step).status_code == 403
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


@pytest.mark.django_db
def test_skip_needs_a_reason(client, coordinator, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(coordinator)
    url = reverse("step_skip", args=[step.public_id])
    assert client.post(url, {"reason": "", "version": step.version}).status_code == 400
    response = client.post(url, {"reason": "Done at the referring hospital", "version": step.version})
    assert response.status_code == 302
    assert Step.objects.get(pk=step.pk).status == StepStatus.SKIPPED


# --- Query counts: the same for 10 and for 1,000 patients -------------------------------------------


def _count_queries(client, url, **headers) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_dashboard_and_patient_page_query_counts_do_not_grow_with_patients(client, coordinator, nurse):
    build_patients(10, prefix="QA", coordinator=coordinator, nurse=nurse)
    patient = Patient.objects.get(mrn="QA0000003")
    client.force_login(coordinator)
    urls = {
        "dashboard": reverse("dashboard"),
        # The search's token lives in the coordinator's session: a search by MRN part, under filters.
        "dashboard_filtered": client.post(reverse("dashboard_search"), {"q": "0000", "stage": 2, "indication": "sle"})[
            "Location"
        ],
        "panels": reverse("dashboard_panels"),
        "stage": reverse("stage_list", args=[4]),
        "patient": reverse("patient_detail", args=[patient.public_id]),
    }
    client.get(urls["dashboard"])  # first request of a session writes it; count a steady state
    small = {name: _count_queries(client, url) for name, url in urls.items()}
    client.force_login(nurse)
    client.get(reverse("my_steps"))
    small["my_steps"] = _count_queries(client, reverse("my_steps"))

    build_patients(990, prefix="QB", coordinator=coordinator, nurse=nurse)
    client.force_login(coordinator)
    urls["dashboard_filtered"] = client.post(reverse("dashboard_search"), {"q": "0000", "stage": 2, "indication": "sle"})[
        "Location"
    ]
    client.get(urls["dashboard"])
    large = {name: _count_queries(client, url) for name, url in urls.items()}
    client.force_login(nurse)
    client.get(reverse("my_steps"))
    large["my_steps"] = _count_queries(client, reverse("my_steps"))
    assert large == small
    # The alert banner, the consents (issue 14) and the header's product road (COI and order) cost one query each.
    assert small["dashboard"] <= 16 and small["patient"] <= 16


@pytest.mark.django_db
def test_three_wrong_signature_passwords_end_the_session(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    assert _sign(client, step, password="guess-1").status_code == 400
    assert _sign(client, step, password="guess-2").status_code == 400
    response = _sign(client, step, password="guess-3")
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("my_steps")).status_code == 302  # signed out
    assert Step.objects.get(pk=step.pk).status == StepStatus.PENDING


@pytest.mark.django_db
def test_a_right_signature_resets_the_count_of_wrong_ones(client, nurse, journey):
    first, second = _step(journey, "eligibility-labs"), _step(journey, "leukapheresis")
    client.force_login(nurse)
    _sign(client, first, password="guess-1")
    _sign(client, first, password="guess-2")
    assert _sign(client, first).status_code == 302
    assert _sign(client, second, password="guess-3").status_code == 400  # one wrong since the last success
    assert client.get(reverse("my_steps")).status_code == 200


@pytest.mark.django_db
def test_field_errors_are_tied_to_their_inputs_for_screen_readers(client, coordinator, journey):
    client.force_login(coordinator)
    response = client.post(
        reverse("journey_status", args=[journey.public_id, "hold"]), {"reason": "", "version": journey.version}
    )
    page = response.content.decode()
    assert 'aria-invalid="true"' in page and 'aria-describedby="id_reason_error"' in page
    assert 'id="id_reason_error"' in page


@pytest.mark.django_db
def test_my_steps_follow_the_named_nurse(client, nurse, make_user, coordinator, protocol):
    from journeys.services import journey_start
    from tests.factories import PatientFactory

    other = make_user("nurse", first_name="Olga", last_name="Otherward")
    today = timezone.localdate()
    patients = {
        "mine": PatientFactory(nurse=nurse),
        "theirs": PatientFactory(nurse=other),
        "anyone": PatientFactory(nurse=None),
    }
    for patient in patients.values():
        journey_start(
            actor=coordinator, patient_id=patient.id, protocol_id=protocol.id, leukapheresis_date=today - timedelta(days=1)
        )  # the hand-off to the courier is due today
    client.force_login(nurse)
    shown = {step.journey.patient_id for step in client.get(reverse("my_steps")).context["steps"]}
    assert shown == {patients["mine"].id, patients["anyone"].id}
    client.force_login(coordinator)
    steps = client.get(reverse("my_steps")).context["steps"]
    assert steps and all(step.template.responsible_role == "coordinator" for step in steps)
