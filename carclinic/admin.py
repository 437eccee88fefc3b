"""What every app's admin shares about clinical records and their audit (issue 12, findings 3 and 4).

Audit is never deleted, by anyone: a reminder is cancelled with a reason, a person is deactivated, a journey
is withdrawn, and each leaves its trail. Clinical records change only through the services, which bump the
version, check the carers' roles and write the history in one transaction; the admin shows them read-only.
"""


class KeepsAudit:
    """No delete in the admin, for superusers too (and so no "delete selected" action)."""

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyClinical(KeepsAudit):
    """Viewable in the admin, changed only through the pages and the API (the services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
