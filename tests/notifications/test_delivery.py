"""Delivery: claimed before sent, grouped per person, retried with backoff, given up visibly, and a claim
left by a dead worker taken over once."""

import uuid
from datetime import date, timedelta

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.test import override_settings

from notifications.delivery import MESSAGES_PER_CLAIM, _claim
from notifications.models import Channel, Notification, Reminder, ReminderEvent, ReminderKind, ReminderState
from notifications.services import overdue_scan, reminder_send, reminders_send_due
from tests.notifications.conftest import local

AT = local(date(2026, 3, 4), 8)  # labs, sign-off and leukapheresis are overdue; nothing escalated yet except labs


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_due_reminders_go_out_as_one_email_and_one_in_app_notification_per_person(start_journey, staff_team, mailoutbox):
    start_journey()
    start_journey()
    overdue_scan(now=AT)
    result = reminders_send_due(now=AT)
    nurse, physician = staff_team["nurse"], staff_team["physician"]
    # Nurse: labs + leukapheresis for two patients = 4 overdue. Physician: sign-off x2 overdue. Coordinator: labs
    # and sign-off late by more than 24 h, x2, escalated (the patients have no treating physician: a physician
    # hears only of their own patients' physician steps); plant receipt due today, manufacturing start
    # tomorrow (its 48 h "coming up" was due yesterday, before the first scan ran: sent late, not lost), the digest.
    nurse_mail = [m for m in mailoutbox if m.to == [nurse.email]]
    assert len(nurse_mail) == 1
    assert nurse_mail[0].subject == "carclinic: 4 overdue"
    assert "patient ref" in nurse_mail[0].body
    # Each line links to the real patient page, at the step (tests/notifications/test_pages.py opens one).
    assert "/journeys/" not in nurse_mail[0].body and nurse_mail[0].body.count("/patients/") == 4
    physician_mail = [m for m in mailoutbox if m.to == [physician.email]]
    assert len(physician_mail) == 1 and physician_mail[0].subject == "carclinic: 2 overdue"
    nurse_note = Notification.objects.get(recipient=nurse)
    assert len(nurse_note.items) == 4 and nurse_note.read_at is None
    coordinator_mail = [m for m in mailoutbox if m.to == [staff_team["coordinator"].email]]
    assert len(coordinator_mail) == 1
    assert coordinator_mail[0].subject == "carclinic: 4 escalated, 2 due today, 2 coming up, your daily digest"
    assert len(mailoutbox) == 3
    assert result.messages == len(mailoutbox) + Notification.objects.count() == 6
    assert not Reminder.objects.filter(due_at__lte=AT).exclude(state=ReminderState.SENT).exists()
    # Nothing goes twice.
    assert reminders_send_due(now=AT + timedelta(minutes=1)).claimed == 0
    assert len(mailoutbox) == 3


def test_emails_carry_no_patient_names_or_mrn(start_journey, mailoutbox):
    journey = start_journey()
    overdue_scan(now=AT)
    reminders_send_due(now=AT)
    patient = journey.patient
    for text in [m.subject + m.body for m in mailoutbox] + [n.title + n.body for n in Notification.objects.all()]:
        assert patient.family_name not in text and patient.mrn not in text


def test_reminder_send_second_caller_loses(start_journey, mailoutbox):
    start_journey()
    overdue_scan(now=AT)
    reminder = Reminder.objects.filter(channel=Channel.EMAIL, kind=ReminderKind.OVERDUE).first()
    first = reminder_send(reminder_id=reminder.id, now=AT)
    assert first is not None and first.sent >= 1
    assert reminder_send(reminder_id=reminder.id, now=AT) is None
    assert len(mailoutbox) == 1


def test_failed_email_retries_with_exponential_backoff_then_gives_up_visibly(start_journey, staff_team, mailoutbox):
    start_journey()
    overdue_scan(now=AT)
    nurse_email = Reminder.objects.filter(recipient=staff_team["nurse"], channel=Channel.EMAIL, due_at__lte=AT)
    due_email = Reminder.objects.filter(channel=Channel.EMAIL, due_at__lte=AT).count()
    # A real SMTP connection to a port nobody listens on: the mail server is down.
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=_closed_port(),
        EMAIL_TIMEOUT=2,
        REMINDER_MAX_ATTEMPTS=3,
        REMINDER_RETRY_BASE_SECONDS=60,
    ):
        result = reminders_send_due(now=AT)
        assert result.retrying == due_email
        # In the app the same reminders arrived: one channel failing does not hold back another.
        assert Notification.objects.filter(recipient=staff_team["nurse"]).count() == 1
        row = nurse_email.first()
        assert (row.state, row.attempts, row.send_after) == (ReminderState.PENDING, 1, AT + timedelta(seconds=60))
        assert "ConnectionRefused" in row.last_error
        assert reminders_send_due(now=AT + timedelta(seconds=59)).claimed == 0  # not before the backoff
        reminders_send_due(now=AT + timedelta(seconds=60))
        row.refresh_from_db()
        assert (row.attempts, row.send_after) == (2, AT + timedelta(seconds=60 + 120))
        reminders_send_due(now=AT + timedelta(seconds=180))
        row.refresh_from_db()
        assert (row.state, row.attempts) == (ReminderState.FAILED, 3)
        assert ReminderEvent.objects.filter(reminder=row, action=ReminderEvent.Action.GAVE_UP).exists()
        reminders_send_due(now=AT + timedelta(days=1))
        row.refresh_from_db()
        assert row.state == ReminderState.FAILED  # given up stays given up
    assert mailoutbox == []


def test_worker_killed_mid_send_is_sent_once_after_the_claim_times_out(start_journey, staff_team, mailoutbox, settings):
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 300
    start_journey()
    overdue_scan(now=AT)
    nurse_rows = Reminder.objects.filter(recipient=staff_team["nurse"], channel=Channel.EMAIL)
    # Worker A claims the nurse's e-mail and dies before sending or marking anything.
    assert _claim(nurse_rows, now=AT, token=uuid.uuid4()) == nurse_rows.count()
    mailoutbox.clear()
    reminders_send_due(now=AT + timedelta(seconds=299))
    assert [m for m in mailoutbox if m.to == [staff_team["nurse"].email]] == []  # still A's, as far as anyone knows
    reminders_send_due(now=AT + timedelta(seconds=301))
    reminders_send_due(now=AT + timedelta(seconds=900))
    nurse_mail = [m for m in mailoutbox if m.to == [staff_team["nurse"].email]]
    assert len(nurse_mail) == 1
    assert set(nurse_rows.values_list("state", "attempts")) == {(ReminderState.SENT, 2)}


def test_an_email_handed_over_but_not_marked_goes_again_with_the_same_message_id(start_journey, staff_team, mailoutbox):
    from notifications.delivery import _deliver_email

    start_journey()
    overdue_scan(now=AT)
    nurse_rows = Reminder.objects.filter(recipient=staff_team["nurse"], channel=Channel.EMAIL)
    assert _claim(nurse_rows, now=AT, token=uuid.uuid4())
    mailoutbox.clear()
    # Worker A hands the message to the mail server and dies before marking it: its mark finds no claim.
    assert _deliver_email(list(nurse_rows.select_related("recipient")), token=uuid.uuid4(), now=AT) == 0
    reminders_send_due(now=AT + timedelta(seconds=301))
    first, again = [m for m in mailoutbox if m.to == [staff_team["nurse"].email]]
    assert first.extra_headers["Message-ID"] == again.extra_headers["Message-ID"]
    assert first.extra_headers["Message-ID"].endswith("@carclinic.local>")
    assert set(nurse_rows.values_list("state", flat=True)) == {ReminderState.SENT}
    physician_mail = [m for m in mailoutbox if m.to == [staff_team["physician"].email]]
    assert physician_mail and physician_mail[0].extra_headers["Message-ID"] != first.extra_headers["Message-ID"]


def test_reminder_for_a_step_done_after_planning_is_cancelled_not_sent(start_journey, nurse, mailoutbox):
    from journeys.models import Step
    from journeys.services import step_complete

    journey = start_journey()
    overdue_scan(now=AT)
    labs = Step.objects.get(journey=journey, template__code="eligibility-labs")
    step_complete(actor=nurse, step_id=labs.id)
    reminders_send_due(now=AT)
    assert not Reminder.objects.filter(step=labs, state=ReminderState.SENT).exists()
    assert all("Eligibility labs" not in m.body for m in mailoutbox)


def test_scan_overdue_command_once_scans_and_sends(start_journey, mailoutbox, time_machine, capsys):
    start_journey()
    time_machine.move_to(AT, tick=False)
    call_command("scan_overdue", "--once")
    out = capsys.readouterr().out
    assert "flagged=3" in out and "sent=" in out
    assert len(mailoutbox) == 3  # nurse, physician, coordinator: one each
    call_command("reminders_health")
    assert "pending (due now):    0" in capsys.readouterr().out


def test_health_command_reports_unhealthy_when_no_scan_ran(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scan has not run"):
        call_command("reminders_health")


class _BellCheckingBackend(BaseEmailBackend):
    """A mail server that notes, for each message, whether the person's in-app notice was already there."""

    seen: list[tuple[str, bool]] = []

    def send_messages(self, messages):
        for message in messages:
            in_app = Notification.objects.filter(recipient__email=message.to[0]).exists()
            _BellCheckingBackend.seen.append((message.to[0], in_app))
        return len(messages)


def test_in_app_notices_go_out_before_any_email(start_journey, staff_team, settings):
    # A hung mail server must not hold back the bell: every in-app notice is written before the first e-mail.
    settings.EMAIL_BACKEND = f"{__name__}._BellCheckingBackend"
    _BellCheckingBackend.seen = []
    start_journey()
    overdue_scan(now=AT)
    reminders_send_due(now=AT)
    assert len(_BellCheckingBackend.seen) == 3
    assert all(in_app for _, in_app in _BellCheckingBackend.seen), _BellCheckingBackend.seen


class _DyingBackend(BaseEmailBackend):
    """The worker is killed (not an error the sender catches) at its first e-mail."""

    def send_messages(self, messages):
        raise SystemExit("worker killed")


def test_a_worker_killed_mid_send_strands_only_its_small_claim(start_journey, staff_team, make_user, settings, mailoutbox):
    nurses = [make_user("nurse") for _ in range(24)]
    start_journey(assigned=False)  # every nurse is reminded of the labs and the leukapheresis
    overdue_scan(now=AT)
    emails = Reminder.objects.filter(channel=Channel.EMAIL, due_at__lte=AT)
    people = emails.values("recipient").distinct().count()
    assert people >= len(nurses) + 2
    settings.EMAIL_BACKEND = f"{__name__}._DyingBackend"
    with pytest.raises(SystemExit):
        reminders_send_due(now=AT)
    # Every in-app notice went out before the worker died, and it held claims for a few e-mails only.
    assert not Reminder.objects.filter(channel=Channel.IN_APP, due_at__lte=AT).exclude(state=ReminderState.SENT).exists()
    stranded = emails.filter(state=ReminderState.SENDING).values("recipient").distinct().count()
    assert 0 < stranded <= MESSAGES_PER_CLAIM
    # A second worker, a second later, sends everything else; the stranded ones wait for their claim to time out.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    reminders_send_due(now=AT + timedelta(seconds=1))
    assert len({m.to[0] for m in mailoutbox}) == people - stranded
    # (The dead worker's claims carry its clock, which ran on while it worked: a minute's margin.)
    reminders_send_due(now=AT + timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS + 60))
    assert len({m.to[0] for m in mailoutbox}) == len(mailoutbox) == people
