"""Every write of the reminder engine, one module per job; this module names them for callers (tasks,
commands, views) so they need not know which room a write lives in.

* `notifications.scan` — the overdue scan: what is late now (one rule, `late_condition`), blocked apart;
* `notifications.planning` — which reminders are owed, created once (unique rows);
* `notifications.delivery` — claim, send, retry, give up (`carclinic.outbox`, shared with the webhooks);
* `notifications.messages` — what a message says (ids, never names);
* `notifications.actions` — what people do: snooze, cancel, mark read, e-mail preferences.
The clinic's wall clock (morning, digest time, "48 h before 07:00") is `journeys.clock`.
"""

from notifications.actions import (
    NO_LONGER_SCHEDULED,
    notification_mark_read,
    notifications_mark_all_read,
    preference_set,
    reminder_cancel,
    reminder_snooze,
)
from notifications.delivery import (
    DeliveryError,
    DeliveryResult,
    reminder_send,
    reminders_give_up_stale,
    reminders_send_due,
)
from notifications.messages import compose
from notifications.planning import reminders_plan
from notifications.scan import (
    NO_LONGER_OVERDUE,
    NOT_ACTIVE,
    RESCHEDULED,
    RESOLVED,
    ScanResult,
    overdue_scan,
    reminders_cancel_obsolete,
    reminders_revive_after_resume,
    steps_flag_overdue,
    steps_unflag,
)

__all__ = [
    "NOT_ACTIVE",
    "NO_LONGER_OVERDUE",
    "NO_LONGER_SCHEDULED",
    "RESCHEDULED",
    "RESOLVED",
    "DeliveryError",
    "DeliveryResult",
    "ScanResult",
    "compose",
    "notification_mark_read",
    "notifications_mark_all_read",
    "overdue_scan",
    "preference_set",
    "reminder_cancel",
    "reminder_send",
    "reminder_snooze",
    "reminders_cancel_obsolete",
    "reminders_give_up_stale",
    "reminders_plan",
    "reminders_revive_after_resume",
    "reminders_send_due",
    "steps_flag_overdue",
    "steps_unflag",
]
