"""The clock across Europe/Berlin's daylight-saving changes (pinned with time-machine): the morning
reminder goes at 07:00 on the ward's clock on both sides, once, and a jump of the clock (forwards over the
change, or backwards after an NTP correction) neither loses nor doubles a reminder."""

from datetime import UTC, date, datetime, timedelta

from journeys.models import Step
from notifications.models import Channel, Notification, Reminder, ReminderKind, ReminderState
from notifications.services import overdue_scan, reminders_send_due
from tests.notifications.conftest import local

UTC = UTC


def _tick(time_machine, moment: datetime) -> None:
    time_machine.move_to(moment, tick=False)
    overdue_scan()
    reminders_send_due()


def _morning_reminders(journey, day: date):
    step = Step.objects.get(journey=journey, due_on=day, template__code__startswith="monitoring-day-")
    return Reminder.objects.filter(step=step, kind=ReminderKind.DUE_TODAY, channel=Channel.IN_APP)


def test_spring_forward_every_half_hour_morning_reminders_once_at_0700_local(start_journey, time_machine):
    # Day 0 on 26 March: daily CRS/ICANS monitoring from 27 March; clocks go forward at 02:00 on 29 March.
    journey = start_journey(leukapheresis_date=date(2026, 3, 5), day0_planned=date(2026, 3, 26))
    moment = datetime(2026, 3, 27, 22, 0, tzinfo=UTC)
    while moment <= datetime(2026, 3, 30, 12, 0, tzinfo=UTC):
        _tick(time_machine, moment)
        moment += timedelta(minutes=30)
    for day, utc_hour in [(date(2026, 3, 28), 6), (date(2026, 3, 29), 5), (date(2026, 3, 30), 5)]:
        reminder = _morning_reminders(journey, day).get()
        assert reminder.due_at == local(day, 7) == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
        assert reminder.state == ReminderState.SENT
        assert reminder.due_at <= reminder.sent_at < reminder.due_at + timedelta(minutes=30)
    # 48 h before 07:00 on 31 March is 07:00 on 29 March on the ward's clock: 47 real hours across the change.
    upcoming = Reminder.objects.get(
        step__journey=journey, step__due_on=date(2026, 3, 31), kind=ReminderKind.UPCOMING, channel=Channel.IN_APP
    )
    assert upcoming.due_at == local(date(2026, 3, 29), 7)


def test_clock_jumping_over_the_change_catches_up_once(start_journey, time_machine):
    journey = start_journey(leukapheresis_date=date(2026, 3, 5), day0_planned=date(2026, 3, 26))
    _tick(time_machine, local(date(2026, 3, 28), 23))
    # The server was off (or its clock jumped) from 23:00 on Saturday to 09:00 on Sunday, over the change.
    _tick(time_machine, local(date(2026, 3, 29), 9))
    _tick(time_machine, local(date(2026, 3, 29), 9, 1))
    reminder = _morning_reminders(journey, date(2026, 3, 29)).get()
    assert reminder.state == ReminderState.SENT and reminder.sent_at == local(date(2026, 3, 29), 9)
    # An NTP correction sets the clock back by an hour; the next scans create and send nothing again.
    _tick(time_machine, local(date(2026, 3, 29), 8))
    _tick(time_machine, local(date(2026, 3, 29), 9, 2))
    assert _morning_reminders(journey, date(2026, 3, 29)).count() == 1
    texts = [item["text"] for n in Notification.objects.all() for item in n.items if item["kind"] == ReminderKind.DUE_TODAY]
    assert len(texts) == len(set(texts))


def test_fall_back_repeated_hour_morning_reminders_once_at_0700_local(start_journey, time_machine):
    # Day 0 on 24 October; clocks go back from 03:00 to 02:00 on 25 October (02:00–03:00 happens twice).
    journey = start_journey(leukapheresis_date=date(2026, 10, 3), day0_planned=date(2026, 10, 24))
    moment = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)
    while moment <= datetime(2026, 10, 26, 8, 0, tzinfo=UTC):
        _tick(time_machine, moment)
        moment += timedelta(minutes=20)
    for day, utc_hour in [(date(2026, 10, 25), 6), (date(2026, 10, 26), 6)]:
        reminder = _morning_reminders(journey, day).get()
        assert reminder.due_at == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
        assert reminder.state == ReminderState.SENT
    # The digest, too, at 07:30 local once a day (24 October's was planned late, on the first scan at 22:00).
    digests = Reminder.objects.filter(kind=ReminderKind.DIGEST, channel=Channel.IN_APP).order_by("for_day")
    assert [(d.for_day, d.due_at) for d in digests] == [
        (date(2026, 10, 24), datetime(2026, 10, 24, 5, 30, tzinfo=UTC)),
        (date(2026, 10, 25), datetime(2026, 10, 25, 6, 30, tzinfo=UTC)),
        (date(2026, 10, 26), datetime(2026, 10, 26, 6, 30, tzinfo=UTC)),
    ]
