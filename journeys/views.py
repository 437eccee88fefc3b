"""Pages for coordinators, physicians and nurses. Thin: read through selectors, write through services,
turn domain errors into messages next to the right field."""

import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carclinic.errors import NotPermitted
from carclinic.forms import form_submit
from journeys import records, selectors, services
from journeys.clock import day_label
from journeys.forms import (
    DashboardFilterForm,
    Day0RescheduleForm,
    JourneyStartForm,
    JourneyStatusForm,
    StepCompleteForm,
    StepCorrectForm,
    StepSkipForm,
)
from journeys.models import EventKind, Journey, StageNumber, Step, StepStatus
from journeys.transitions import stage_waits_for
from patients import selectors as patient_selectors
from patients.models import Patient
from staff.access import role_required
from staff.roles import Action, Role, authorize_step_resolution, can, may_correct_step

logger = logging.getLogger(__name__)

# How often open dashboards and ward lists ask for fresh rows: settings.CLINIC_POLL_SECONDS.
# Polling does not count as activity for the idle sign-out (staff.middleware).
OVERDUE_COUNT_CAP = 500
# Wrong signature passwords before the session is ended: someone other than the signed-in person may be
# at the screen (21 CFR 11.300(d): attempts at unauthorised use are detected and acted on).
SIGNATURE_ATTEMPTS_LIMIT = 3
SIGNATURE_FAILURES_KEY = "clinic_signature_failures"
MY_STEPS_LIMIT = 200


def poll_seconds() -> int:
    from django.conf import settings

    return int(settings.CLINIC_POLL_SECONDS)


@login_required
def home(request):
    roles = request.user.roles
    # Nurses and physicians start from their own steps (and, for physicians, their notifications); the
    # whole clinic's dashboard is the coordinator's desk.
    if roles & {Role.NURSE, Role.PHYSICIAN} and not roles & {Role.COORDINATOR, Role.ADMIN}:
        return redirect("my_steps")
    return redirect("dashboard")


# --- Dashboard ------------------------------------------------------------------------------------

# A search names a patient (an MRN, a surname): it travels in a POST body and is kept in the session under
# a short random token, so the address bar, browser history and access logs show only the token.
SEARCH_SESSION_KEY = "clinic_searches"
SEARCH_TOKEN_SECONDS = 10 * 60  # shorter than the idle sign-out (15 min by default)
SEARCHES_KEPT = 10
FILTER_NAMES = ("indication", "stage", "coordinator")


def _searches(request) -> dict:
    """The session's searches that have not expired yet: {token: [text, saved at (epoch seconds)]}."""
    fresh_after = time.time() - SEARCH_TOKEN_SECONDS
    return {token: entry for token, entry in request.session.get(SEARCH_SESSION_KEY, {}).items() if entry[1] > fresh_after}


def _search_text(request) -> tuple[str, bool]:
    """(the text of the search the URL's token names, whether a token was given but has expired)."""
    token = request.GET.get("search", "")
    if not token:
        return "", False
    entry = _searches(request).get(token)
    return (entry[0], False) if entry else ("", True)


@role_required(Action.VIEW_CLINICAL)
@require_POST
def dashboard_search(request):
    """Take the search box's text by POST and send the browser to the dashboard with a token for it."""
    form = DashboardFilterForm(request.POST)
    form.is_valid()  # what is valid stays in cleaned_data; an invalid filter is dropped
    text = form.cleaned_data.get("q", "")
    params = {name: request.POST[name] for name in FILTER_NAMES if name in form.cleaned_data and request.POST.get(name)}
    if text:
        token = secrets.token_urlsafe(9)
        searches = _searches(request)
        searches[token] = [text, time.time()]
        request.session[SEARCH_SESSION_KEY] = dict(sorted(searches.items(), key=lambda item: item[1][1])[-SEARCHES_KEPT:])
        params["search"] = token
    return redirect(reverse("dashboard") + (f"?{urlencode(params)}" if params else ""))


def _dashboard_context(request) -> dict:
    # `q` in an address is ignored: a patient identifier there would land in logs (see dashboard_search).
    form = DashboardFilterForm({name: request.GET[name] for name in FILTER_NAMES if name in request.GET} or None)
    filters = form.filters() if form.is_bound else {}
    now = timezone.now()
    today = timezone.localdate(now)
    limit = selectors.DASHBOARD_LIST_LIMIT
    search_text, search_expired = _search_text(request)

    def cut(queryset):
        rows = list(queryset[: limit + 1])
        return {"rows": rows[:limit], "more": len(rows) > limit}

    def cut_steps(steps):
        rows = selectors.first_rows(steps, limit + 1)
        for step in rows:
            step.waits_for = _waits_for(step)
        return {"rows": rows[:limit], "more": len(rows) > limit}

    overdue = selectors.dashboard_overdue(now=now, **filters)
    due_today = selectors.dashboard_due(first_day=today, last_day=today, now=now, **filters)
    next_week = selectors.dashboard_due(
        first_day=today + timedelta(days=1), last_day=today + timedelta(days=7), now=now, **filters
    )
    pipeline = selectors.dashboard_pipeline(**filters)
    query_string = urlencode({k: v for k, v in request.GET.items() if v and k in FILTER_NAMES})
    return {
        "form": form,
        "now": now,
        "today": today,
        "pipeline": [(number, label, pipeline[number]) for number, label in StageNumber.choices],
        "pipeline_total": sum(pipeline.values()),
        "overdue": cut_steps(overdue),
        "overdue_count": selectors.capped_count(overdue, OVERDUE_COUNT_CAP),
        "overdue_count_cap": OVERDUE_COUNT_CAP,
        "due_today": cut_steps(due_today),
        "next_week": cut_steps(next_week),
        "manufacturing": cut(selectors.manufacturing_queue(**filters)),
        "day0_at_risk": cut(selectors.dashboard_day0_at_risk(today=today, **filters)),
        "search_text": search_text,
        "search_expired": search_expired,
        "search_minutes": SEARCH_TOKEN_SECONDS // 60,
        "search_results": list(selectors.patient_search(text=search_text, **filters)) if search_text else None,
        "query_string": query_string,
        "poll_seconds": poll_seconds(),
        "filters_active": any(filters.values()) if filters else False,
    }


@role_required(Action.VIEW_CLINICAL)
def dashboard(request):
    return render(request, "journeys/dashboard.html", _dashboard_context(request))


@role_required(Action.VIEW_CLINICAL)
def dashboard_panels(request):
    """The dashboard's lists alone, for the HTMX poll that keeps an open dashboard current."""
    return render(request, "journeys/partials/dashboard_panels.html", _dashboard_context(request))


@role_required(Action.VIEW_CLINICAL)
def stage_list(request, number: int):
    if number not in StageNumber.values:
        raise Http404("No such stage.")
    form = DashboardFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else {}
    filters.pop("stage", None)
    journeys = selectors.journeys_in_stage(stage=number, **filters)
    page = Paginator(journeys, 50).get_page(request.GET.get("page"))
    today = timezone.localdate()
    for journey in page.object_list:
        journey.day_text = day_label(journey.day_number(today))
    return render(
        request,
        "journeys/stage_list.html",
        {
            "stage_number": number,
            "stage_label": StageNumber(number).label,
            "page": page,
            "today": today,
            "query_string": urlencode({k: v for k, v in request.GET.items() if v and k != "page"}),
        },
    )


# --- Patient page ---------------------------------------------------------------------------------


def _waits_for(step: Step) -> str:
    """For a blocked step (its stage has not started): what it waits for, the gate that is late instead."""
    return stage_waits_for(step.journey, step.stage.number) if step.is_blocked else ""


def _step_state(step: Step, now, today) -> tuple[str, str]:
    """(css class, words) for a step: the word is always shown, so colour is never the only signal.
    `step` comes with its journey and stage."""
    if step.status == StepStatus.DONE:
        return "done", "Done"
    if step.status == StepStatus.SKIPPED:
        return "skipped", "Skipped"
    if step.status == StepStatus.NOT_APPLICABLE:
        return "na", "Not applicable"
    if step.is_overdue(now):
        return "overdue", "Overdue"
    if step.is_blocked and step.window_opens_on <= today:
        # Its time has come but it cannot be done: the gate in front of it is what is late.
        return "blocked", f"Waiting for {_waits_for(step)}"
    if step.due_on == today:
        return "today", "Due today"
    if step.window_opens_on <= today:
        return "open", "Window open"
    return "upcoming", "Upcoming"


@role_required(Action.VIEW_CLINICAL)
def patient_detail(request, public_id):
    patient = get_object_or_404(Patient.objects.select_related("coordinator", "nurse", "physician"), public_id=public_id)
    now = timezone.now()
    today = timezone.localdate(now)
    journey = selectors.patient_journey(patient_id=patient.id)
    context = {
        "patient": patient,
        "age": patient.age_on(today),
        "journey": journey,
        "now": now,
        "today": today,
        "poll_seconds": poll_seconds(),
        "measurement": selectors.latest_measurement(patient_id=patient.id),
        "consents": list(patient_selectors.patient_consents(patient_id=patient.id)),
    }
    if journey is not None:
        timeline = selectors.patient_timeline(journey=journey)
        overdue_count = 0
        for steps in timeline["steps_by_stage"].values():
            for step in steps:
                step.state_class, step.state_word = _step_state(step, now, today)
                step.day_text = day_label(journey.day_number(step.due_on))
                step.may_record = _may_resolve(request.user, step)
                step.may_skip = _may_resolve(request.user, step, Action.SKIP_STEP)
                step.may_correct = step.status == StepStatus.DONE and may_correct_step(
                    request.user, responsible_role=step.template.responsible_role, recorded_by_id=step.completed_by_id
                )
                step.record_text = records.summary(step.template.record_fields, step.record)
                overdue_count += step.state_class == "overdue"
        for event in timeline["events"]:
            # The values as signed, from the event itself: the audit does not borrow the step's current state.
            if event.step_id and event.detail.get("record"):
                event.record_text = records.summary(event.step.template.record_fields, event.detail["record"])
            if event.kind == EventKind.STEP_CORRECTED:
                before, after = event.detail.get("before", {}), event.detail.get("after", {})
                event.correction_text = " · ".join(
                    filter(
                        None,
                        (
                            records.changes(event.step.template.record_fields, before.get("record", {}), after.get("record", {})),
                            "notes changed" if before.get("notes") != after.get("notes") else "",
                        ),
                    )
                )
        context.update(
            timeline,
            day_text=day_label(journey.day_number(today)),
            # The stage under way, and any stage with a late step or one waiting for its gate, open; the rest
            # folded to keep the page short.
            stage_rows=[
                (
                    stage,
                    steps,
                    stage.status == "in_progress" or any(step.state_class in ("overdue", "blocked") for step in steps),
                    sum(step.is_resolved for step in steps),
                )
                for stage, steps in ((stage, timeline["steps_by_stage"][stage.number]) for stage in timeline["stages"])
            ],
            overdue_count=overdue_count,
            day0_at_risk=journey.is_day0_at_risk(today),
            journey_open=journey.is_open,
            discharge=selectors.discharge_summary(journey=journey),
        )
    return render(request, "journeys/patient.html", context)


@role_required(Action.PRINT_DISCHARGE_SHEET)
@require_GET
def discharge_sheet(request, public_id):
    """The sheet the patient takes home: Day 0, the restrictions and their last days, whom to call, what to watch
    for. Printable (print CSS); there is none before the infusion."""
    journey = get_object_or_404(Journey.objects.select_related("patient", "patient__physician", "protocol"), public_id=public_id)
    summary = selectors.discharge_summary(journey=journey)
    if summary is None:
        raise Http404("No discharge sheet before the infusion.")
    return render(request, "journeys/discharge_sheet.html", {"journey": journey, "patient": journey.patient, **summary})


def _may_resolve(user, step: Step, action: str = Action.COMPLETE_STEP) -> bool:
    """Whether this user may record (or skip) this step: physician-only steps stay with physicians."""
    try:
        authorize_step_resolution(user, step.template.responsible_role, action)
    except NotPermitted:
        return False
    return True


def _journey_or_404(public_id) -> Journey:
    return get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)


def _form_page(request, *, template="journeys/journey_form.html", status=200, **context):
    return render(request, template, context, status=status)


@role_required(Action.START_JOURNEY)
@require_http_methods(["GET", "POST"])
def journey_start(request, public_id):
    patient = get_object_or_404(Patient, public_id=public_id)
    form = JourneyStartForm(request.POST or None, initial={"leukapheresis_date": timezone.localdate() + timedelta(days=7)})
    submission = form_submit(
        request,
        form,
        lambda data: services.journey_start(
            actor=request.user,
            patient_id=patient.id,
            protocol_id=data["protocol"].id,
            leukapheresis_date=data["leukapheresis_date"],
            day0_planned=data["day0_planned"],
        ),
    )
    if submission.done:
        messages.success(request, "Journey started. Stage 1 (leukapheresis) is under way.")
        return redirect("patient_detail", public_id=patient.public_id)
    return _form_page(
        request,
        status=submission.status,
        form=form,
        patient=patient,
        title="Start a journey",
        submit="Start journey",
        intro="Every step of the protocol is scheduled from the leukapheresis date and Day 0.",
    )


@role_required(Action.RESCHEDULE_DAY0)
@require_http_methods(["GET", "POST"])
def day0_reschedule(request, public_id):
    journey = _journey_or_404(public_id)
    form = Day0RescheduleForm(request.POST or None, initial={"new_day0": journey.day0_planned, "version": journey.version})
    submission = form_submit(
        request,
        form,
        lambda data: services.day0_reschedule(
            actor=request.user,
            journey_id=journey.id,
            new_day0=data["new_day0"],
            reason=data["reason"],
            expected_version=data["version"],
        ),
    )
    if submission.done:
        messages.success(
            request, f"Day 0 moved to {form.cleaned_data['new_day0']:%d %b %Y}; the steps anchored on it moved with it."
        )
        return redirect("patient_detail", public_id=journey.patient.public_id)
    return _form_page(
        request,
        status=submission.status,
        form=form,
        patient=journey.patient,
        journey=journey,
        title="Reschedule Day 0",
        submit="Move Day 0",
        intro=f"Planned Day 0 is {journey.day0_planned:%d %b %Y}. Every pending step anchored on Day 0 moves with it.",
    )


STATUS_CHANGES = {
    "hold": (
        Action.HOLD_JOURNEY,
        services.journey_hold,
        "Put the journey on hold",
        "Put on hold",
        "No steps are recorded or flagged overdue while the journey is on hold.",
    ),
    "resume": (Action.HOLD_JOURNEY, services.journey_resume, "Resume the journey", "Resume", ""),
    "withdraw": (
        Action.WITHDRAW_JOURNEY,
        services.journey_withdraw,
        "Withdraw the patient from the journey",
        "Withdraw",
        "This ends the journey: its pending steps become not applicable. It cannot be undone.",
    ),
}


@login_required
@require_http_methods(["GET", "POST"])
def journey_status(request, public_id, change: str):
    if change not in STATUS_CHANGES:
        raise Http404("No such change.")
    action, service, title, submit, intro = STATUS_CHANGES[change]
    if not can(request.user, action):
        raise PermissionDenied("Your role does not allow this.")
    journey = _journey_or_404(public_id)
    form = JourneyStatusForm(request.POST or None, initial={"version": journey.version})
    submission = form_submit(
        request,
        form,
        lambda data: service(actor=request.user, journey_id=journey.id, reason=data["reason"], expected_version=data["version"]),
    )
    if submission.done:
        messages.success(request, f"{title}: done.")
        return redirect("patient_detail", public_id=journey.patient.public_id)
    return _form_page(
        request,
        status=submission.status,
        form=form,
        patient=journey.patient,
        journey=journey,
        title=title,
        submit=submit,
        intro=intro,
        danger=change == "withdraw",
    )


# --- Steps: the nurse's list and recording -------------------------------------------------------


@role_required(Action.COMPLETE_STEP)
def my_steps(request):
    now = timezone.now()
    today = timezone.localdate(now)
    steps = selectors.first_rows(selectors.my_steps_today(user=request.user, today=today), MY_STEPS_LIMIT)
    for step in steps:
        step.state_class, step.state_word = _step_state(step, now, today)
        step.day_text = day_label(step.journey.day_number(today))  # where the patient stands today
    template = "journeys/partials/my_steps_list.html" if request.headers.get("HX-Request") else "journeys/my_steps.html"
    return render(request, template, {"steps": steps, "now": now, "today": today, "poll_seconds": poll_seconds()})


def _step_or_404(public_id) -> Step:
    return get_object_or_404(
        Step.objects.select_related("template", "stage", "journey", "journey__patient", "completed_by"), public_id=public_id
    )


@role_required(Action.COMPLETE_STEP)
@require_http_methods(["GET", "POST"])
def step_complete(request, public_id):
    step = _step_or_404(public_id)
    if not _may_resolve(request.user, step):
        raise PermissionDenied(f"Only a {step.template.get_responsible_role_display().lower()} may record this step.")
    specs = step.template.record_fields
    # Only a dosing step pays the query for the height and weight its calculated dose needs.
    measurement = (
        selectors.latest_measurement(patient_id=step.journey.patient_id) if any(spec.get("per_m2") for spec in specs) else None
    )
    facts = selectors.record_facts(
        journey_id=step.journey_id, patient_id=step.journey.patient_id, specs=specs, on=timezone.localdate()
    )
    form = StepCompleteForm(
        request.POST or None,
        signer=request.user,
        record_fields=specs,
        measurement=measurement,
        facts=facts,
        initial={"version": step.version},
        late=step.is_overdue(timezone.now()),
        two_person=step.template.two_person,
    )
    return _signed_step_page(
        request,
        step,
        form,
        template="journeys/step_complete.html",
        done_url=_safe_next(request),
        done_message=f"Recorded and signed: {step.template.name} for {step.journey.patient.full_name}.",
        call=lambda data: services.step_complete(
            actor=request.user,
            step_id=step.id,
            performed_at=data["performed_at"],
            notes=data["notes"],
            signature_meaning=data["signature_meaning"],
            expected_version=data["version"],
            record=data["record"],
            second_signer_username=data.get("second_signer_username", ""),
            second_signer_password=data.get("second_signer_password", ""),
        ),
    )


def _signed_step_page(request, step, form, *, template: str, call, done_message: str, done_url: str):
    """Run a signed form over a step. A conflict (someone else was first, or its schedule changed) is said
    plainly above the step as it is now; nothing is overwritten."""
    submission = form_submit(request, form, call, conflict_apart=True)
    if submission.done:
        request.session.pop(SIGNATURE_FAILURES_KEY, None)
        messages.success(request, done_message)
        return redirect(done_url)
    if submission.conflict:
        step = _step_or_404(step.public_id)
    if signed_out := _after_wrong_signature(request, form, step):
        return signed_out
    journey = step.journey
    return render(
        request,
        template,
        {
            "step": step,
            "form": form,
            "conflict": submission.conflict,
            "patient": journey.patient,
            "day_text": day_label(journey.day_number(timezone.localdate())),
            "next": done_url,
        },
        status=submission.status,
    )


def _after_wrong_signature(request, form, step):
    """Count a wrong signature password; after too many, sign the person out (someone else may be at the
    screen). Returns the redirect to the sign-in page then, else None."""
    if not ("password" in form.errors and request.POST.get("password")):
        return None
    failures = request.session.get(SIGNATURE_FAILURES_KEY, 0) + 1
    request.session[SIGNATURE_FAILURES_KEY] = failures
    logger.warning("Wrong signature password: user %s, step %s, attempt %s", request.user.pk, step.public_id, failures)
    if failures < SIGNATURE_ATTEMPTS_LIMIT:
        return None
    logout(request)
    messages.error(
        request, f"You were signed out after {failures} wrong signature passwords. Nothing was recorded. Sign in again to go on."
    )
    return redirect("login")


@role_required(Action.CORRECT_STEP)
@require_http_methods(["GET", "POST"])
def step_correct(request, public_id):
    step = _step_or_404(public_id)
    if step.status != StepStatus.DONE or not may_correct_step(
        request.user, responsible_role=step.template.responsible_role, recorded_by_id=step.completed_by_id
    ):
        raise PermissionDenied("You may not correct this step's record.")
    form = StepCorrectForm(
        request.POST or None,
        signer=request.user,
        record_fields=step.template.record_fields,
        step=step,
        indication=step.journey.patient.indication,
    )
    return _signed_step_page(
        request,
        step,
        form,
        template="journeys/step_correct.html",
        done_url=reverse("patient_detail", args=[step.journey.patient.public_id]),
        done_message=f"Corrected and signed: {step.template.name}. The first record stays in the history.",
        call=lambda data: services.step_record_correct(
            actor=request.user,
            step_id=step.id,
            record=data["record"],
            notes=data["notes"],
            reason=data["reason"],
            expected_version=data["version"],
        ),
    )


@role_required(Action.SKIP_STEP)
@require_http_methods(["GET", "POST"])
def step_skip(request, public_id):
    step = _step_or_404(public_id)
    if not _may_resolve(request.user, step, Action.SKIP_STEP):
        raise PermissionDenied(f"Only a {step.template.get_responsible_role_display().lower()} may skip this step.")
    form = StepSkipForm(request.POST or None, initial={"version": step.version})
    submission = form_submit(
        request,
        form,
        lambda data: services.step_skip(
            actor=request.user, step_id=step.id, reason=data["reason"], expected_version=data["version"]
        ),
    )
    if submission.done:
        messages.success(request, f"Skipped: {step.template.name}.")
        return redirect("patient_detail", public_id=step.journey.patient.public_id)
    return _form_page(
        request,
        status=submission.status,
        form=form,
        patient=step.journey.patient,
        journey=step.journey,
        title=f"Skip: {step.template.name}",
        submit="Skip this step",
        intro=f"Due {step.due_on:%d %b %Y}. Skipping counts as resolved; the reason goes into the audit trail.",
    )


def _safe_next(request) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return reverse("my_steps")
