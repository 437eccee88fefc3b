"""The years 6–15 questionnaire: who may send it and to whom, the e-mail sent once, the token's single use,
expiry, forgery and rate limit, the patient's page, and the nurse's review that records the step."""

import re
from datetime import timedelta
from smtplib import SMTPException

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import Conflict, InvalidInput, NotPermitted
from followup import services, tasks
from followup.models import QuestionnaireEvent, QuestionnaireLink, hash_link_token
from journeys.models import Step, StepStatus
from patients.models import ConsentKind
from patients.services import consent_record, consent_withdraw
from tests.factories import SECOND_SIGNER_PASSWORD


@pytest.fixture(autouse=True)
def _fresh_counts():
    cache.clear()  # the rate limit counts in the cache
    yield
    cache.clear()


@pytest.fixture
def year6(in_follow_up, coordinator):
    """The year-6 contact step of a patient with an e-mail address and a contact consent on file."""
    patient = in_follow_up.patient
    patient.email = "patient@example.test"
    patient.save(update_fields=["email"])
    consent_record(
        actor=coordinator,
        patient_id=patient.id,
        signed_on=timezone.localdate() - timedelta(days=400),
        document_version="LTFU v2",
        kind=ConsentKind.LTFU_CONTACT,
    )
    return Step.objects.select_related("journey__patient").get(journey=in_follow_up, template__code="ltfu-year-6")


def _send(actor, step, django_capture_on_commit_callbacks) -> QuestionnaireLink:
    with django_capture_on_commit_callbacks() as callbacks:
        link = services.questionnaire_link_send(actor=actor, step_id=step.id)
    assert len(callbacks) == 1  # the e-mail task, after commit
    return link


def _token_from(mail) -> str:
    return re.search(r"/followup/q/([^/\s]+)/", mail.body).group(1)


@pytest.fixture
def sent(year6, nurse, mailoutbox, django_capture_on_commit_callbacks):
    link = _send(nurse, year6, django_capture_on_commit_callbacks)
    assert tasks.send_questionnaire_email(link.id) == {"sent": True}
    return link, _token_from(mailoutbox[-1])


# --- Sending ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_email_is_sent_once_when_the_task_runs_twice(year6, coordinator, mailoutbox, django_capture_on_commit_callbacks):
    link = _send(coordinator, year6, django_capture_on_commit_callbacks)
    assert tasks.send_questionnaire_email(link.id) == {"sent": True}
    assert tasks.send_questionnaire_email(link.id) == {"sent": False}
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["patient@example.test"]
    link.refresh_from_db()
    token = _token_from(mailoutbox[0])
    # Only the hash is stored; the token is in the e-mail alone.
    assert link.token_hash == hash_link_token(token) and token not in str(QuestionnaireLink.objects.values().get())
    assert year6.journey.patient.mrn not in mailoutbox[0].body
    assert list(link.events.values_list("kind", flat=True)) == ["requested", "sent"]


@pytest.mark.django_db
def test_a_failed_send_gives_the_claim_back_for_the_retry(
    year6, coordinator, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    link = _send(coordinator, year6, django_capture_on_commit_callbacks)

    def refuse(self, fail_silently=False):
        raise SMTPException("mail server down")

    with monkeypatch.context() as patch:
        patch.setattr("django.core.mail.EmailMessage.send", refuse)
        with pytest.raises(SMTPException):
            services.questionnaire_email_send(link_id=link.id)
    link.refresh_from_db()
    assert link.token_hash == "" and link.sent_at is None
    assert services.questionnaire_email_send(link_id=link.id) is True
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_no_consent_no_email_no_link(year6, coordinator):
    patient = year6.journey.patient
    consent = patient.consents.get(kind=ConsentKind.LTFU_CONTACT)
    consent_withdraw(
        actor=coordinator, consent_id=consent.id, withdrawn_on=timezone.localdate(), reason="No more e-mail", expected_version=1
    )
    with pytest.raises(InvalidInput, match="consent"):
        services.questionnaire_link_send(actor=coordinator, step_id=year6.id)
    patient.email = ""
    patient.save(update_fields=["email"])
    with pytest.raises(InvalidInput, match="e-mail"):
        services.questionnaire_link_send(actor=coordinator, step_id=year6.id)
    assert not QuestionnaireLink.objects.exists()


@pytest.mark.django_db
def test_only_years_6_to_15_and_only_one_open_link(year6, coordinator, django_capture_on_commit_callbacks):
    year2 = Step.objects.get(journey=year6.journey, template__code="ltfu-year-2")
    year2.status = StepStatus.PENDING
    year2.save(update_fields=["status"])
    with pytest.raises(InvalidInput):
        services.questionnaire_link_send(actor=coordinator, step_id=year2.id)
    _send(coordinator, year6, django_capture_on_commit_callbacks)
    with pytest.raises(Conflict):
        services.questionnaire_link_send(actor=coordinator, step_id=year6.id)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["physician", "viewer"])
def test_roles_that_may_not_send(year6, make_user, role):
    with pytest.raises(NotPermitted):
        services.questionnaire_link_send(actor=make_user(role), step_id=year6.id)


@pytest.mark.django_db
def test_send_button_posts_and_says_why_not(client, year6, coordinator, viewer, django_capture_on_commit_callbacks):
    url = reverse("followup:questionnaire_send", args=[year6.public_id])
    client.force_login(viewer)
    assert client.post(url).status_code == 403
    client.force_login(coordinator)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, follow=True)
    assert len(callbacks) == 1 and "will be e-mailed" in response.content.decode()
    response = client.post(url, follow=True)
    assert "already out" in response.content.decode()


# --- The patient's page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_shows_only_the_questionnaire(client, sent):
    link, token = sent
    response = client.get(reverse("followup:questionnaire", args=[token]))
    page = response.content.decode()
    patient = link.patient
    assert response.status_code == 200
    assert f"Hello {patient.given_name}" in page and 'name="record.new_malignancy"' in page
    assert patient.family_name not in page and patient.mrn not in page and "record.contact" not in page
    assert response["X-Robots-Tag"] == "noindex, nofollow" and response["Referrer-Policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex, nofollow">' in page and "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_an_answer_lands_once_and_awaits_review(client, sent):
    link, token = sent
    url = reverse("followup:questionnaire", args=[token])
    response = client.post(url, {"record.new_malignancy": "none"})
    assert response.status_code == 200 and "Thank you" in response.content.decode()
    link.refresh_from_db()
    assert link.answers == {"new_malignancy": "none", "contact": "questionnaire"} and link.awaiting_review
    assert Step.objects.get(pk=link.step_id).status == StepStatus.PENDING  # a nurse signs it
    assert QuestionnaireEvent.objects.filter(link=link, kind="answered").count() == 1
    # Used once: the second submit and a reload find the link closed.
    assert client.post(url, {"record.new_malignancy": "confirmed"}).status_code == 404
    assert client.get(url).status_code == 404
    link.refresh_from_db()
    assert link.answers["new_malignancy"] == "none"


@pytest.mark.django_db
def test_the_second_claim_loses(sent):
    link, token = sent
    services.questionnaire_answer(token=token, answers={"new_malignancy": "none"})
    with pytest.raises(Conflict):
        services.questionnaire_answer(token=token, answers={"new_malignancy": "confirmed"})


@pytest.mark.django_db
def test_a_bad_answer_is_shown_by_its_field(client, sent):
    _, token = sent
    response = client.post(reverse("followup:questionnaire", args=[token]), {"record.new_malignancy": "sometimes"})
    assert response.status_code == 400 and "record.new_malignancy" in response.content.decode()


@pytest.mark.django_db
def test_an_expired_link_is_closed(client, sent, time_machine):
    _, token = sent
    time_machine.move_to(timezone.now() + timedelta(days=31))
    assert client.get(reverse("followup:questionnaire", args=[token])).status_code == 404


@pytest.mark.django_db
def test_wrong_and_forged_tokens_are_closed(client, sent):
    _, token = sent
    from django.core import signing

    forged = signing.TimestampSigner(salt="followup.questionnaire").sign("guessed-value")  # signed, but never issued
    for bad in ("nonsense", token[:-2] + "xx", forged):
        assert client.get(reverse("followup:questionnaire", args=[bad])).status_code == 404


@pytest.mark.django_db
def test_rate_limited_per_address_and_per_link(client, sent, settings):
    _, token = sent
    url = reverse("followup:questionnaire", args=[token])
    settings.FOLLOWUP_QUESTIONNAIRE_TRIES_PER_IP = 3
    assert [client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
    cache.clear()
    settings.FOLLOWUP_QUESTIONNAIRE_TRIES_PER_IP = 100
    settings.FOLLOWUP_QUESTIONNAIRE_TRIES_PER_LINK = 2
    assert [client.post(url, {"record.new_malignancy": "x"}).status_code for _ in range(3)] == [400, 400, 429]


# --- The nurse's review ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_nurse_reviews_and_signs_with_the_answers_prefilled(client, sent, nurse):
    link, token = sent
    services.questionnaire_answer(token=token, answers={"new_malignancy": "suspected"})
    client.force_login(nurse)
    panel = client.get(reverse("followup:patient_panel", args=[link.step.journey.public_id])).content.decode()
    assert "awaiting nurse review" in panel
    url = reverse("followup:questionnaire_review", args=[link.public_id])
    form = client.get(url).content.decode()
    assert "Answered by the patient by questionnaire" in form
    assert '<option value="suspected" selected>' in form and '<option value="questionnaire" selected>' in form
    step = Step.objects.get(pk=link.step_id)
    response = client.post(
        url,
        {
            "performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "record.contact": "questionnaire",
            "record.new_malignancy": "suspected",
            "notes": "Patient answered by questionnaire",
            "signature_meaning": "performed",
            "password": SECOND_SIGNER_PASSWORD,
            "version": step.version,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    step.refresh_from_db()
    link.refresh_from_db()
    assert step.status == StepStatus.DONE and step.completed_by == nurse
    assert step.record["new_malignancy"] == "suspected" and step.record["contact"] == "questionnaire"
    assert link.reviewed_by == nurse and not link.awaiting_review
    assert list(link.events.values_list("kind", flat=True)) == ["requested", "sent", "answered", "reviewed"]
    assert client.get(url).status_code == 302  # nothing left to review


@pytest.mark.django_db
def test_review_refused_to_a_viewer(client, sent, viewer):
    link, token = sent
    services.questionnaire_answer(token=token, answers={"new_malignancy": "none"})
    client.force_login(viewer)
    assert client.get(reverse("followup:questionnaire_review", args=[link.public_id])).status_code == 403
