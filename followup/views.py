"""Follow-up pages: the patient page's "Follow-up" panel (loaded by URL, so journeys never imports this app),
the dashboard's secondary malignancies, sending and reviewing the years 6–15 questionnaire, and the
patient's own questionnaire page, which needs no sign-in and shows nothing but the questions."""

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from carclinic.errors import Conflict, DomainError, NotPermitted
from carclinic.forms import apply_domain_error, form_submit
from followup import selectors, services
from followup.charts import line_chart
from followup.forms import QuestionnaireForm
from followup.models import QuestionnaireLink, hash_link_token
from journeys import records
from journeys.clock import day_label
from journeys.forms import StepCompleteForm, form_value
from journeys.models import Journey, Step
from staff.access import role_required
from staff.client_ip import client_ip
from staff.roles import Action, authorize_step_resolution, can

CHARTS = (
    # (record key, title, unit, threshold setting)
    ("cd19_b_cells", "CD19+ B cells", "/µL", "FOLLOWUP_B_CELL_APLASIA_BELOW_PER_UL"),
    ("igg", "IgG", "g/L", "FOLLOWUP_IGG_LOW_BELOW_G_L"),
    ("disease_activity", "Disease activity score", "", None),
)


def _charts(status: selectors.FollowUpStatus) -> list[dict]:
    charts = []
    for key, title, unit, threshold_setting in CHARTS:
        series = status.series(key)
        if not series:
            continue
        threshold = Decimal(str(getattr(settings, threshold_setting))) if threshold_setting else None
        charts.append(
            {
                "key": key,
                "title": title,
                "unit": unit,
                "threshold": threshold,
                "chart": line_chart([(visit.day, value) for visit, value in series], marker_x=0, threshold=threshold),
                "rows": [(visit, value, day_label(visit.day)) for visit, value in series],
            }
        )
    return charts


@role_required(Action.VIEW_CLINICAL)
def patient_panel(request, public_id):
    """The patient page's "Follow-up" panel, fetched by HTMX when the page loads: three queries, any history."""
    journey = get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)
    status = selectors.followup_status(journey=journey)
    links = selectors.questionnaire_links(journey=journey)
    may_send = can(request.user, Action.SEND_QUESTIONNAIRE)
    return render(
        request,
        "followup/partials/patient_panel.html",
        {
            "journey": journey,
            "status": status,
            "charts": _charts(status),
            "links": links,
            "may_send": may_send,
            "may_review": can(request.user, Action.COMPLETE_STEP),
            "questionnaire_steps": selectors.questionnaire_steps(journey=journey, today=timezone.localdate()) if may_send else [],
            "aplasia_below": settings.FOLLOWUP_B_CELL_APLASIA_BELOW_PER_UL,
            "igg_below": settings.FOLLOWUP_IGG_LOW_BELOW_G_L,
        },
    )


@role_required(Action.REPORT_SAFETY)
def malignancies(request):
    """The dashboard's "Secondary malignancies" card: one query, whatever the number of patients."""
    steps = list(selectors.malignancy_steps()[: selectors.MALIGNANCY_LIST_LIMIT + 1])
    more = len(steps) > selectors.MALIGNANCY_LIST_LIMIT
    return render(
        request, "followup/partials/malignancies.html", {"steps": steps[: selectors.MALIGNANCY_LIST_LIMIT], "more": more}
    )


@role_required(Action.SEND_QUESTIONNAIRE)
@require_POST
def questionnaire_send(request, public_id):
    step = get_object_or_404(Step.objects.select_related("journey__patient"), public_id=public_id)
    try:
        services.questionnaire_link_send(actor=request.user, step_id=step.id)
    except NotPermitted as error:
        raise PermissionDenied(error.message) from error
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "The questionnaire link will be e-mailed to the patient.")
    return redirect("patient_detail", public_id=step.journey.patient.public_id)


@role_required(Action.COMPLETE_STEP)
@require_http_methods(["GET", "POST"])
def questionnaire_review(request, public_id):
    """The step's normal record form with the patient's answers filled in: the reviewer checks, corrects and signs."""
    link = get_object_or_404(
        QuestionnaireLink.objects.select_related("step__template", "step__stage", "step__journey__patient"), public_id=public_id
    )
    step = link.step
    try:
        authorize_step_resolution(request.user, step.template.responsible_role)
    except NotPermitted as error:
        raise PermissionDenied(error.message) from error
    if not link.awaiting_review:
        messages.info(request, "These answers are not awaiting review.")
        return redirect("patient_detail", public_id=step.journey.patient.public_id)
    initial = {"version": step.version, "performed_at": timezone.localtime(link.answered_at).replace(second=0, microsecond=0)}
    for spec in records.parse_specs(step.template.record_fields):
        if spec.name in link.answers:
            initial[records.error_key(spec.name)] = form_value(spec, link.answers[spec.name])
    form = StepCompleteForm(request.POST or None, signer=request.user, record_fields=step.template.record_fields, initial=initial)
    form.fields["notes"].initial = "Answered by the patient by questionnaire; reviewed."
    back = reverse("patient_detail", args=[step.journey.patient.public_id])
    submission = form_submit(
        request,
        form,
        lambda data: services.questionnaire_review(
            actor=request.user,
            link_id=link.id,
            performed_at=data["performed_at"],
            notes=data["notes"],
            signature_meaning=data["signature_meaning"],
            record=data["record"],
            expected_version=data["version"],
        ),
        conflict_apart=True,
    )
    if submission.done:
        messages.success(request, f"Reviewed and signed: {step.template.name}.")
        return redirect(back)
    return render(
        request,
        "journeys/step_complete.html",
        {
            "step": step,
            "form": form,
            "conflict": submission.conflict,
            "patient": step.journey.patient,
            "day_text": day_label(step.journey.day_number(timezone.localdate())),
            "next": back,
            "answered_by_patient": link,
        },
        status=submission.status,
    )


# --- The patient's questionnaire (no sign-in) ----------------------------------------------------


def _over_limit(request, token: str) -> bool:
    """Cache-counted tries per client address (every request) and per link (every answer sent), per hour:
    a token cannot be guessed by volume, nor one link hammered."""
    keys = [(f"followup:q:ip:{client_ip(request)}", settings.FOLLOWUP_QUESTIONNAIRE_TRIES_PER_IP)]
    if request.method == "POST":
        keys.append((f"followup:q:link:{hash_link_token(token)}", settings.FOLLOWUP_QUESTIONNAIRE_TRIES_PER_LINK))
    over = False
    for key, limit in keys:
        cache.add(key, 0, timeout=3600)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=3600)
            count = 1
        over = over or count > limit
    return over


def _private(response):
    # The page is the patient's alone: not indexed, not cached, and the token never leaves in a Referer.
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def questionnaire(request, token: str):
    if _over_limit(request, token):
        return _private(render(request, "followup/questionnaire_closed.html", {"reason": "too_many"}, status=429))
    link = services.questionnaire_link_for_token(token)
    if link is None:
        return _private(render(request, "followup/questionnaire_closed.html", {"reason": "closed"}, status=404))
    form = QuestionnaireForm(request.POST or None, specs=services.questionnaire_fields(link))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.questionnaire_answer(token=token, answers=form.answers(), client_ip=client_ip(request) or "")
            except Conflict:
                return _private(render(request, "followup/questionnaire_closed.html", {"reason": "closed"}, status=409))
            except DomainError as error:
                apply_domain_error(form, error)
                status = 400
            else:
                return _private(render(request, "followup/questionnaire_closed.html", {"reason": "thanks"}))
        else:
            status = 400
    return _private(
        render(
            request,
            "followup/questionnaire.html",
            {"form": form, "given_name": link.patient.given_name, "expires_at": link.expires_at},
            status=status,
        )
    )
