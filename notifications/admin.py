from django.contrib import admin

from carclinic.admin import KeepsAudit, ReadOnlyClinical
from notifications.models import Notification, Reminder, ReminderEvent, ScanRun, StepReminderPolicy, UserNotificationPreference


class ReminderEventInline(KeepsAudit, admin.TabularInline):
    model = ReminderEvent
    extra = 0
    readonly_fields = ["action", "reason", "detail", "actor", "at"]
    can_delete = False


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyClinical, admin.ModelAdmin):
    list_display = ["public_id", "kind", "channel", "recipient", "state", "due_at", "attempts", "sent_at"]
    list_filter = ["state", "kind", "channel"]
    date_hierarchy = "due_at"
    raw_id_fields = ["step", "recipient", "cancelled_by"]
    inlines = [ReminderEventInline]
    # The outbox is written by the engine; people snooze or cancel through the services, with a reason. Never
    # deleted: it would take its snooze and cancel events, reasons and actors with it.
    readonly_fields = [f.name for f in Reminder._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["public_id", "recipient", "kind", "title", "created_at", "read_at"]
    list_filter = ["kind"]
    raw_id_fields = ["recipient"]


@admin.register(UserNotificationPreference)
class UserNotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "email"]


@admin.register(StepReminderPolicy)
class StepReminderPolicyAdmin(admin.ModelAdmin):
    list_display = ["step_template", "upcoming_lead_hours", "remind_on_the_day"]


@admin.register(ScanRun)
class ScanRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "finished_at", "flagged", "unflagged", "reminders_created", "reminders_cancelled"]
