"""What every app's admin shares about clinical records and their audit (issue 12, findings 3 and 4).

Audit is never deleted, by anyone: a reminder is cancelled with a reason, a person is deactivated, a journey
is withdrawn, and each leaves its trail. Clinical records change only through the services, which bump the
version, check the carers' roles and write the history in one transaction; the admin shows them read-only.
"""

from django.core.exceptions import PermissionDenied


class NoEditFromHistory:
    """django-simple-history's page of a past version (`<model>/<id>/history/<version id>/`) saves whatever form
    is POSTed to it: SIMPLE_HISTORY_REVERT_DISABLED only hides its button, and the form there has every field,
    read-only admin or not. A hand-made POST set a patient's coordinator to a viewer and marked a step done by a
    physician, with no signature, event or version (issue 12, finding 4). The page stays for reading."""

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method not in ("GET", "HEAD"):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class KeepsAudit:
    """No delete in the admin, for superusers too (and so no "delete selected" action)."""

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyClinical(NoEditFromHistory, KeepsAudit):
    """Viewable in the admin, changed only through the pages and the API (the services)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
