from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from staff.models import User

from carclinic.admin import KeepsAudit


@admin.register(User)
class StaffUserAdmin(KeepsAudit, UserAdmin):
    """Deactivate, never delete: deleting a user deleted their reminders and those reminders' events."""
