"""What a reminder message says: one message for everything going to one person at one time, most urgent
first, with ids and links only (never a patient's name or MRN in an e-mail or a webhook).
"""

from collections import defaultdict

from django.conf import settings
from django.urls import reverse

from journeys.clock import day_label
from notifications.models import Reminder, ReminderKind


def _link(patient_public_id, step_public_id=None) -> str:
    """The patient page, scrolled to the step. Built with reverse() so it follows the page's real URL
    (it once pointed at a /journeys/<id>/ page that never existed)."""
    path = reverse("patient_detail", args=[patient_public_id]) + (f"#step-{step_public_id}" if step_public_id else "")
    return settings.REMINDER_LINK_BASE.rstrip("/") + path


def _step_item(reminder: Reminder) -> dict:
    """One line about one step. Ids only: a short patient reference, never a name or an MRN."""
    step = reminder.step
    journey = step.journey
    ref = str(journey.patient.public_id)[:8]
    text = (
        f"{step.template.name}: due {step.due_on:%a %d %b %Y} ({day_label(journey.day_number(step.due_on))}), patient ref {ref}"
    )
    return {
        "kind": reminder.kind,
        "text": text,
        "journey": str(journey.public_id),
        "step": str(step.public_id),
        "link": _link(journey.patient.public_id, step.public_id),
    }


def _digest_items(reminder: Reminder) -> list[dict]:
    """The coordinator's day: what is overdue, what is due today, what comes in the next seven days.
    Their own patients and those with no coordinator."""
    from notifications.selectors import digest_steps

    today = reminder.for_day
    items = []
    for step in digest_steps(coordinator_id=reminder.recipient_id, today=today):
        journey = step.journey
        if step.overdue_since:
            section = "Overdue"
        elif step.due_on == today:
            section = "Today"
        else:
            section = "Next 7 days"
        items.append(
            {
                "kind": ReminderKind.DIGEST,
                "section": section,
                "journey": str(journey.public_id),
                "step": str(step.public_id),
                "link": _link(journey.patient.public_id, step.public_id),
                "text": f"{section}: {step.template.name}, due {step.due_on:%a %d %b} "
                f"({day_label(journey.day_number(step.due_on))}), patient ref {str(journey.patient.public_id)[:8]}",
            }
        )
    if not items:
        items.append(
            {
                "kind": ReminderKind.DIGEST,
                "section": "",
                "text": "Nothing overdue, due today or in the next 7 days.",
                "journey": "",
                "step": "",
                "link": "",
            }
        )
    return items


# Most urgent first, in the subject and in the body.
_SUBJECT_WORDS = {
    ReminderKind.ESCALATION: "escalated",
    ReminderKind.OVERDUE: "overdue",
    ReminderKind.DUE_TODAY: "due today",
    ReminderKind.UPCOMING: "coming up",
    ReminderKind.DIGEST: "your daily digest",
}
_URGENCY = {kind: rank for rank, kind in enumerate(_SUBJECT_WORDS)}


def compose(reminders: list[Reminder]) -> tuple[str, str, list[dict], str]:
    """One message for everything going to one person at one time: title, body, items, most urgent kind."""
    reminders = sorted(reminders, key=lambda r: (_URGENCY[r.kind], r.due_at, r.id))
    counts = defaultdict(int)
    items: list[dict] = []
    for reminder in reminders:
        counts[reminder.kind] += 1
        if reminder.kind == ReminderKind.DIGEST:
            items += _digest_items(reminder)
        else:
            items.append(_step_item(reminder))
    kinds = [k for k in _SUBJECT_WORDS if counts[k]]
    parts = [_SUBJECT_WORDS[k] if k == ReminderKind.DIGEST else f"{counts[k]} {_SUBJECT_WORDS[k]}" for k in kinds]
    title = "carclinic: " + ", ".join(parts)
    body = "\n".join(
        f"- [{ReminderKind(item['kind']).label}] {item['text']}" + (f"\n  {item['link']}" if item["link"] else "")
        for item in items
    )
    return title[:200], body, items, kinds[0]
