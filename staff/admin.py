from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from carclinic.admin import KeepsAudit
from staff.models import User


@admin.register(User)
class StaffUserAdmin(KeepsAudit, UserAdmin):
    """Deactivate, never delete: deleting a user deleted their reminders and those reminders' events."""
