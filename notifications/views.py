"""Pages of the reminder engine: a person's in-app notifications, the reminder log (per journey and for
the clinic) with snooze and cancel, e-mail preferences; and one small JSON view for monitoring.

Thin: reads through selectors, writes through services, domain errors become messages next to the
right field. Snooze and cancel are for the people who run the schedule (`Action.MANAGE_REMINDERS` in staff/roles.py);
everyone else who may see patients sees the log read-only, and gets 403 on the forms even by typed URL.
"""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carclinic.forms import form_submit
from journeys.models import Journey, Step
from notifications import selectors, services
from notifications.forms import PreferencesForm, ReminderCancelForm, ReminderLogFilterForm, ReminderSnoozeForm
from notifications.models import Channel, Notification, Reminder, ReminderKind, ReminderState
from staff.access import role_required
from staff.roles import Action, can

NOTIFICATIONS_PER_PAGE = 25
LOG_PER_PAGE = 50
# The patient page shows the latest reminders of the journey (counted per channel, so about half as many
# lines); the rest are one click away in the log.
JOURNEY_LOG_LIMIT = 40


def may_manage_reminders(user) -> bool:
    return can(user, Action.MANAGE_REMINDERS)


def _safe_next(request, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- In-app notifications -------------------------------------------------------------------------


@login_required
@require_GET
def notification_list(request):
    page = Paginator(selectors.notifications_for(user=request.user), NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    _explain_items(page.object_list)
    return render(request, "notifications/list.html", {"page": page})


def _explain_items(notes) -> None:
    """The messages carry ids only (they also travel by e-mail); on the signed-in page, name the patients
    (one query for the page) and say each line's kind in words."""
    journey_ids = {_uuid_or_none(item.get("journey")) for note in notes for item in note.items} - {None}
    patients = selectors.patients_of_journeys(journey_public_ids=journey_ids) if journey_ids else {}
    for note in notes:
        for item in note.items:
            item["patient"] = patients.get(item.get("journey") or "")
            if item["patient"] is not None:  # named: the short reference the e-mail needed is noise here
                item["text"] = item["text"].split(", patient ref ")[0]
            # A digest's lines name their section ("Overdue: …"); a reminder's line gets its kind.
            kind = item.get("kind")
            item["kind_label"] = ReminderKind(kind).label if kind in ReminderKind.values and kind != ReminderKind.DIGEST else ""


LATEST_UNREAD = 5


@login_required
@require_GET
def latest_unread(request):
    """A person's latest unread notifications, for their landing page (fetched by HTMX when it loads)."""
    notes = list(
        selectors.notifications_for(user=request.user, unread_only=True).order_by("-created_at", "-id")[: LATEST_UNREAD + 1]
    )
    _explain_items(notes[:LATEST_UNREAD])
    return render(
        request, "notifications/partials/latest_unread.html", {"notes": notes[:LATEST_UNREAD], "more": len(notes) > LATEST_UNREAD}
    )


@login_required
@require_GET
def unread_count(request):
    """The nav's count alone, for its HTMX poll (sent with X-Clinic-Poll: not activity for idle sign-out)."""
    return render(
        request, "notifications/partials/nav_count.html", {"unread": selectors.unread_notification_count(user=request.user)}
    )


@login_required
@require_POST
def notification_read(request, public_id):
    services.notification_mark_read(actor=request.user, notification_public_id=public_id)
    return redirect(_safe_next(request, reverse("notifications:list")))


@login_required
@require_POST
def notifications_read_all(request):
    count = services.notifications_mark_all_read(actor=request.user)
    messages.success(
        request, f"Marked {count} notification{'' if count == 1 else 's'} as read." if count else "Nothing was unread."
    )
    return redirect("notifications:list")


@login_required
@require_GET
def notification_open(request, public_id):
    """Follow a notification to the step it is about, marking it read on the way. The destination is
    worked out from the step's id, not from the stored link, so older notifications whose links used
    another URL scheme still open the right patient page."""
    notification = get_object_or_404(Notification, public_id=public_id, recipient=request.user)
    services.notification_mark_read(actor=request.user, notification_public_id=notification.public_id)
    steps = [item["step"] for item in notification.items if item.get("step")]
    # Only a step the notification is about: the query string is not a way to open anything else.
    step_id = request.GET.get("step") if request.GET.get("step") in steps else next(iter(steps), "")
    if step_id:
        step = Step.objects.select_related("journey__patient").filter(public_id=_uuid_or_none(step_id)).first()
        if step is not None:
            return HttpResponseRedirect(
                reverse("patient_detail", args=[step.journey.patient.public_id]) + f"#step-{step.public_id}"
            )
    return redirect("notifications:list")


def _uuid_or_none(text: str):
    try:
        return uuid.UUID(str(text))
    except ValueError:
        return None


# --- E-mail preferences ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    current = selectors.email_preferences(user=request.user)
    form = PreferencesForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        for kind in ReminderKind.values:
            if form.cleaned_data[kind] != current.get(kind, True):
                services.preference_set(actor=request.user, kind=kind, email=form.cleaned_data[kind])
        messages.success(request, "Saved. The app shows every reminder; e-mail only the kinds ticked.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form, "has_email": bool(request.user.email)})


# --- The reminder log -----------------------------------------------------------------------------


@dataclass
class ReminderRow:
    """One reminder to one person about one step (or day), with its copies on each channel: the log
    shows "Overdue, to Cora, in the app and by e-mail" once, not once per channel."""

    reminder: Reminder  # the first copy: step, kind, recipient and due time are the same for all
    copies: list[Reminder] = field(default_factory=list)
    may_change: bool = False

    @property
    def same_state(self) -> bool:
        return len({(copy.state, copy.snoozed_until) for copy in self.copies}) == 1

    @property
    def scheduled(self) -> Reminder | None:
        return next((copy for copy in self.copies if copy.state == ReminderState.PENDING), None)


def _rows(reminders, user) -> list[ReminderRow]:
    """Group the copies of each reminder (they sit next to each other in due-time order)."""
    manage = may_manage_reminders(user)
    rows: dict[tuple, ReminderRow] = {}
    for reminder in reminders:
        key = (reminder.step_id, reminder.kind, reminder.recipient_id, reminder.for_day)
        row = rows.setdefault(key, ReminderRow(reminder=reminder))
        row.copies.append(reminder)
    for row in rows.values():
        row.copies.sort(key=lambda copy: copy.channel != Channel.IN_APP)  # in the app first, always shown
        row.may_change = manage and row.scheduled is not None
    return list(rows.values())


@role_required(Action.VIEW_CLINICAL)
@require_GET
def journey_reminders(request, public_id):
    """The patient page's "Reminders" panel, fetched by HTMX when the page loads."""
    journey = get_object_or_404(Journey.objects.select_related("patient"), public_id=public_id)
    reminders = list(selectors.reminders_for_journey(journey_id=journey.id)[: JOURNEY_LOG_LIMIT + 1])
    more = len(reminders) > JOURNEY_LOG_LIMIT
    return render(
        request,
        "notifications/partials/journey_reminders.html",
        {
            "rows": _rows(reminders[:JOURNEY_LOG_LIMIT], request.user),
            "more": more,
            "journey": journey,
            "back": reverse("patient_detail", args=[journey.patient.public_id]),
        },
    )


@role_required(Action.VIEW_CLINICAL)
@require_GET
def reminder_log(request):
    form = ReminderLogFilterForm(request.GET or None)
    filters = form.filters() if form.is_bound else {}
    journey = None
    if form.is_bound and form.is_valid() and form.cleaned_data.get("journey"):
        journey = Journey.objects.select_related("patient").filter(public_id=form.cleaned_data["journey"]).first()
        filters["journey_id"] = journey.id if journey else -1
    now = timezone.now()
    page = Paginator(selectors.clinic_reminder_log(now=now, **filters), LOG_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/log.html",
        {
            "form": form,
            "page": page,
            "rows": _rows(page.object_list, request.user),
            "now": now,
            "journey": journey,
            "may_manage": may_manage_reminders(request.user),
            "query_string": urlencode({k: v for k, v in request.GET.items() if v and k != "page"}),
            "filters_active": any(v for k, v in request.GET.items() if k != "page" and v),
        },
    )


def _reminder_or_404(public_id) -> Reminder:
    return get_object_or_404(
        Reminder.objects.select_related("recipient", "step__template", "step__journey__patient"), public_id=public_id
    )


def _require_manage(request) -> None:
    if not may_manage_reminders(request.user):
        raise PermissionDenied("Only coordinators and physicians may snooze or cancel reminders.")


def _change_reminder(request, public_id, *, form_class, initial, apply, title, submit, done):
    """Snooze and cancel share everything but the form and the service call."""
    _require_manage(request)
    reminder = _reminder_or_404(public_id)
    default_back = (
        reverse("patient_detail", args=[reminder.step.journey.patient.public_id])
        if reminder.step_id
        else reverse("notifications:log")
    )
    back = _safe_next(request, default_back)
    form = form_class(request.POST or None, initial=initial(reminder))
    # Sent, cancelled or being sent meanwhile: the page says so plainly; nothing was changed.
    submission = form_submit(request, form, lambda data: apply(reminder, data), conflict_apart=True)
    if submission.done:
        messages.success(request, done(form.cleaned_data))
        return redirect(back)
    if submission.conflict:
        reminder = _reminder_or_404(public_id)
    return render(
        request,
        "notifications/reminder_change.html",
        {
            "reminder": reminder,
            "form": form,
            "conflict": submission.conflict,
            "title": title,
            "submit": submit,
            "back": back,
            "danger": form_class is ReminderCancelForm,
        },
        status=submission.status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def reminder_snooze(request, public_id):
    def initial(reminder):
        start = max(reminder.send_after, timezone.now())
        return {"until": timezone.localtime(start + timedelta(hours=2)).replace(second=0, microsecond=0)}

    def apply(reminder, data):
        services.reminder_snooze(
            actor=request.user, reminder_id=reminder.id, until=data["until"], reason=data["reason"], every_channel=True
        )

    return _change_reminder(
        request,
        public_id,
        form_class=ReminderSnoozeForm,
        initial=initial,
        apply=apply,
        title="Snooze a reminder",
        submit="Snooze",
        done=lambda data: f"Snoozed until {timezone.localtime(data['until']):%a %d %b %Y %H:%M}.",
    )


@login_required
@require_http_methods(["GET", "POST"])
def reminder_cancel(request, public_id):
    def apply(reminder, data):
        services.reminder_cancel(actor=request.user, reminder_id=reminder.id, reason=data["reason"], every_channel=True)

    return _change_reminder(
        request,
        public_id,
        form_class=ReminderCancelForm,
        initial=lambda reminder: {},
        apply=apply,
        title="Cancel a reminder",
        submit="Cancel this reminder",
        done=lambda data: "Reminder cancelled.",
    )


# --- Monitoring -----------------------------------------------------------------------------------


@staff_member_required
@require_GET
def health(request):
    figures = selectors.reminder_health()
    figures["now"] = figures["now"].isoformat()
    if figures["last_scan_at"]:
        figures["last_scan_at"] = figures["last_scan_at"].isoformat()
    return JsonResponse(figures)
