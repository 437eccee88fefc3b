"""The ward's day (issue 14) and the dashboard search kept out of URLs (issue 12.5): knowing who is who
(MRN and date of birth beside every name, search by any part of an MRN and across spellings, likely
duplicates on enrolment, search under the filters), consent on the patient page, each role's landing,
phone forms (error summary, a late step's time performed) and the small traps."""

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from journeys import services as journey_services
from journeys.models import Journey, StepStatus
from journeys.views import SEARCH_TOKEN_SECONDS
from patients.models import Consent, ConsentKind, Patient, name_spelled_key
from patients.services import consent_record
from tests.factories import PatientFactory
from tests.web.bulk import build_patients
from tests.web.test_pages import PASSWORD, _count_queries, _step, search

# --- Knowing who is who ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_list_names_a_patient_with_mrn_and_date_of_birth(client, coordinator, nurse, journey):
    patient = journey.patient
    ident = f'<span class="mono">{patient.mrn}</span> · <span class="nowrap">born {patient.date_of_birth:%d %b %Y}</span>'
    step = _step(journey, "eligibility-labs")
    client.force_login(coordinator)
    pages = {
        "dashboard": reverse("dashboard"),
        "stage list": reverse("stage_list", args=[1]),
        "record form": reverse("step_complete", args=[step.public_id]),
        "details form": reverse("patient_edit", args=[patient.public_id]),
        "measurement form": reverse("measurement_new", args=[patient.public_id]),
        "search": None,
    }
    for name, url in pages.items():
        page = (search(client, patient.mrn) if url is None else client.get(url)).content.decode()
        assert ident in page, name
    client.force_login(nurse)
    assert ident in client.get(reverse("my_steps")).content.decode()


@pytest.mark.django_db
def test_the_patient_page_shows_the_date_of_birth(client, viewer, journey):
    client.force_login(viewer)
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert f"<dt>Born</dt><dd>{journey.patient.date_of_birth:%d %b %Y}" in page


@pytest.mark.django_db
def test_mrn_search_by_any_part_with_or_without_its_dashes(client, coordinator):
    wanted = PatientFactory(mrn="MRN-2024-0039-7")
    PatientFactory(mrn="MRN-2024-0040-1")
    client.force_login(coordinator)
    for typed in ("0039", "2024-0039", "20240039", "mrn 2024 0039"):
        found = search(client, typed).context["search_results"]
        assert [p.mrn for p in found] == [wanted.mrn], typed


@pytest.mark.django_db
def test_names_are_found_across_spellings(client, coordinator):
    muller = PatientFactory(given_name="Jörg", family_name="Müller")
    mueller = PatientFactory(given_name="Anke", family_name="Mueller")
    oster = PatientFactory(given_name="Søren", family_name="Østergaard")
    strauss = PatientFactory(given_name="Eva", family_name="Strauß")
    client.force_login(coordinator)
    cases = {
        "Mueller": {muller, mueller},  # ü = ue
        "Müller": {muller, mueller},
        "muller": {muller},  # accent folding, as before
        "Joerg Mueller": {muller},
        "Oestergaard": {oster},  # ø = oe
        "Ostergaard": {oster},
        "Soeren": {oster},
        "Strauss": {strauss},  # ß = ss
    }
    for typed, expected in cases.items():
        found = search(client, typed).context["search_results"]
        assert {p.mrn for p in found} == {p.mrn for p in expected}, typed


def test_spelled_key_spells_out_german_and_nordic_letters():
    # The same letter typed as one code point or as a base letter plus a combining mark.
    assert name_spelled_key("Jörg MÜLLER Åse Ærø Strauß") == name_spelled_key("Jo\u0308rg Mu\u0308ller Åse Ærø Strauss")
    assert name_spelled_key("Jörg Müller Åse Ærø Strauß") == "joerg mueller aase aeroe strauss"


@pytest.mark.django_db
def test_search_respects_every_dashboard_filter(client, coordinator, make_user):
    other = make_user("coordinator", first_name="Otto", last_name="Other")
    journeys = build_patients(20, prefix="FLT", coordinator=coordinator) + build_patients(5, prefix="FLO", coordinator=other)
    client.force_login(coordinator)
    everyone = search(client, "FL").context["search_results"]
    assert len(everyone) == 25
    stage = journeys[0].current_stage
    in_stage = search(client, "FL", stage=stage).context["search_results"]
    assert in_stage and {p.open_stage for p in in_stage} == {stage}
    assert len(in_stage) == sum(j.current_stage == stage for j in journeys)
    sle = search(client, "FL", indication="sle").context["search_results"]
    assert sle and {p.indication for p in sle} == {"sle"}
    others = search(client, "FL", coordinator=other.id)
    found = others.context["search_results"]
    assert {p.coordinator_id for p in found} == {other.id} and len(found) == 5
    assert b"(within the filters)" in others.content


@pytest.mark.django_db
def test_the_manufacturing_queue_respects_the_filters(client, coordinator, make_user):
    other = make_user("coordinator", first_name="Otto", last_name="Other")
    build_patients(30, prefix="MQA", coordinator=coordinator)
    build_patients(10, prefix="MQB", coordinator=other)
    client.force_login(coordinator)
    queue = client.get(reverse("dashboard")).context["manufacturing"]["rows"]
    assert queue and {j.current_stage for j in queue} == {2}
    assert client.get(reverse("dashboard"), {"stage": 2}).context["manufacturing"]["rows"]
    assert client.get(reverse("dashboard"), {"stage": 4}).context["manufacturing"]["rows"] == []
    theirs = client.get(reverse("dashboard"), {"coordinator": other.id}).context["manufacturing"]["rows"]
    assert {j.patient.coordinator_id for j in theirs} <= {other.id}


# --- Issue 12.5: identifiers stay out of URLs -----------------------------------------------------


@pytest.mark.django_db
def test_the_search_travels_by_post_and_the_address_carries_only_a_token(client, coordinator):
    patient = PatientFactory(mrn="MRN-7001", family_name="Ortiz")
    client.force_login(coordinator)
    page = client.get(reverse("dashboard")).content.decode()
    form = re.search(r'<form class="filters card"[^>]*>', page).group(0)
    assert 'method="post"' in form and reverse("dashboard_search") in form
    response = client.post(reverse("dashboard_search"), {"q": "Ortiz", "stage": ""})
    location = response["Location"]
    assert response.status_code == 302 and "Ortiz" not in location and "q=" not in location
    assert re.fullmatch(r"/dashboard/\?search=[\w-]{8,}", location)
    found = client.get(location)
    assert [p.mrn for p in found.context["search_results"]] == [patient.mrn]
    assert 'value="Ortiz"' in found.content.decode()  # the box shows it again, in the page body only
    # An address with the text itself searches nothing: such links must not work, or they would be made.
    assert client.get(reverse("dashboard"), {"q": "Ortiz"}).context["search_results"] is None
    # A GET to the search address is refused; the text only ever goes in a POST body.
    assert client.get(reverse("dashboard_search"), {"q": "Ortiz"}).status_code == 405


@pytest.mark.django_db
def test_a_search_token_is_short_lived_and_belongs_to_its_session(client, coordinator, make_user, time_machine):
    PatientFactory(family_name="Ortiz")
    time_machine.move_to(timezone.now(), tick=False)
    client.force_login(coordinator)
    location = client.post(reverse("dashboard_search"), {"q": "Ortiz"})["Location"]
    assert client.get(location).context["search_results"]
    time_machine.shift(timedelta(seconds=SEARCH_TOKEN_SECONDS + 1))
    expired = client.get(location)
    assert expired.context["search_results"] is None and b"That search has expired" in expired.content
    # Another person's session does not know the token.
    location = client.post(reverse("dashboard_search"), {"q": "Ortiz"})["Location"]
    client.force_login(make_user("coordinator"))
    assert client.get(location).context["search_results"] is None


@pytest.mark.django_db
def test_a_viewer_may_search_and_an_anonymous_visitor_may_not(client, viewer):
    PatientFactory(family_name="Ortiz")
    assert client.post(reverse("dashboard_search"), {"q": "Ortiz"})["Location"].startswith(reverse("login"))
    client.force_login(viewer)
    assert search(client, "Ortiz").context["search_results"]


# --- Likely duplicates on enrolment ---------------------------------------------------------------


def _enrol_form(**changes):
    form = {
        "mrn": "MRN-9001",
        "given_name": "Greta",
        "family_name": "Sommer",
        "date_of_birth": "1971-05-04",
        "sex": "female",
        "indication": "sle",
    }
    return {**form, **changes}


@pytest.mark.django_db
def test_a_second_greta_sommer_born_the_same_day_needs_the_coordinators_confirmation(client, coordinator):
    first = PatientFactory(mrn="MRN-1234", given_name="Greta", family_name="Sommer", date_of_birth=date(1971, 5, 4))
    client.force_login(coordinator)
    warned = client.post(reverse("patient_enrol"), _enrol_form())
    assert warned.status_code == 409
    page = warned.content.decode()
    assert (
        "Possibly already registered" in page and first.mrn in page and reverse("patient_detail", args=[first.public_id]) in page
    )
    assert 'name="confirm_not_duplicate"' in page and 'type="checkbox"' in page
    assert Patient.objects.count() == 1
    confirmed = client.post(reverse("patient_enrol"), _enrol_form(confirm_not_duplicate="on"))
    assert confirmed.status_code == 302
    second = Patient.objects.get(mrn="MRN-9001")
    assert second.history.get().history_change_reason == ("Enrolled after confirming this is not the same person as MRN MRN-1234")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"given_name": "GRETA", "family_name": "Sömmer", "mrn": "X-1"},  # the name spelled another way
        {"given_name": "Sommer", "family_name": "Greta", "mrn": "X-2"},  # given and family swapped
        {"given_name": "Paula", "family_name": "Other", "date_of_birth": "1980-01-01", "mrn": "mrn 1234"},  # same MRN
    ],
)
def test_what_counts_as_a_likely_duplicate(client, coordinator, changes):
    PatientFactory(
        mrn="MRN-1234",
        given_name="Greta",
        family_name="Soemmer" if "Sömmer" in changes.values() else "Sommer",
        date_of_birth=date(1971, 5, 4),
    )
    client.force_login(coordinator)
    assert client.post(reverse("patient_enrol"), _enrol_form(**changes)).status_code == 409
    assert Patient.objects.count() == 1


@pytest.mark.django_db
def test_the_same_name_born_another_day_is_not_a_duplicate(client, coordinator):
    PatientFactory(mrn="MRN-1234", given_name="Greta", family_name="Sommer", date_of_birth=date(1971, 5, 4))
    client.force_login(coordinator)
    assert client.post(reverse("patient_enrol"), _enrol_form(date_of_birth="1972-05-04")).status_code == 302
    assert client.get(reverse("patient_enrol")).content.decode().count('name="confirm_not_duplicate"') == 1
    assert 'type="hidden" name="confirm_not_duplicate"' in client.get(reverse("patient_enrol")).content.decode()


# --- Consent --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_coordinator_records_a_consent_and_it_shows_on_the_patient_page(client, coordinator, physician, journey):
    patient = journey.patient
    client.force_login(coordinator)
    form = client.get(reverse("consent_new", args=[patient.public_id]))
    assert form.status_code == 200 and "Kind of consent" in form.content.decode()
    response = client.post(
        reverse("consent_new", args=[patient.public_id]),
        {
            "kind": ConsentKind.TREATMENT,
            "document_version": "3.1",
            "signed_on": timezone.localdate().isoformat(),
            "taken_by": physician.id,
        },
    )
    assert response.status_code == 302
    consent = Consent.objects.get(patient=patient, document_version="3.1")  # beside the one the journey started on
    assert (consent.kind, consent.document_version, consent.taken_by, consent.recorded_by) == (
        "treatment",
        "3.1",
        physician,
        coordinator,
    )
    page = client.get(reverse("patient_detail", args=[patient.public_id])).content.decode()
    section = page[page.index('id="consent-heading"') :]
    assert "Treatment (CAR-T therapy)" in section and "Version 3.1" in section
    assert f"taken by {physician.display_name}" in section and f"Recorded by {coordinator.display_name}" in section


@pytest.mark.django_db
def test_a_consent_needs_who_took_it_and_a_viewer_cannot_take_one(client, coordinator, viewer, journey):
    url = reverse("consent_new", args=[journey.patient.public_id])
    client.force_login(coordinator)
    missing = client.post(url, {"kind": "study", "document_version": "1", "signed_on": "2026-01-05"})
    assert missing.status_code == 400 and "Say who took the consent." in missing.content.decode()
    refused = client.post(url, {"kind": "study", "document_version": "1", "signed_on": "2026-01-05", "taken_by": viewer.id})
    assert refused.status_code == 400 and not Consent.objects.filter(kind="study").exists()


@pytest.mark.django_db
def test_a_withdrawal_is_recorded_shown_and_never_deletes_the_consent(client, coordinator, nurse, journey):
    patient = journey.patient
    consent = consent_record(
        actor=coordinator,
        patient_id=patient.id,
        signed_on=date(2026, 1, 5),
        document_version="2.0",
        kind=ConsentKind.SAMPLES,
        taken_by=nurse,
    )
    url = reverse("consent_withdraw", args=[patient.public_id, consent.pk])
    client.force_login(coordinator)
    no_reason = client.post(url, {"withdrawn_on": "2026-02-01", "reason": "", "version": consent.version})
    assert no_reason.status_code == 400
    early = client.post(url, {"withdrawn_on": "2025-12-01", "reason": "x", "version": consent.version})
    assert early.status_code == 400 and "Cannot be before it was signed" in early.content.decode()
    done = client.post(
        url, {"withdrawn_on": "2026-02-01", "reason": "Patient asked to destroy samples", "version": consent.version}
    )
    assert done.status_code == 302
    consent.refresh_from_db()
    assert (consent.withdrawn_on, consent.withdrawal_recorded_by) == (date(2026, 2, 1), coordinator)
    assert consent.history.first().history_change_reason == "Patient asked to destroy samples"
    page = client.get(reverse("patient_detail", args=[patient.public_id])).content.decode()
    assert "Withdrawn 01 Feb 2026" in page and "Patient asked to destroy samples" in page
    again = client.post(url, {"withdrawn_on": "2026-02-02", "reason": "again", "version": consent.version})
    assert again.status_code == 409 and Consent.objects.get(pk=consent.pk).withdrawn_on == date(2026, 2, 1)


@pytest.mark.django_db
def test_a_consent_of_another_patient_is_not_found_under_this_one(client, coordinator, journey):
    other = PatientFactory()
    consent = consent_record(actor=coordinator, patient_id=other.id, signed_on=date(2026, 1, 5), document_version="1")
    client.force_login(coordinator)
    assert client.get(reverse("consent_withdraw", args=[journey.patient.public_id, consent.pk])).status_code == 404


@pytest.mark.django_db
def test_patient_page_queries_do_not_grow_with_consents(client, coordinator, nurse, journey):
    client.force_login(coordinator)
    url = reverse("patient_detail", args=[journey.patient.public_id])
    consent_record(
        actor=coordinator, patient_id=journey.patient_id, signed_on=date(2026, 1, 5), document_version="1", taken_by=nurse
    )
    client.get(url)
    one = _count_queries(client, url)
    for number in range(5):
        consent_record(
            actor=coordinator,
            patient_id=journey.patient_id,
            signed_on=date(2026, 1, 6),
            document_version=f"v{number}",
            kind=ConsentKind.STUDY,
            taken_by=coordinator,
        )
    assert _count_queries(client, url) == one


# --- Each role's landing --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_physician_lands_on_their_own_steps_and_notifications(client, physician, coordinator, make_user):
    client.force_login(physician)
    assert client.get(reverse("home"))["Location"] == reverse("my_steps")
    page = client.get(reverse("my_steps")).content.decode()
    assert 'id="landing-alerts"' in page and reverse("notifications:latest_unread") in page
    # Someone who coordinates as well still starts from the whole clinic.
    both = make_user("physician", "coordinator")
    client.force_login(both)
    assert client.get(reverse("home"))["Location"] == reverse("dashboard")


@pytest.mark.django_db
def test_the_landing_lists_the_latest_unread_notifications_with_constant_queries(client, physician, journey):
    from notifications.models import Notification

    def note(number):
        return Notification(
            recipient=physician,
            kind="overdue",
            created_at=timezone.now(),
            title=f"Overdue {number}",
            items=[
                {
                    "kind": "overdue",
                    "journey": str(journey.public_id),
                    "step": str(_step(journey, "eligibility-labs").public_id),
                    "text": f"Eligibility labs, patient ref {str(journey.patient.public_id)[:8]}",
                }
            ],
        )

    Notification.objects.bulk_create([note(1)])
    client.force_login(physician)
    url = reverse("notifications:latest_unread")
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert journey.patient.mrn in fragment and f"born {journey.patient.date_of_birth:%d %b %Y}" in fragment
    few = _count_queries(client, url)
    Notification.objects.bulk_create([note(n) for n in range(2, 12)])
    fragment = client.get(url).content.decode()
    assert fragment.count('class="note-title"') == 5 and "All unread notifications" in fragment
    assert _count_queries(client, url) == few


# --- Phone forms ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_submit_puts_an_error_summary_with_links_at_the_top(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    response = client.post(reverse("step_complete", args=[step.public_id]), {"version": step.version, "notes": "x"})
    assert response.status_code == 400
    page = response.content.decode()
    summary = page[page.index("data-error-summary") :]
    summary = summary[: summary.index("</div>")]
    assert 'role="alert"' in page[page.index('class="error-summary"') : page.index("data-error-summary")]
    assert 'tabindex="-1"' in page[page.index('class="error-summary"') : page.index("data-error-summary")]
    assert '<a href="#id_password">Your password (electronic signature): Enter your password to sign.</a>' in summary
    # The summary comes before the first field; the script that focuses it is on the page.
    assert page.index("data-error-summary") < page.index('<div class="field')
    assert "js/forms.js" in page
    # Each link's target exists.
    for target in re.findall(r'<a href="#([\w.-]+)">', summary):
        assert f'id="{target}"' in page, target


@pytest.mark.django_db
def test_the_record_form_links_back_to_the_patient(client, nurse, journey):
    step = _step(journey, "eligibility-labs")
    client.force_login(nurse)
    page = client.get(reverse("step_complete", args=[step.public_id])).content.decode()
    assert f'class="patient-link" href="{reverse("patient_detail", args=[journey.patient.public_id])}"' in page


@pytest.mark.django_db
def test_a_late_step_asks_when_it_was_performed_instead_of_saying_now(client, nurse, coordinator, protocol):
    patient = PatientFactory(nurse=nurse)
    late = journey_services.journey_start(
        actor=coordinator,
        patient_id=patient.id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate() - timedelta(days=3),
    )
    on_time = journey_services.journey_start(
        actor=coordinator,
        patient_id=PatientFactory().id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate() + timedelta(days=14),
    )
    client.force_login(nurse)
    late_step, early_step = _step(late, "eligibility-labs"), _step(on_time, "eligibility-labs")
    assert late_step.is_overdue(timezone.now()) and not early_step.is_overdue(timezone.now())
    late_form = client.get(reverse("step_complete", args=[late_step.public_id])).content.decode()
    field = re.search(r'<input type="datetime-local" name="performed_at"[^>]*>', late_form).group(0)
    assert "value=" not in field and "This step is late: enter when it was actually done." in late_form
    unsent = client.post(
        reverse("step_complete", args=[late_step.public_id]),
        {"version": late_step.version, "password": PASSWORD, "signature_meaning": "performed"},
    )
    assert unsent.status_code == 400 and "Enter when the step was actually done." in unsent.content.decode()
    late_step.refresh_from_db()
    assert late_step.status == StepStatus.PENDING
    early_form = client.get(reverse("step_complete", args=[early_step.public_id])).content.decode()
    assert 'name="performed_at" value="' in early_form


@pytest.mark.django_db
def test_my_steps_offers_the_patient_page_one_tap_away(client, nurse, journey):
    client.force_login(nurse)
    page = client.get(reverse("my_steps")).content.decode()
    assert f'class="ward-patient-link" href="{reverse("patient_detail", args=[journey.patient.public_id])}"' in page


# --- Small traps ----------------------------------------------------------------------------------


def test_dates_carry_the_year_when_not_this_year(time_machine):
    time_machine.move_to(datetime(2026, 12, 2, 10, tzinfo=ZoneInfo("Europe/Berlin")), tick=False)
    template = Template("{% load clinic %}{{ a|day }}|{{ b|day }}|{{ c|day_time }}|{{ d|short_day }}|{{ e|day }}")
    text = template.render(
        Context(
            {
                "a": date(2026, 11, 23),
                "b": date(2024, 11, 23),
                "c": datetime(2027, 1, 4, 8, 5, tzinfo=ZoneInfo("Europe/Berlin")),
                "d": date(2025, 3, 1),
                "e": None,
            }
        )
    )
    assert text == "Mon 23 Nov|Sat 23 Nov 2024|Mon 04 Jan 2027 08:05|01 Mar 2025|"


@pytest.mark.django_db
def test_the_stage_list_shows_the_year_of_a_date_two_years_back(client, viewer, coordinator, protocol):
    patient = PatientFactory(family_name="Longago")
    old = journey_services.journey_start(
        actor=coordinator,
        patient_id=patient.id,
        protocol_id=protocol.id,
        leukapheresis_date=timezone.localdate() - timedelta(days=730),
    )
    client.force_login(viewer)
    page = client.get(reverse("stage_list", args=[old.current_stage])).content.decode()
    row = page[page.index("Longago") :]
    row = row[: row.index("</tr>")]
    due = Journey.objects.filter(pk=old.pk).values_list("steps__due_on", flat=True).order_by("steps__due_on")[0]
    assert f"{due:%a %d %b %Y}" in row


@pytest.mark.django_db
def test_the_history_box_is_a_focusable_named_region(client, viewer, journey):
    client.force_login(viewer)
    page = client.get(reverse("patient_detail", args=[journey.patient.public_id])).content.decode()
    assert '<div class="audit-scroll" tabindex="0" role="region" aria-label="History of changes, scrollable">' in page
