"""Every read of the reminder engine that the pages, the API, the health view and the workers share."""

from datetime import date, datetime, timedelta

from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from journeys.models import Journey, JourneyStatus, Step, StepStatus
from notifications.models import Notification, Reminder, ReminderState, ScanRun, UserNotificationPreference


def _reminders_with_context() -> QuerySet[Reminder]:
    return Reminder.objects.select_related("recipient", "cancelled_by", "step__template", "step__journey__patient")


def reminders_for_patient(*, patient_id: int, now: datetime | None = None, days_ahead: int = 7) -> QuerySet[Reminder]:
    """The patient's notification log: every reminder already sent or settled, and every one scheduled
    for the coming days, newest due first."""
    now = now or timezone.now()
    return (
        _reminders_with_context()
        .filter(step__journey__patient_id=patient_id)
        .filter(~Q(state=ReminderState.PENDING) | Q(send_after__lte=now + timedelta(days=days_ahead)))
        .order_by("-due_at", "-id")
    )


def clinic_reminder_log(
    *,
    now: datetime | None = None,
    days_back: int = 7,
    days_ahead: int = 7,
    state: str | None = None,
    kind: str | None = None,
    journey_id: int | None = None,
) -> QuerySet[Reminder]:
    """The clinic's notification log: reminders due in the window around now, with their state;
    optionally only one state, one kind, or one journey's."""
    now = now or timezone.now()
    reminders = _reminders_with_context().filter(
        due_at__gte=now - timedelta(days=days_back), due_at__lte=now + timedelta(days=days_ahead)
    )
    if state:
        reminders = reminders.filter(state=state)
    if kind:
        reminders = reminders.filter(kind=kind)
    if journey_id:
        reminders = reminders.filter(step__journey_id=journey_id)
    return reminders.order_by("-due_at", "-id")


def reminders_for_journey(*, journey_id: int, now: datetime | None = None, days_ahead: int = 7) -> QuerySet[Reminder]:
    """One journey's reminders for the patient page: every one sent or settled, and every one scheduled
    for the coming days, latest due first."""
    now = now or timezone.now()
    return (
        _reminders_with_context()
        .filter(step__journey_id=journey_id)
        .filter(~Q(state=ReminderState.PENDING) | Q(send_after__lte=now + timedelta(days=days_ahead)))
        .order_by("-due_at", "-id")
    )


def notifications_for(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(recipient=user)
    return notifications.filter(read_at__isnull=True) if unread_only else notifications


def patients_of_journeys(*, journey_public_ids) -> dict:
    """{journey public_id (str): patient} for naming the patients of a page of notifications. One query."""
    return {
        str(journey.public_id): journey.patient
        for journey in Journey.objects.filter(public_id__in=journey_public_ids).select_related("patient")
    }


def email_preferences(*, user) -> dict[str, bool]:
    """{kind: by e-mail?} for the kinds the user has chosen; a kind not listed goes by e-mail."""
    return dict(UserNotificationPreference.objects.filter(user=user).values_list("kind", "email"))


def unread_notification_count(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def digest_steps(*, coordinator_id: int, today: date, days_ahead: int = 7) -> QuerySet[Step]:
    """A coordinator's day: overdue, due today and due in the next days, for their own patients and
    for patients who have no coordinator."""
    return (
        Step.objects.select_related("template", "journey__patient")
        .filter(status=StepStatus.PENDING, journey__status=JourneyStatus.ACTIVE)
        .filter(Q(journey__patient__coordinator_id=coordinator_id) | Q(journey__patient__coordinator__isnull=True))
        .filter(Q(overdue_since__isnull=False) | Q(due_on__gte=today, due_on__lte=today + timedelta(days=days_ahead)))
        .order_by("due_on", "template__position", "id")
    )


def reminder_health(*, now: datetime | None = None) -> dict:
    """What an operator asks first: when did the scan last run, how much waits to be sent and since when,
    and did anything give up. Three queries."""
    now = now or timezone.now()
    last = ScanRun.objects.order_by("-started_at").values("started_at", "finished_at", "flagged", "reminders_created").first()
    due = Reminder.objects.filter(Q(state=ReminderState.PENDING, send_after__lte=now) | Q(state=ReminderState.SENDING))
    figures = due.aggregate(oldest=Min("send_after"), newest_claim=Max("claimed_at"))
    pending_now = due.count()
    failed_last_day = Reminder.objects.filter(state=ReminderState.FAILED, due_at__gte=now - timedelta(days=1)).count()
    return {
        "now": now,
        "last_scan_at": last["started_at"] if last else None,
        "last_scan_age_seconds": (now - last["started_at"]).total_seconds() if last else None,
        "last_scan_flagged": last["flagged"] if last else None,
        "last_scan_reminders_created": last["reminders_created"] if last else None,
        "pending_due": pending_now,
        "oldest_pending_age_seconds": (now - figures["oldest"]).total_seconds() if figures["oldest"] else 0.0,
        "failed_last_24h": failed_last_day,
    }
