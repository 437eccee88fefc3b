"""The calendar, the record-status grid, the CSV exports and the calendar feed's pages. Reads come from
selectors, writes from services; the views only parse the request and choose the template."""

import calendar as month_calendar
from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods, require_POST

from carclinic.errors import NotPermitted
from journeys.forms import DashboardFilterForm
from journeys.models import StageNumber
from notifications.models import ReminderKind, ReminderState
from planning import exports, feed, selectors, services
from planning.models import CalendarFeedToken, CalendarKind, DataExport, ExportKind, hash_feed_token
from staff.access import role_required
from staff.roles import Action, Role, can

FILTER_NAMES = ("indication", "stage", "coordinator")


def _filters(data) -> tuple[DashboardFilterForm, dict]:
    form = DashboardFilterForm({name: data[name] for name in FILTER_NAMES if data.get(name)} or None)
    return form, (form.filters() if form.is_bound else {})


def _range(view: str, start: date) -> tuple[date, date, date, date]:
    """(first day shown, last day shown, previous start, next start) for a week or a month, weeks from Monday."""
    if view == "month":
        first = start.replace(day=1)
        last = first.replace(day=month_calendar.monthrange(first.year, first.month)[1])
        previous = (first - timedelta(days=1)).replace(day=1)
        following = last + timedelta(days=1)
        return first, last, previous, following
    monday = start - timedelta(days=start.weekday())
    return monday, monday + timedelta(days=6), monday - timedelta(days=7), monday + timedelta(days=7)


def _calendar_params(data) -> tuple[str, date]:
    view = "month" if data.get("view") == "month" else "week"
    try:
        start = parse_date(data.get("start") or "") or timezone.localdate()
    except ValueError:  # a well-formed but impossible date (2026-02-31)
        start = timezone.localdate()
    return view, start


@role_required(Action.VIEW_CLINICAL)
def calendar_page(request):
    view, start = _calendar_params(request.GET)
    form, filters = _filters(request.GET)
    first, last, previous, following = _range(view, start)
    today = timezone.localdate()
    days = selectors.calendar(first_day=first, last_day=last, **filters)
    kept = {name: request.GET[name] for name in FILTER_NAMES if request.GET.get(name)}

    def link(**params):
        return reverse("planning:calendar") + "?" + urlencode({**kept, "view": view, **params})

    return render(
        request,
        "planning/calendar.html",
        {
            "form": form,
            "view": view,
            "first": first,
            "last": last,
            "today": today,
            "days": days,
            "kinds": CalendarKind.choices,
            "totals": {kind: sum(day.load[kind] for day in days) for kind in CalendarKind.values},
            "previous_url": link(start=previous.isoformat()),
            "next_url": link(start=following.isoformat()),
            "today_url": link(start=today.isoformat()),
            "week_url": link(view="week", start=first.isoformat()),
            "month_url": link(view="month", start=first.isoformat()),
            "kept": kept,
            "may_export": can(request.user, Action.EXPORT_DATA),
            "export_range": [("view", view), ("start", first.isoformat())],
        },
    )


@role_required(Action.VIEW_CLINICAL)
def grid_page(request):
    form, filters = _filters(request.GET)
    steps_of = _stage_or_none(request.GET.get("steps"))
    paginator = Paginator(selectors.grid_journeys(**filters), selectors.GRID_PATIENTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    columns, rows = selectors.grid_rows(list(page.object_list), stage=steps_of)
    for journey, _ in rows:  # one reverse() per row, not per cell: a page holds 50 × ~50 cells
        journey.patient_url = reverse("patient_detail", args=[journey.patient.public_id])
    kept = {name: request.GET[name] for name in FILTER_NAMES if request.GET.get(name)}
    if steps_of:
        kept["steps"] = steps_of
    return render(
        request,
        "planning/grid.html",
        {
            "form": form,
            "page": page,
            "columns": columns,
            "rows": rows,
            "steps_of": steps_of,
            "stages": StageNumber.choices,
            "kept": kept,
            "query_string": urlencode(kept),
            "may_export": can(request.user, Action.EXPORT_DATA),
        },
    )


def _stage_or_none(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number in StageNumber.values else None


# --- Exports ---------------------------------------------------------------------------------------


@role_required(Action.EXPORT_DATA)
def export_page(request):
    form, _ = _filters(request.GET)
    return render(
        request,
        "planning/exports.html",
        {
            "form": form,
            "kinds": ExportKind.choices,
            "stages": StageNumber.choices,
            "reminder_states": ReminderState.choices,
            "reminder_kinds": ReminderKind.choices,
            "today": timezone.localdate(),
            "recent": DataExport.objects.select_related("exported_by").filter(exported_by=request.user)[:20],
        },
    )


@role_required(Action.EXPORT_DATA)
@require_POST
def export_csv(request, kind: str):
    """The export by POST only: its filters ride in the body, never in an address a log would keep."""
    if kind not in ExportKind.values:
        raise Http404
    _, filters = _filters(request.POST)
    now = timezone.now()
    audit = dict(filters)
    if kind == ExportKind.OVERDUE:
        count, header, rows = exports.overdue_steps(now=now, **filters)
    elif kind == ExportKind.DUE_THIS_WEEK:
        count, header, rows = exports.due_this_week(now=now, **filters)
    elif kind == ExportKind.GRID:
        stage = _stage_or_none(request.POST.get("steps"))
        audit["steps_of_stage"] = stage
        count, header, rows = exports.grid(stage=stage, now=now, **filters)
    elif kind == ExportKind.CALENDAR:
        view, start = _calendar_params(request.POST)
        first, last, _, _ = _range(view, start)
        audit.update(first_day=first.isoformat(), last_day=last.isoformat())
        count, header, rows = exports.calendar_range(first_day=first, last_day=last, **filters)
    else:
        state = request.POST.get("state") if request.POST.get("state") in ReminderState.values else ""
        reminder_kind = request.POST.get("reminder_kind") if request.POST.get("reminder_kind") in ReminderKind.values else ""
        audit = {"state": state, "kind": reminder_kind}
        count, header, rows = exports.reminder_log(now=now, state=state, kind=reminder_kind)
    try:
        services.export_record(actor=request.user, kind=kind, filters=audit, row_count=count)
    except NotPermitted as refused:
        raise PermissionDenied(refused.message) from refused
    response = StreamingHttpResponse(exports.csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="carclinic-{kind}-{timezone.localdate(now):%Y-%m-%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# --- The calendar feed -----------------------------------------------------------------------------


@role_required(Action.VIEW_CLINICAL)
@require_http_methods(["GET", "POST"])
def feeds_page(request):
    """The user's calendar feeds: create one (its address is shown once, on this answer), or revoke one."""
    new_url = None
    if request.method == "POST":
        if request.POST.get("revoke"):
            try:
                services.feed_token_revoke(actor=request.user, feed_id=int(request.POST["revoke"]))
            except (NotPermitted, ValueError):
                raise PermissionDenied("That calendar feed is not yours.") from None
            messages.success(request, "The feed is revoked: its address no longer works.")
            return redirect("planning:feeds")
        _, token = services.feed_token_create(actor=request.user, label=request.POST.get("label", "").strip())
        new_url = request.build_absolute_uri(reverse("planning:feed", args=[token]))
    return render(
        request,
        "planning/feeds.html",
        {
            "feeds": CalendarFeedToken.objects.filter(user=request.user),
            "new_url": new_url,
            "days_back": feed.FEED_DAYS_BACK,
            "days_ahead": feed.FEED_DAYS_AHEAD,
        },
    )


def feed_ics(request, token: str):
    """The feed itself, for calendar programs that cannot sign in: the token is the key. Unknown, revoked or
    belonging to someone who may no longer see clinical data: 404, the same answer for each."""
    row = (
        CalendarFeedToken.objects.select_related("user")
        .filter(token_hash=hash_feed_token(token), revoked_at__isnull=True)
        .first()
    )
    if row is None or not can(row.user, Action.VIEW_CLINICAL):
        raise Http404
    services.feed_token_used(feed=row)
    filters = {"coordinator_id": row.user.id} if Role.COORDINATOR in row.user.roles else {}
    body = feed.feed_calendar(today=timezone.localdate(), host=request.get_host().split(":")[0], **filters)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
