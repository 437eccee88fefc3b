"""The iCalendar feed: the calendar's entries as all-day events, built with the `icalendar` library.

A calendar leaves the hospital (phones, mail servers, calendar providers), so an event carries the step's
name and ids only, never a patient's name, MRN or date of birth."""

from datetime import date, timedelta

from icalendar import Calendar, Event

from planning import selectors
from planning.models import CalendarKind

FEED_DAYS_BACK = 14
FEED_DAYS_AHEAD = 90


def feed_calendar(*, today: date, host: str, **filters) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//carclinic//planning calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "carclinic ward calendar")
    steps = (
        selectors.calendar_steps(
            first_day=today - timedelta(days=FEED_DAYS_BACK), last_day=today + timedelta(days=FEED_DAYS_AHEAD), **filters
        )
        .select_related("template", "journey")
        .order_by("day", "id")
    )
    for step in steps.iterator(chunk_size=500):
        event = Event()
        event.add("uid", f"step-{step.public_id}@{host}")
        event.add("summary", f"{CalendarKind(step.kind).label}: {step.template.name}")
        event.add("dtstart", step.day)
        event.add("dtend", step.day + timedelta(days=1))
        event.add("dtstamp", step.updated_at)
        event.add("categories", [step.kind])
        event.add("description", f"Journey {step.journey.public_id}, step {step.public_id} ({step.get_status_display()}).")
        calendar.add_component(event)
    return calendar.to_ical()
