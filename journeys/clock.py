"""Turning anchors and offsets into dates. Pure functions, so the rules are easy to test on their own."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


@dataclass(frozen=True)
class StepDates:
    due_on: date
    window_opens_on: date
    window_closes_on: date
    overdue_after: datetime


def clinic_zone() -> ZoneInfo:
    return timezone.get_default_timezone()


def start_of_day(day: date) -> datetime:
    """Midnight at the clinic, as an aware datetime (stored in UTC by the database)."""
    return datetime.combine(day, time.min, tzinfo=clinic_zone())


def step_dates(
    *, anchor_date: date, offset_days: int, window_before_days: int, window_after_days: int, grace_hours: int
) -> StepDates:
    due = anchor_date + timedelta(days=offset_days)
    closes = due + timedelta(days=window_after_days)
    # A step is late once the last day of its window has ended at the clinic, plus its grace in real
    # hours: across a daylight-saving change the grace stays 24 real hours, not a wall-clock day.
    # (Adding a timedelta to a datetime in a ZoneInfo zone is wall-clock arithmetic, so add it in UTC.)
    overdue_after = start_of_day(closes + timedelta(days=1)).astimezone(UTC) + timedelta(hours=grace_hours)
    return StepDates(
        due_on=due,
        window_opens_on=due - timedelta(days=window_before_days),
        window_closes_on=closes,
        overdue_after=overdue_after,
    )


def dates_for_template(template, anchor_date: date) -> StepDates:
    return step_dates(
        anchor_date=anchor_date,
        offset_days=template.offset_days,
        window_before_days=template.window_before_days,
        window_after_days=template.window_after_days,
        grace_hours=template.grace_hours,
    )


def day_label(day_number: int) -> str:
    """'Day 0', 'Day +12', 'Day −5' (a true minus sign, as printed on the ward's charts)."""
    if day_number == 0:
        return "Day 0"
    return f"Day +{day_number}" if day_number > 0 else f"Day \u2212{-day_number}"


# --- The ward's wall clock, for reminders -----------------------------------------------------------


def wall_time(value: str) -> time:
    """'07:00' (a setting) as a time of day."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def clinic_moment(day: date, at: time, *, hours_before: int = 0) -> datetime:
    """A wall-clock time on a clinic day, as an aware datetime. Arithmetic is on the ward's clock, so
    '48 h before 07:00' is 07:00 two days earlier in winter, in summer and across the change."""
    naive = datetime.combine(day, at) - timedelta(hours=hours_before)
    return naive.replace(tzinfo=clinic_zone())


def morning_of(day: date) -> datetime:
    """When the day's reminders go out (REMINDER_MORNING_TIME on the ward's clock)."""
    return clinic_moment(day, wall_time(settings.REMINDER_MORNING_TIME))


def upcoming_at(due_on: date, lead_hours: int) -> datetime:
    """When the 'coming up' reminder for a step due on `due_on` goes out: lead_hours before the morning."""
    return clinic_moment(due_on, wall_time(settings.REMINDER_MORNING_TIME), hours_before=lead_hours)
