"""The calendar, the record-status grid, the CSV exports (audited) and the calendar feed: who may open what,
what they show, constant query counts, and the feed parsed back by the icalendar library."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from journeys.models import Step, StepStatus, StepTemplate
from patients.models import Patient
from planning import selectors
from planning.models import CalendarFeedToken, CalendarKind, DataExport, ExportKind
from tests.web.bulk import build_patients

pytestmark = pytest.mark.django_db

CLINICAL = ["coordinator", "nurse", "physician", "viewer", "admin"]


@pytest.fixture
def every_role(users, make_user):
    return {**users, "no_role": make_user()}


# --- Which steps are which kind: derived from the shipped protocol's data ------------------------------


def test_calendar_kinds_come_from_the_protocols_milestones_stages_and_codes(protocol):
    kinds = selectors.calendar_kinds_by_template()
    by_code = {template.code: kinds.get(template.id) for template in protocol.step_templates.all()}
    assert by_code["leukapheresis"] == CalendarKind.COLLECTION  # milestone collection
    assert by_code["ld-day-5"] == CalendarKind.LYMPHODEPLETION  # the first chemotherapy day, a nurse's step
    assert by_code["renal-dose-review"] is None  # the physician's review before it takes no chair
    assert by_code["infusion"] == CalendarKind.INFUSION  # milestone infusion (Day 0)
    assert by_code["discharge"] == CalendarKind.DISCHARGE
    assert by_code["visit-day-14"] == by_code["ltfu-year-15"] == CalendarKind.FOLLOW_UP  # stage 5
    assert by_code["qc-release"] is None and by_code["ld-day-4"] is None
    assert list(kinds.values()).count(CalendarKind.LYMPHODEPLETION) == StepTemplate.objects.values("protocol").distinct().count()


# --- Pages × roles -----------------------------------------------------------------------------------

PAGES = {
    "calendar": ("planning:calendar", CLINICAL),
    "grid": ("planning:grid", CLINICAL),
    "feeds": ("planning:feeds", CLINICAL),
    "exports": ("planning:exports", ["coordinator", "physician", "admin"]),
}


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("who", [*CLINICAL, "no_role", "anonymous"])
def test_who_may_open_each_planning_page(client, every_role, journey, page, who):
    name, allowed = PAGES[page]
    if who != "anonymous":
        client.force_login(every_role[who])
    response = client.get(reverse(name))
    if who == "anonymous":
        assert response.status_code == 302 and reverse("login") in response["Location"]
    else:
        assert response.status_code == (200 if who in allowed else 403)


@pytest.mark.parametrize("who", CLINICAL)
def test_the_nav_links_calendar_and_grid_for_clinical_roles(client, every_role, who):
    client.force_login(every_role[who])
    page = client.get(reverse("planning:calendar")).content.decode()
    assert f'href="{reverse("planning:calendar")}"' in page and f'href="{reverse("planning:grid")}"' in page


# --- The calendar ------------------------------------------------------------------------------------


def test_the_calendar_shows_the_collection_with_name_mrn_birth_date_and_a_link(client, coordinator, journey):
    patient = journey.patient
    client.force_login(coordinator)
    response = client.get(reverse("planning:calendar"), {"start": journey.leukapheresis_date.isoformat()})
    page = response.content.decode()
    day = next(d for d in response.context["days"] if d.day == journey.leukapheresis_date)
    assert day.load[CalendarKind.COLLECTION] == 1 and day.total == 1
    assert f"{patient.family_name}, {patient.given_name}" in page and patient.mrn in page
    assert patient.date_of_birth.strftime("%d %b %Y") in page
    assert reverse("patient_detail", args=[patient.public_id]) in page
    assert 'rel="prev"' in page and 'rel="next"' in page


def test_the_calendar_month_and_week_ranges_and_the_phases_that_follow(client, coordinator, journey):
    client.force_login(coordinator)
    day0 = journey.day0_planned
    month = client.get(reverse("planning:calendar"), {"view": "month", "start": day0.isoformat()}).context
    assert month["first"] == day0.replace(day=1) and month["last"].month == day0.month
    week = client.get(reverse("planning:calendar"), {"start": day0.isoformat()}).context
    assert week["first"].weekday() == 0 and (week["last"] - week["first"]).days == 6
    kinds_that_week = {kind for day in week["days"] for kind, n in day.load.items() if n}
    assert CalendarKind.INFUSION in kinds_that_week


def test_the_calendar_filters_by_coordinator(client, coordinator, make_user):
    other = make_user("coordinator")
    build_patients(6, prefix="MINE", coordinator=coordinator)
    build_patients(4, prefix="THEIRS", coordinator=other)
    client.force_login(coordinator)
    today = timezone.localdate()
    everyone = selectors.calendar_steps(first_day=today - timedelta(days=120), last_day=today + timedelta(days=120))
    theirs = selectors.calendar_steps(
        first_day=today - timedelta(days=120), last_day=today + timedelta(days=120), coordinator_id=other.id
    )
    assert theirs.exists() and theirs.count() < everyone.count()
    assert set(theirs.values_list("journey__patient__coordinator", flat=True)) == {other.id}
    page = client.get(reverse("planning:calendar"), {"coordinator": other.id, "view": "month"}).content.decode()
    assert "MINE" not in page


def test_a_done_step_stands_on_the_day_it_was_performed_in_the_clinics_time_zone(at_clinic, journey):
    at_clinic(2026, 3, 2, 0, 30)  # 00:30 in Berlin is still 1 March in UTC
    step = journey.steps.get(template__code="leukapheresis")
    Step.objects.filter(pk=step.pk).update(status=StepStatus.DONE, performed_at=timezone.now(), completed_at=timezone.now())
    steps = selectors.calendar_steps(
        first_day=timezone.localdate() - timedelta(days=40), last_day=timezone.localdate() + timedelta(days=40)
    )
    assert steps.get(pk=step.pk).day.isoformat() == "2026-03-02"


# --- The grid ----------------------------------------------------------------------------------------


def test_the_grid_shows_each_state_in_words_and_links_each_cell(client, viewer):
    build_patients(5, prefix="GRID", overdue_every=1)
    client.force_login(viewer)
    response = client.get(reverse("planning:grid"))
    page = response.content.decode()
    assert "<table" in page and '<th scope="col"><span class="row-name">Patient</span></th>' in page and 'scope="row"' in page
    states = {cell.state for _, cells in response.context["rows"] for cell in cells if cell}
    assert {"done", "late", "pending", "blocked"} <= states
    assert re.search(r'class="cell cell-late"><a href="/patients/[0-9a-f-]+/#step-[0-9a-f-]+">late</a>', page)
    assert "GRID0000001" in page  # MRN beside the name


def test_the_grid_of_one_stage_has_only_that_stages_steps_and_pages_by_fifty(client, coordinator):
    build_patients(55, prefix="PAGE")
    client.force_login(coordinator)
    response = client.get(reverse("planning:grid"), {"steps": 3})
    assert {template.stage for template in response.context["columns"]} == {3}
    assert len(response.context["rows"]) == 50 and response.context["page"].paginator.count == 55
    assert len(client.get(reverse("planning:grid"), {"steps": 3, "page": 2}).context["rows"]) == 5


# --- Query counts: constant in the number of patients ------------------------------------------------


def _count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def _export_queries(client, kind, **data):
    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("planning:export", args=[kind]), data)
        assert response.status_code == 200
        b"".join(response.streaming_content)
    return len(queries)


def test_calendar_grid_and_export_queries_do_not_grow_with_patients(client, coordinator, django_assert_max_num_queries):
    build_patients(10, prefix="QA", coordinator=coordinator)
    client.force_login(coordinator)
    urls = {
        "calendar_week": reverse("planning:calendar"),
        "calendar_month": reverse("planning:calendar") + "?view=month",
        "grid": reverse("planning:grid"),
        "grid_stage": reverse("planning:grid") + "?steps=5&stage=5",
    }
    client.get(urls["grid"])
    small = {name: _count_queries(client, url) for name, url in urls.items()}
    small_exports = {kind: _export_queries(client, kind, view="month") for kind in ExportKind.values}

    build_patients(190, prefix="QB", coordinator=coordinator)
    large = {name: _count_queries(client, url) for name, url in urls.items()}
    large_exports = {kind: _export_queries(client, kind, view="month") for kind in ExportKind.values}
    assert large == small and large_exports == small_exports
    with django_assert_max_num_queries(12):
        client.get(urls["calendar_month"])
    with django_assert_max_num_queries(12):
        client.get(urls["grid"])


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small enough to scan; ask what it could use
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_calendar_reads_only_the_days_shown_through_the_step_indexes(coordinator):
    """The load and the entries read pending steps by due day and done steps by the time they were performed,
    each through its partial index, not every step of the calendar's templates (issue 14: 10,000 patients)."""
    build_patients(30, prefix="IX", coordinator=coordinator)
    today = timezone.localdate()
    steps = selectors.calendar_steps(first_day=today - timedelta(days=today.weekday()), last_day=today + timedelta(days=6))
    plan = _plan(steps.order_by().values("day", "kind"))
    assert "step_pending_due_idx" in plan and "step_done_performed_idx" in plan and "step_done_undated_due_idx" in plan
    shown = selectors.calendar(first_day=today - timedelta(days=30), last_day=today + timedelta(days=30), per_day=2)
    assert all(len(day.entries) == min(day.total, 2) for day in shown)
    assert any(day.more for day in shown)
    assert all(
        [(s.kind, s.journey.patient.family_name, s.id) for s in day.entries]
        == sorted((s.kind, s.journey.patient.family_name, s.id) for s in day.entries)
        for day in shown
    )


# --- Exports -----------------------------------------------------------------------------------------


def _csv(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_an_export_is_audited_before_it_streams_and_carries_mrn_and_names(client, coordinator):
    build_patients(10, prefix="EXP", overdue_every=1)
    client.force_login(coordinator)
    response = client.post(reverse("planning:export", args=["overdue"]), {"indication": "sle"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    audit = DataExport.objects.get()  # written before a byte was read from the stream
    assert audit.kind == ExportKind.OVERDUE and audit.exported_by == coordinator
    assert audit.filters == {"indication": "sle"}
    rows = _csv(response)
    assert rows[0][:4] == ["MRN", "Family name", "Given name", "Date of birth"]
    assert len(rows) - 1 == audit.row_count > 0
    mrns = {row[0] for row in rows[1:]}
    assert set(Patient.objects.filter(mrn__in=mrns).values_list("indication", flat=True)) == {"sle"}


@pytest.mark.parametrize("kind", ExportKind.values)
def test_every_export_answers_a_csv_with_a_header(client, physician, kind):
    build_patients(4, prefix="ALL")
    client.force_login(physician)
    rows = _csv(client.post(reverse("planning:export", args=[kind]), {"view": "month"}))
    assert rows[0] and DataExport.objects.get().row_count == len(rows) - 1


def test_the_grid_export_has_a_column_per_step_and_states_in_words(client, coordinator):
    build_patients(3, prefix="GX", overdue_every=1)
    client.force_login(coordinator)
    rows = _csv(client.post(reverse("planning:export", args=["grid"]), {"steps": 1}))
    header = rows[0]
    assert header[4] == "Stage now" and "Leukapheresis" in " ".join(header[5:])
    assert {cell for row in rows[1:] for cell in row[5:]} <= {
        "done",
        "pending",
        "late",
        "blocked",
        "skipped",
        "not applicable",
        "",
    }
    assert len(rows) == 4


@pytest.mark.parametrize("who", ["nurse", "viewer"])
def test_roles_without_export_are_refused_and_nothing_is_recorded(client, every_role, who):
    build_patients(2, prefix="NO")
    client.force_login(every_role[who])
    assert client.post(reverse("planning:export", args=["overdue"])).status_code == 403
    assert not DataExport.objects.exists()


def test_an_export_is_not_reachable_by_get(client, coordinator):
    client.force_login(coordinator)
    assert client.get(reverse("planning:export", args=["overdue"])).status_code == 405
    assert client.post(reverse("planning:export", args=["everything"])).status_code == 404


def test_a_cell_that_looks_like_a_formula_is_defused(client, coordinator):
    build_patients(1, prefix="=HYPERLINK")
    client.force_login(coordinator)
    rows = _csv(client.post(reverse("planning:export", args=["grid"])))
    assert rows[1][0].startswith("'=HYPERLINK")


# --- The calendar feed -------------------------------------------------------------------------------


def _new_feed(client, label="Phone"):
    response = client.post(reverse("planning:feeds"), {"label": label})
    assert response.status_code == 200
    url = response.context["new_url"]
    return url[url.index("/planning/") :]


def test_the_feed_is_a_calendar_with_ids_and_step_names_but_no_patient_names(client, physician, journey):
    client.force_login(physician)
    feed_path = _new_feed(client)
    assert re.fullmatch(r"/planning/feeds/[A-Za-z0-9_-]{40,}\.ics", feed_path)
    client.logout()  # a calendar program does not sign in
    response = client.get(feed_path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    events = list(calendar.walk("VEVENT"))
    collection = journey.steps.get(template__code="leukapheresis")
    by_uid = {str(event["UID"]): event for event in events}
    event = by_uid[f"step-{collection.public_id}@testserver"]
    assert str(event["SUMMARY"]) == f"Collection: {collection.template.name}"
    assert event.decoded("DTSTART") == collection.due_on
    patient = journey.patient
    for text in (patient.family_name, patient.given_name, patient.mrn, patient.date_of_birth.isoformat()):
        assert text not in response.content.decode()
    assert CalendarFeedToken.objects.get().last_used_at is not None


def test_only_the_tokens_hash_is_stored_and_a_revoked_feed_is_gone(client, nurse, journey):
    client.force_login(nurse)
    feed_path = _new_feed(client)
    token = feed_path.rsplit("/", 1)[1].removesuffix(".ics")
    row = CalendarFeedToken.objects.get()
    assert row.token_hash != token and token not in row.token_hash
    assert client.get(reverse("planning:feeds")).content.decode().count(token) == 0  # shown once, only
    client.post(reverse("planning:feeds"), {"revoke": row.id})
    assert client.get(feed_path).status_code == 404
    assert client.get("/planning/feeds/not-a-token.ics").status_code == 404


def test_nobody_revokes_someone_elses_feed(client, nurse, coordinator):
    client.force_login(nurse)
    _new_feed(client)
    client.force_login(coordinator)
    assert client.post(reverse("planning:feeds"), {"revoke": CalendarFeedToken.objects.get().id}).status_code == 403
    assert CalendarFeedToken.objects.get().revoked_at is None


def test_a_deactivated_users_feed_answers_404(client, nurse, journey):
    client.force_login(nurse)
    feed_path = _new_feed(client)
    nurse.is_active = False
    nurse.save()
    client.logout()
    assert client.get(feed_path).status_code == 404
