"""One small JSON view for monitoring. The pages that show reminders belong to the web app."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from notifications.selectors import reminder_health


@staff_member_required
@require_GET
def health(request):
    figures = reminder_health()
    figures["now"] = figures["now"].isoformat()
    if figures["last_scan_at"]:
        figures["last_scan_at"] = figures["last_scan_at"].isoformat()
    return JsonResponse(figures)
