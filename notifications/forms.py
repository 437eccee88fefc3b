"""Forms of the reminder pages. They check shapes (a time is a time); the services check the rules
(a reason is required, a snooze ends in the future and within 30 days, only scheduled ones change)."""

from django import forms
from django.conf import settings

from journeys.forms import DATETIME_LOCAL, DateTimeLocalInput
from notifications.models import ReminderKind, ReminderState

REASON_HELP = "Goes into the audit trail with your name."


class ReminderLogFilterForm(forms.Form):
    state = forms.ChoiceField(label="State", required=False, choices=[("", "All states"), *ReminderState.choices])
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "All kinds"), *ReminderKind.choices])
    journey = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        return {"state": self.cleaned_data["state"] or None, "kind": self.cleaned_data["kind"] or None}


class ReminderSnoozeForm(forms.Form):
    # Entered and shown in the clinic's time zone (TIME_ZONE); stored in UTC.
    until = forms.DateTimeField(
        label="Snooze until (clinic time)",
        widget=DateTimeLocalInput(),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text=REASON_HELP,
        error_messages={"required": "Give a reason; it goes into the audit trail."},
    )


class ReminderCancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        help_text=REASON_HELP,
        error_messages={"required": "Give a reason; it goes into the audit trail."},
    )


class PreferencesForm(forms.Form):
    """One checkbox per kind: does it reach me by e-mail too? The app always shows it."""

    def __init__(self, *args, current: dict[str, bool], **kwargs):
        super().__init__(*args, **kwargs)
        for kind, label in ReminderKind.choices:
            self.fields[kind] = forms.BooleanField(
                label=label,
                required=False,
                initial=current.get(kind, True),
                help_text=KIND_HELP.get(kind, "").format(
                    lead=settings.REMINDER_UPCOMING_LEAD_HOURS,
                    escalation=settings.REMINDER_ESCALATION_AFTER_HOURS,
                    digest=settings.REMINDER_DIGEST_TIME,
                ),
            )


KIND_HELP = {
    ReminderKind.UPCOMING: "A step you are responsible for is coming up ({lead} hours ahead unless the step says otherwise).",
    ReminderKind.DUE_TODAY: "On the morning of the day a step is due.",
    ReminderKind.OVERDUE: "A step you are responsible for is past its window.",
    ReminderKind.ESCALATION: (
        "Still overdue {escalation} hours after it became late: physicians, their own patients' "
        "physician steps; coordinators, their patients' other steps."
    ),
    ReminderKind.DIGEST: "Coordinators: at {digest} each morning, today's steps, what is overdue and the next 7 days.",
}
