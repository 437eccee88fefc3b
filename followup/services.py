"""Writes of follow-up: sending a patient the year's questionnaire link, taking the answer once, and the
nurse's review that records the step through journeys' own service."""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from carclinic.errors import Conflict, InvalidInput
from followup.models import QuestionnaireEvent, QuestionnaireEventKind, QuestionnaireLink, hash_link_token
from followup.selectors import questionnaire_step_codes
from journeys import records
from journeys import services as journey_services
from journeys.models import Step, StepStatus
from patients.models import Consent, ConsentKind
from staff.roles import Action, authorize, authorize_step_resolution

log = logging.getLogger("carclinic.followup")

# The token is a random value signed with the project's key: a guessed or altered token is refused before
# any database read, and the database holds only its hash.
TOKEN_SALT = "followup.questionnaire"
# The questionnaire asks the step's own fields, except how the contact was made: the answer says that.
CONTACT_FIELD = "contact"
CONTACT_BY_QUESTIONNAIRE = "questionnaire"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=TOKEN_SALT)


def contact_consent_on_file(*, patient_id: int, on) -> bool:
    """A signed, not withdrawn consent to be contacted for long-term follow-up."""
    return (
        Consent.objects.filter(patient_id=patient_id, kind=ConsentKind.LTFU_CONTACT, signed_on__lte=on)
        .filter(withdrawn_on__isnull=True)
        .exists()
    )


def _event(link: QuestionnaireLink, kind: str, *, actor=None, at=None, detail: dict | None = None) -> QuestionnaireEvent:
    return QuestionnaireEvent.objects.create(link=link, kind=kind, actor=actor, at=at or timezone.now(), detail=detail or {})


def questionnaire_link_send(*, actor, step_id: int) -> QuestionnaireLink:
    """Ask for the year's questionnaire link to be e-mailed to the patient: only for a pending years 6–15
    contact step, a patient with an e-mail address and a long-term follow-up contact consent on file, and
    no unanswered link still valid. The e-mail goes from a Celery task once this commits."""
    authorize(actor, Action.SEND_QUESTIONNAIRE)
    from followup import tasks  # the task module imports this one

    now = timezone.now()
    with transaction.atomic():
        # Locked so that two clicks on "Send" make one link, not two.
        step = Step.objects.select_for_update(of=("self",)).select_related("template", "journey__patient").get(id=step_id)
        patient = step.journey.patient
        if step.template.code not in questionnaire_step_codes():
            raise InvalidInput("Only the annual contact of years 6–15 is asked by questionnaire.")
        if step.status != StepStatus.PENDING:
            raise Conflict("This year's contact is already recorded.")
        if not patient.email:
            raise InvalidInput(
                "The patient has no e-mail address on file.", field_errors={"email": ["Add an e-mail address first."]}
            )
        if not contact_consent_on_file(patient_id=patient.id, on=timezone.localdate(now)):
            raise InvalidInput(
                "No consent to long-term follow-up contact is on file (or it was withdrawn): the link is not sent."
            )
        if QuestionnaireLink.objects.filter(step=step, answered_at__isnull=True, expires_at__gt=now).exists():
            raise Conflict("A link for this year is already out and has not expired.")
        link = QuestionnaireLink.objects.create(
            step=step,
            patient=patient,
            created_by=actor,
            created_at=now,
            expires_at=now + timedelta(days=settings.FOLLOWUP_QUESTIONNAIRE_DAYS),
        )
        _event(link, QuestionnaireEventKind.REQUESTED, actor=actor, at=now)
        transaction.on_commit(lambda: tasks.send_questionnaire_email.delay(link.id), robust=True)
    return link


def questionnaire_email_send(*, link_id: int) -> bool:
    """Send the link's e-mail, once: the token is made and its hash claimed in one conditional UPDATE, so a
    second run (a retry, a duplicate delivery) finds nothing to claim. A failed send gives the claim back and
    raises, for the task to retry. Returns whether this call sent it."""
    token = _signer().sign(secrets.token_urlsafe(24))
    now = timezone.now()
    claimed = QuestionnaireLink.objects.filter(id=link_id, token_hash="", answered_at__isnull=True, expires_at__gt=now).update(
        token_hash=hash_link_token(token), sent_at=now
    )
    if claimed != 1:
        return False
    link = QuestionnaireLink.objects.select_related("patient", "step__template").get(id=link_id)
    url = settings.CLINIC_BASE_URL + reverse("followup:questionnaire", args=[token])
    year = link.step.template.code.removeprefix("ltfu-year-")
    body = (
        f"Dear {link.patient.given_name},\n\n"
        f"It is time for your year {year} follow-up after your CAR-T cell therapy. Please answer a few short questions "
        f"at this link (it works once, until {timezone.localtime(link.expires_at):%d %B %Y}):\n\n{url}\n\n"
        "If you did not expect this e-mail, or have questions, please call the clinic.\n"
    )
    try:
        EmailMessage(subject="Your annual follow-up questionnaire", body=body, to=[link.patient.email]).send(fail_silently=False)
    except Exception:
        # Give the claim back: the retry makes a new token (this one was never delivered).
        QuestionnaireLink.objects.filter(id=link_id, token_hash=hash_link_token(token)).update(token_hash="", sent_at=None)
        raise
    _event(link, QuestionnaireEventKind.SENT, at=now)
    log.info("Questionnaire link %s e-mailed", link.public_id)
    return True


def questionnaire_link_for_token(token: str) -> QuestionnaireLink | None:
    """The link a token opens: signed by us, known, sent, not yet answered and not expired; else None."""
    try:
        _signer().unsign(token, max_age=timedelta(days=settings.FOLLOWUP_QUESTIONNAIRE_DAYS))
    except signing.BadSignature:
        return None
    return (
        QuestionnaireLink.objects.select_related("patient", "step__template", "step__journey")
        .filter(token_hash=hash_link_token(token), answered_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


def questionnaire_fields(link: QuestionnaireLink) -> list[dict]:
    """The step's own record fields that the patient answers (not how the contact was made, nothing computed)."""
    return [spec for spec in link.step.template.record_fields if spec.get("name") != CONTACT_FIELD and not spec.get("computed")]


def questionnaire_answer(*, token: str, answers: dict, client_ip: str = "") -> QuestionnaireLink:
    """Take the patient's answers, once: validated by the step's record schema, then the link is claimed by a
    conditional UPDATE (a second submit, or a second tab, finds it answered). The step stays pending for a
    nurse to review and sign."""
    link = questionnaire_link_for_token(token)
    if link is None:
        raise Conflict("This link has expired or was already used.")
    specs = records.parse_specs(questionnaire_fields(link))
    record, errors = records.record_errors(specs, answers, facts=None)
    if errors:
        raise InvalidInput("Some answers need another look.", field_errors=errors)
    if any(spec.get("name") == CONTACT_FIELD for spec in link.step.template.record_fields):
        record[CONTACT_FIELD] = CONTACT_BY_QUESTIONNAIRE
    now = timezone.now()
    with transaction.atomic():
        claimed = QuestionnaireLink.objects.filter(id=link.id, answered_at__isnull=True, expires_at__gt=now).update(
            answered_at=now, answers=record
        )
        if claimed != 1:
            raise Conflict("This link has expired or was already used.")
        _event(link, QuestionnaireEventKind.ANSWERED, at=now, detail={"client_ip": client_ip} if client_ip else {})
    link.refresh_from_db()
    return link


def questionnaire_review(
    *,
    actor,
    link_id: int,
    performed_at=None,
    notes: str = "",
    signature_meaning: str = "performed",
    record: dict,
    expected_version: int | None = None,
) -> Step:
    """A nurse's (or coordinator's) review of the patient's answers: the step is recorded and signed through
    journeys' step_complete, with what the reviewer confirmed or changed, and the link marked reviewed."""
    link = QuestionnaireLink.objects.select_related("step__template").get(id=link_id)
    authorize_step_resolution(actor, link.step.template.responsible_role)
    if link.answered_at is None:
        raise Conflict("The patient has not answered yet.")
    if link.reviewed_at is not None:
        raise Conflict("These answers were already reviewed.")
    with transaction.atomic():
        step = journey_services.step_complete(
            actor=actor,
            step_id=link.step_id,
            performed_at=performed_at or link.answered_at,
            notes=notes,
            signature_meaning=signature_meaning,
            record=record,
            expected_version=expected_version,
        )
        now = timezone.now()
        if QuestionnaireLink.objects.filter(id=link.id, reviewed_at__isnull=True).update(reviewed_at=now, reviewed_by=actor) != 1:
            raise Conflict("These answers were already reviewed.")
        _event(link, QuestionnaireEventKind.REVIEWED, actor=actor, at=now)
    return step
