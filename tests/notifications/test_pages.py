"""The reminder engine's pages, through the Django test client: who may open what, snooze and cancel
(with their errors), the in-app list and the unread count in the nav, e-mail preferences, the links the
reminders carry, and constant query counts."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from journeys.models import Journey
from notifications.models import (
    Channel,
    Notification,
    Reminder,
    ReminderEvent,
    ReminderKind,
    ReminderState,
    UserNotificationPreference,
)
from notifications.services import overdue_scan, reminders_send_due
from staff.middleware import LAST_ACTIVITY_KEY
from tests.notifications.conftest import local
from tests.web.bulk import build_patients

PLANNED_AT = local(date(2026, 2, 24), 9)  # leukapheresis on 2 March: its "coming up" reminders are scheduled
SENT_AT = local(date(2026, 3, 4), 8)  # labs, sign-off and leukapheresis overdue: reminders go out
ROLES = ["coordinator", "nurse", "physician", "viewer", "admin"]
MANAGERS = {"coordinator", "physician", "admin"}
EVERYONE = set(ROLES)


@pytest.fixture(autouse=True)
def _plain_static(settings):
    # Pages link {% static %} files; the manifest storage would need collectstatic first.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


@pytest.fixture
def users(staff_team, viewer, make_user):
    return {**staff_team, "viewer": viewer, "admin": make_user("admin", first_name="Ada", last_name="Admin")}


@pytest.fixture
def scheduled(users, start_journey, time_machine):
    """A journey whose leukapheresis reminders are planned and not yet due, on a pinned clock."""
    time_machine.move_to(PLANNED_AT, tick=False)
    journey = start_journey()
    overdue_scan()
    reminder = Reminder.objects.get(
        step__journey=journey, step__template__code="leukapheresis", kind=ReminderKind.UPCOMING, channel=Channel.EMAIL
    )
    return journey, reminder


@pytest.fixture
def delivered(users, start_journey, time_machine):
    """A journey with overdue steps whose reminders went out (e-mail and in the app)."""
    time_machine.move_to(SENT_AT, tick=False)
    journey = start_journey()
    overdue_scan()
    reminders_send_due()
    return journey


def _urls(journey, reminder, notification=None):
    urls = {
        "list": reverse("notifications:list"),
        "unread_count": reverse("notifications:unread_count"),
        "preferences": reverse("notifications:preferences"),
        "log": reverse("notifications:log"),
        "journey_reminders": reverse("notifications:journey_reminders", args=[journey.public_id]),
        "snooze": reverse("notifications:snooze", args=[reminder.public_id]),
        "cancel": reverse("notifications:cancel", args=[reminder.public_id]),
    }
    return urls


ALLOWED = {
    "list": EVERYONE,
    "unread_count": EVERYONE,
    "preferences": EVERYONE,
    "log": EVERYONE,  # read-only for nurses and viewers
    "journey_reminders": EVERYONE,
    "snooze": MANAGERS,
    "cancel": MANAGERS,
}


# --- Who may open what ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("page", sorted(ALLOWED))
def test_anonymous_is_sent_to_sign_in(client, scheduled, page):
    journey, reminder = scheduled
    response = client.get(_urls(journey, reminder)[page])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["read_all", "snooze", "cancel"])
def test_anonymous_posts_change_nothing(client, scheduled, url_name):
    journey, reminder = scheduled
    url = reverse(f"notifications:{url_name}", args=[] if url_name == "read_all" else [reminder.public_id])
    response = client.post(url, {"reason": "x", "until": "2026-02-28T12:00"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.PENDING and reminder.snoozed_until is None


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_page_for_every_role(client, users, scheduled, role):
    journey, reminder = scheduled
    client.force_login(users[role])
    for page, url in _urls(journey, reminder).items():
        response = client.get(url)
        expected = 200 if role in ALLOWED[page] else 403
        assert response.status_code == expected, (role, page, response.status_code)
        if expected == 403:
            assert b"Not allowed for your role" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["nurse", "viewer"])
def test_nurses_and_viewers_cannot_snooze_or_cancel_even_by_typed_url(client, users, scheduled, role):
    journey, reminder = scheduled
    client.force_login(users[role])
    until = (PLANNED_AT + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert (
        client.post(reverse("notifications:snooze", args=[reminder.public_id]), {"until": until, "reason": "busy"}).status_code
        == 403
    )
    assert client.post(reverse("notifications:cancel", args=[reminder.public_id]), {"reason": "busy"}).status_code == 403
    reminder.refresh_from_db()
    assert (reminder.state, reminder.snoozed_until, reminder.send_after) == (ReminderState.PENDING, None, reminder.due_at)
    assert not ReminderEvent.objects.exists()
    # The log is theirs to read, without the buttons.
    page = client.get(reverse("notifications:log")).content.decode()
    assert "Read-only" in page and reverse("notifications:snooze", args=[reminder.public_id]) not in page
    fragment = client.get(reverse("notifications:journey_reminders", args=[journey.public_id])).content.decode()
    assert "Coming up" in fragment and "Snooze" not in fragment


# --- Snooze and cancel ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_coordinator_snoozes_from_the_patient_page_with_a_reason(client, users, scheduled):
    journey, reminder = scheduled
    client.force_login(users["coordinator"])
    in_app = Reminder.objects.get(step=reminder.step, kind=reminder.kind, recipient=reminder.recipient, channel=Channel.IN_APP)
    fragment = client.get(reverse("notifications:journey_reminders", args=[journey.public_id])).content.decode()
    # One line for the reminder to this person, whatever the channels, with its buttons for a coordinator.
    assert reverse("notifications:snooze", args=[in_app.public_id]) in fragment
    assert reverse("notifications:snooze", args=[reminder.public_id]) not in fragment
    snooze_url = reverse("notifications:snooze", args=[reminder.public_id])
    form = client.get(snooze_url)
    assert form.status_code == 200 and "Snooze until (clinic time)" in form.content.decode()
    patient_page = reverse("patient_detail", args=[journey.patient.public_id])
    until = reminder.due_at + timedelta(hours=5)
    response = client.post(
        snooze_url,
        {
            "until": timezone.localtime(until).strftime("%Y-%m-%dT%H:%M"),
            "reason": "Patient phoned: collection starts late",
            "next": patient_page,
        },
    )
    assert response.status_code == 302 and response["Location"] == patient_page
    for copy in (reminder, in_app):  # both channels: the person is reminded later, not half of them
        copy.refresh_from_db()
        assert copy.state == ReminderState.PENDING and copy.snoozed_until == copy.send_after == until
        event = ReminderEvent.objects.get(reminder=copy)
        assert (event.action, event.actor, event.reason) == (
            "snoozed",
            users["coordinator"],
            "Patient phoned: collection starts late",
        )
    assert ReminderEvent.objects.count() == 2
    fragment = client.get(reverse("notifications:journey_reminders", args=[journey.public_id])).content.decode()
    assert "Snoozed" in fragment and f"snoozed until {timezone.localtime(until):%a %d %b %H:%M}" in fragment


@pytest.mark.django_db
def test_snooze_without_a_reason_is_a_field_error_and_changes_nothing(client, users, scheduled):
    _, reminder = scheduled
    client.force_login(users["physician"])
    typed = (PLANNED_AT + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(reverse("notifications:snooze", args=[reminder.public_id]), {"until": typed, "reason": "  "})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_reason_error"' in page and "Give a reason" in page
    assert f'value="{typed}"' in page  # what was typed is kept
    reminder.refresh_from_db()
    assert reminder.snoozed_until is None and reminder.send_after == reminder.due_at
    assert not ReminderEvent.objects.exists()


@pytest.mark.django_db
def test_snooze_into_the_past_is_a_field_error_on_the_time(client, users, scheduled):
    _, reminder = scheduled
    client.force_login(users["coordinator"])
    response = client.post(
        reverse("notifications:snooze", args=[reminder.public_id]),
        {"until": (PLANNED_AT - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "reason": "typo"},
    )
    assert response.status_code == 400
    assert 'id="id_until_error"' in response.content.decode() and "Must be in the future" in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.snoozed_until is None


@pytest.mark.django_db
def test_coordinator_cancels_from_the_log_with_a_reason(client, users, scheduled):
    _, reminder = scheduled
    client.force_login(users["coordinator"])
    log_url = reverse("notifications:log") + "?state=pending"
    in_app = Reminder.objects.get(step=reminder.step, kind=reminder.kind, recipient=reminder.recipient, channel=Channel.IN_APP)
    assert reverse("notifications:cancel", args=[in_app.public_id]) in client.get(log_url).content.decode()
    others = Reminder.objects.filter(state=ReminderState.PENDING).exclude(recipient=reminder.recipient, step=reminder.step)
    others_before = others.count()
    response = client.post(reverse("notifications:cancel", args=[reminder.public_id]), {"reason": "", "next": log_url})
    assert response.status_code == 400 and 'id="id_reason_error"' in response.content.decode()
    assert Reminder.objects.get(pk=reminder.pk).state == ReminderState.PENDING
    response = client.post(
        reverse("notifications:cancel", args=[reminder.public_id]),
        {"reason": "Collection moved to the other site", "next": log_url},
    )
    assert response.status_code == 302 and response["Location"] == log_url
    reminder.refresh_from_db()
    assert (reminder.state, reminder.cancelled_by, reminder.cancel_reason) == (
        ReminderState.CANCELLED,
        users["coordinator"],
        "Collection moved to the other site",
    )
    copies = Reminder.objects.filter(step=reminder.step, kind=reminder.kind, recipient=reminder.recipient)
    assert {copy.state for copy in copies} == {ReminderState.CANCELLED} and copies.count() == 2
    assert ReminderEvent.objects.filter(action="cancelled").count() == 2
    assert others_before and others.count() == others_before  # nobody else's reminders were touched
    page = client.get(reverse("notifications:log") + "?state=cancelled").content.decode()
    assert "Collection moved to the other site" in page


@pytest.mark.django_db
def test_an_unsafe_next_is_ignored(client, users, scheduled):
    journey, reminder = scheduled
    client.force_login(users["coordinator"])
    response = client.post(
        reverse("notifications:cancel", args=[reminder.public_id]), {"reason": "duplicate", "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("patient_detail", args=[journey.patient.public_id])


@pytest.mark.django_db
def test_a_reminder_sent_meanwhile_is_not_changed_and_the_page_says_so(client, users, scheduled, time_machine):
    _, reminder = scheduled
    client.force_login(users["coordinator"])
    form = client.get(reverse("notifications:cancel", args=[reminder.public_id]))  # the form opens...
    assert form.status_code == 200
    time_machine.move_to(reminder.due_at + timedelta(minutes=1), tick=False)
    reminders_send_due()  # ...and the worker sends it before the coordinator presses the button
    client.force_login(users["coordinator"])  # (the clock jumped days: the idle sign-out ended the session)
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.SENT
    response = client.post(reverse("notifications:cancel", args=[reminder.public_id]), {"reason": "not needed"})
    assert response.status_code == 409
    page = response.content.decode()
    assert "Nothing changed" in page and "no longer scheduled" in page and "It was sent" in page
    reminder.refresh_from_db()
    assert reminder.state == ReminderState.SENT and reminder.cancel_reason == ""
    assert not ReminderEvent.objects.exists()
    # Opening the form again says so at once, with no form to fill in.
    page = client.get(reverse("notifications:snooze", args=[reminder.public_id])).content.decode()
    assert "No longer scheduled" in page and "<textarea" not in page


# --- The log --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_clinic_log_shows_sent_and_scheduled_in_clinic_time_and_filters(client, users, delivered, start_journey):
    later = start_journey(leukapheresis_date=date(2026, 3, 9))  # its "coming up" reminders are still scheduled
    overdue_scan()
    client.force_login(users["viewer"])
    page = client.get(reverse("notifications:log")).content.decode()
    assert "Sent" in page and "Scheduled" in page and "Overdue" in page and "Coming up" in page
    sent = Reminder.objects.filter(state=ReminderState.SENT).select_related("step__journey__patient").first()
    assert f"{timezone.localtime(sent.due_at):%a %d %b %H:%M}" in page  # 08:00 Berlin, not 07:00 UTC
    assert "08:00" in page
    only_sent = client.get(reverse("notifications:log") + "?state=sent").content.decode()
    assert "Scheduled</span>" not in only_sent and "Sent</span>" in only_sent
    only_escalations = client.get(reverse("notifications:log") + "?kind=escalation").content.decode()
    count = Reminder.objects.filter(kind=ReminderKind.ESCALATION, due_at__gte=SENT_AT - timedelta(days=7)).count()
    assert count and f'<h2 id="log-heading">{count} messages planned or sent' in only_escalations
    one = client.get(reverse("notifications:log") + f"?journey={later.public_id}").content.decode()
    assert later.patient.family_name in one and delivered.patient.family_name not in one
    assert client.get(reverse("notifications:log") + "?state=nonsense").status_code == 200


@pytest.mark.django_db
def test_patient_page_loads_the_journeys_reminders_by_htmx(client, users, delivered, start_journey):
    other = start_journey()
    overdue_scan()
    client.force_login(users["nurse"])
    page = client.get(reverse("patient_detail", args=[delivered.patient.public_id])).content.decode()
    fragment_url = reverse("notifications:journey_reminders", args=[delivered.public_id])
    assert f'hx-get="{fragment_url}"' in page and 'hx-trigger="load"' in page
    fragment = client.get(fragment_url, HTTP_HX_REQUEST="true").content.decode()
    assert "Sent" in fragment and "Eligibility labs" in fragment and "<html" not in fragment
    ours = Reminder.objects.filter(step__journey=delivered)
    lines = ours.values("step", "kind", "recipient", "for_day").distinct().count()
    assert (
        ours.count() <= 40 and lines and fragment.count('class="reminder reminder-') == lines
    )  # one per person, not per channel
    assert other.patient.family_name not in fragment


# --- In-app notifications, the nav count, preferences ---------------------------------------------


@pytest.mark.django_db
def test_unread_count_in_the_nav_and_marking_read(client, users, delivered):
    nurse = users["nurse"]
    Notification.objects.create(
        recipient=nurse,
        kind=ReminderKind.UPCOMING,
        title="carclinic: 1 coming up",
        created_at=timezone.now() - timedelta(hours=1),
    )
    client.force_login(nurse)
    page = client.get(reverse("my_steps")).content.decode()
    assert '<span class="count nav-count">2</span><span class="visually-hidden"> unread</span>' in page
    listing = client.get(reverse("notifications:list")).content.decode()
    assert listing.count("Unread</span>") == 2 and "Mark all as read" in listing
    from_the_scan = Notification.objects.get(recipient=nurse, created_at=SENT_AT)
    assert from_the_scan.title == "carclinic: 2 overdue"
    assert listing.index("2 overdue") < listing.index("1 coming up")  # newest first
    newest = Notification.objects.filter(recipient=nurse).order_by("-created_at").first()
    response = client.post(reverse("notifications:read", args=[newest.public_id]), {"next": reverse("notifications:list")})
    assert response.status_code == 302
    newest.refresh_from_db()
    assert newest.read_at is not None
    listing = client.get(reverse("notifications:list")).content.decode()
    assert listing.count("Unread</span>") == 1 and listing.count(">Read</span>") == 1
    assert 'nav-count">1<' in listing
    client.post(reverse("notifications:read_all"))
    page = client.get(reverse("notifications:list")).content.decode()
    assert "nav-count" not in page and "Mark all as read" not in page
    assert not Notification.objects.filter(recipient=nurse, read_at__isnull=True).exists()


@pytest.mark.django_db
def test_nobody_can_read_or_open_another_persons_notification(client, users, delivered):
    theirs = Notification.objects.get(recipient=users["nurse"])
    client.force_login(users["physician"])
    client.post(reverse("notifications:read", args=[theirs.public_id]))
    assert client.get(reverse("notifications:open", args=[theirs.public_id])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert theirs.title not in client.get(reverse("notifications:list")).content.decode()


@pytest.mark.django_db
def test_the_count_poll_is_not_activity_for_the_idle_sign_out(client, users, delivered):
    client.force_login(users["nurse"])
    client.get(reverse("notifications:list"))
    before = client.session[LAST_ACTIVITY_KEY]
    response = client.get(reverse("notifications:unread_count"), HTTP_HX_REQUEST="true", HTTP_X_CLINIC_POLL="1")
    body = response.content.decode()
    assert response.status_code == 200 and 'nav-count">1<' in body and "X-Clinic-Poll" in body
    assert client.session[LAST_ACTIVITY_KEY] == before


@pytest.mark.django_db
def test_a_reminder_link_opens_the_patient_page_at_the_step(client, users, delivered):
    """The links in e-mails and in the app point at the page that exists, with the step's anchor."""
    nurse = users["nurse"]
    note = Notification.objects.get(recipient=nurse)
    item = note.items[0]
    link = item["link"]
    path, anchor = link.split("#")
    assert path == reverse("patient_detail", args=[delivered.patient.public_id]) and anchor == f"step-{item['step']}"
    client.force_login(nurse)
    page = client.get(path)
    assert page.status_code == 200 and f'id="{anchor}"' in page.content.decode()
    # Opening it from the app marks it read and lands on the same place.
    listing = client.get(reverse("notifications:list")).content.decode()
    open_url = f"{reverse('notifications:open', args=[note.public_id])}?step={item['step']}"
    assert open_url in listing
    response = client.get(open_url)
    assert response.status_code == 302 and response["Location"] == link
    note.refresh_from_db()
    assert note.read_at is not None
    # The query string only picks among the notification's own steps.
    foreign = delivered.steps.exclude(public_id__in=[i["step"] for i in note.items]).first()
    response = client.get(f"{reverse('notifications:open', args=[note.public_id])}?step={foreign.public_id}")
    assert response["Location"] == note.items[0]["link"]


@pytest.mark.django_db
def test_preferences_choose_email_per_kind(client, users, start_journey, time_machine, mailoutbox):
    nurse = users["nurse"]
    client.force_login(nurse)
    page = client.get(reverse("notifications:preferences")).content.decode()
    assert page.count('type="checkbox"') == len(ReminderKind.values) and page.count("checked") == len(ReminderKind.values)
    keep = {kind: "on" for kind in ReminderKind.values if kind != ReminderKind.OVERDUE}
    response = client.post(reverse("notifications:preferences"), keep)
    assert response.status_code == 302
    assert list(UserNotificationPreference.objects.filter(user=nurse).values_list("kind", "email")) == [("overdue", False)]
    page = client.get(reverse("notifications:preferences")).content.decode()
    assert page.count("checked") == len(ReminderKind.values) - 1 and "Saved" in page
    # The engine honours it: the overdue reminders reach the nurse in the app only.
    time_machine.move_to(SENT_AT, tick=False)
    start_journey()
    overdue_scan()
    reminders_send_due()
    assert not [m for m in mailoutbox if m.to == [nurse.email]]
    assert Notification.objects.filter(recipient=nurse, kind=ReminderKind.OVERDUE).exists()


# --- Query counts ---------------------------------------------------------------------------------


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _fill(coordinator, nurse, count: int, prefix: str) -> None:
    build_patients(count, prefix=prefix, coordinator=coordinator, nurse=nurse)
    overdue_scan(everything=True)  # bulk-loaded journeys carry no journey events for a scan to notice
    reminders_send_due(limit=10_000)
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                recipient=coordinator,
                kind=ReminderKind.OVERDUE,
                title=f"carclinic: {i} overdue",
                created_at=now,
                items=[{"kind": "overdue", "text": "Labs", "journey": "", "step": "", "link": ""}],
            )
            for i in range(count)
        ]
    )


@pytest.mark.django_db
def test_page_query_counts_do_not_grow_with_reminders(client, users, django_assert_max_num_queries):
    coordinator, nurse = users["coordinator"], users["nurse"]
    _fill(coordinator, nurse, 10, "QA")
    journey = Journey.objects.filter(patient__mrn="QA0000003").get()
    reminder = Reminder.objects.filter(state=ReminderState.PENDING).first() or Reminder.objects.first()
    urls = {
        "list": reverse("notifications:list"),
        "list_page_2": reverse("notifications:list") + "?page=2",
        "log": reverse("notifications:log"),
        "log_filtered": reverse("notifications:log") + "?state=sent&kind=overdue",
        "journey_reminders": reverse("notifications:journey_reminders", args=[journey.public_id]),
        "preferences": reverse("notifications:preferences"),
        "unread_count": reverse("notifications:unread_count"),
        "snooze": reverse("notifications:snooze", args=[reminder.public_id]),
        "patient": reverse("patient_detail", args=[journey.patient.public_id]),
    }
    client.force_login(coordinator)
    client.get(urls["list"])  # the first request of a session writes it; count a steady state
    small = {name: _count(client, url) for name, url in urls.items()}
    small_rows = Reminder.objects.count()

    _fill(coordinator, nurse, 990, "QB")
    assert Reminder.objects.count() >= 50 * small_rows and Notification.objects.count() >= 1000
    client.get(urls["list"])
    for name, url in urls.items():
        with django_assert_max_num_queries(small[name]):
            assert client.get(url).status_code == 200, name
    assert max(small.values()) <= 16, small  # the patient page: latest measurement, consents, product road, alert banner
