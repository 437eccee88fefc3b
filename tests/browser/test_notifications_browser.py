"""Real headless Chromium against a live server: a reminder's life as the coordinator sees it.

The scan and the sender run in the test (the services a Celery worker calls); the coordinator sees the
unread count in the navigation, opens the notification, follows its link to the patient page at the
step, and finds the reminder in the patient's log; then snoozes a scheduled one on a phone.
Screenshots (desktop 1280×800 and phone 375×812) go to artifacts/screenshots/.
"""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from journeys import services as journey_services
from journeys.models import ProtocolTemplate
from notifications.models import Notification, Reminder, ReminderEvent, ReminderState
from notifications.services import overdue_scan, reminders_send_due
from tests.browser.test_journeys_browser import DESKTOP, PHONE, SHOTS, browser, shot, sign_in, ward_member  # noqa: F401 - browser is a fixture
from tests.factories import PatientFactory

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def clinic():
    coordinator = ward_member("coordinator")
    nurse = ward_member("nurse")
    ward_member("physician")  # the ward has a physician: escalations go to them
    protocol = ProtocolTemplate.objects.get(version=1, name__startswith="CD19")
    today = timezone.localdate()
    # Collected five days ago and nothing recorded since: the courier hand-off (the coordinator's step) is late.
    late = PatientFactory(
        mrn="MRN0042001",
        given_name="Hanna",
        family_name="Lindqvist",
        coordinator=coordinator,
        nurse=nurse,
        indication="lupus_nephritis",
    )
    late_journey = journey_services.journey_start(
        actor=coordinator, patient_id=late.id, protocol_id=protocol.id, leukapheresis_date=today - timedelta(days=5)
    )
    # Collection in three days: its courier hand-off is "coming up", scheduled but not yet due.
    soon = PatientFactory(
        mrn="MRN0042002", given_name="Jonas", family_name="Berglund", coordinator=coordinator, nurse=nurse, indication="sle"
    )
    journey_services.journey_start(
        actor=coordinator, patient_id=soon.id, protocol_id=protocol.id, leukapheresis_date=today + timedelta(days=3)
    )
    return {"coordinator": coordinator, "patient": late, "journey": late_journey, "soon": soon}


def _no_sideways_scroll(page, name):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} scrolls sideways on a phone ({width}px)"


def test_coordinator_follows_a_reminder_to_the_patient_and_snoozes_another(browser, live_server, clinic):
    base = live_server.url
    patient, coordinator = clinic["patient"], clinic["coordinator"]
    desk = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="Europe/Berlin")
    page = desk.new_page()
    sign_in(page, base, "cora")
    page.wait_for_url(f"{base}/dashboard/")
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name=re.compile("^Notifications")).inner_text().strip() == "Notifications"

    # --- What the workers do each minute ---------------------------------------------------------
    overdue_scan()
    reminders_send_due()
    shipment = clinic["journey"].steps.get(template__code="shipment")
    sent = Reminder.objects.get(step=shipment, kind="overdue", recipient=coordinator, channel="in_app")
    assert sent.state == ReminderState.SENT
    unread = Notification.objects.filter(recipient=coordinator, read_at__isnull=True).count()
    assert unread >= 1

    # --- The coordinator sees it -----------------------------------------------------------------
    page.reload()
    link = nav.get_by_role("link", name=re.compile("^Notifications"))
    assert link.locator(".nav-count").inner_text() == str(unread)
    assert "unread" in link.inner_text()  # said in words for screen readers, not only a red dot
    shot(page, "nav-unread-desktop")
    link.click()
    page.wait_for_url(f"{base}/notifications/")
    note = page.locator(".note", has_text="Cells handed to the courier").first
    assert "Unread" in note.locator(".badge").inner_text()
    shot(page, "notifications-desktop")
    item = note.locator("li", has=page.locator(f'a[href$="step={shipment.public_id}"]')).filter(has_text="Overdue:").first
    assert "Cells handed to the courier" in item.inner_text()
    item.get_by_role("link").click()

    # --- ...and lands on the patient page, at the step -----------------------------------------------
    page.wait_for_url(f"{base}/patients/{patient.public_id}/#step-{shipment.public_id}")
    step_row = page.locator(f"#step-{shipment.public_id}")
    assert step_row.is_visible() and "Overdue" in step_row.inner_text()
    assert "Lindqvist, Hanna" in page.locator("h1").inner_text()
    log = page.locator("#reminder-log")
    row = (
        log.locator(".reminder", has_text="Cells handed to the courier").filter(has_text="Overdue").filter(has_text="in the app")
    )
    row.first.wait_for(timeout=10_000)  # fetched by HTMX after the page loaded
    assert "Sent" in row.first.inner_text() and "Cora Ordinator" in row.first.inner_text()
    # Opening the notification marked it read; the nav says so on the next page.
    assert Notification.objects.filter(recipient=coordinator, read_at__isnull=True).count() == unread - 1
    assert page.locator("#nav-unread").inner_text().strip() == ("" if unread == 1 else f"{unread - 1} unread")
    log.scroll_into_view_if_needed()
    shot(page, "patient-reminders-desktop")
    page.goto(f"{base}/notifications/reminders/")
    assert page.locator("table.table tbody tr").count() >= 2
    shot(page, "reminder-log-desktop")
    desk.close()

    # --- On a phone: snooze the reminder for the next patient, with a reason ---------------------------
    phone = browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB", timezone_id="Europe/Berlin")
    page = phone.new_page()
    sign_in(page, base, "cora")
    page.wait_for_url(f"{base}/dashboard/")
    page.goto(f"{base}/notifications/")
    _no_sideways_scroll(page, "notifications")
    shot(page, "notifications-phone")
    page.goto(f"{base}/patients/{patient.public_id}/")
    page.locator("#reminder-log .reminder").first.wait_for(timeout=10_000)
    page.locator("#reminder-log").scroll_into_view_if_needed()
    _no_sideways_scroll(page, "patient")
    shot(page, "patient-reminders-phone")
    page.locator("#reminders-heading").locator("xpath=..").screenshot(path=str(SHOTS / "patient-reminders-card-phone.png"))
    page.goto(f"{base}/notifications/reminders/?state=pending&kind=upcoming")
    _no_sideways_scroll(page, "reminder log")
    shot(page, "reminder-log-phone")
    row = (
        page.locator("tr", has_text="Berglund, Jonas")
        .filter(has_text="Cells handed to the courier")
        .filter(has_text="In the app")
        .filter(has_text="Email")
    )
    assert row.count() == 1
    row.get_by_role("link", name="Snooze").click()
    page.wait_for_url(re.compile(r".*/notifications/reminders/.+/snooze/.*"))
    page.get_by_role("button", name="Snooze").click()  # no reason: refused next to the field
    assert "Give a reason" in page.locator(".field.has-error").inner_text()
    page.get_by_label("Reason").fill("Courier booked for the afternoon")
    _no_sideways_scroll(page, "snooze")
    shot(page, "snooze-phone")
    page.get_by_role("button", name="Snooze").click()
    page.wait_for_url(re.compile(r".*/notifications/reminders/\?.*state=pending.*"))
    assert "Snoozed until" in page.locator(".messages").inner_text()
    events = ReminderEvent.objects.filter(action="snoozed")
    assert {(e.reason, e.actor, e.reminder.channel) for e in events} == {  # one line, both channels snoozed
        ("Courier booked for the afternoon", coordinator, "in_app"),
        ("Courier booked for the afternoon", coordinator, "email"),
    }
    page.goto(f"{base}/notifications/preferences/")
    _no_sideways_scroll(page, "preferences")
    shot(page, "preferences-phone")
    phone.close()
