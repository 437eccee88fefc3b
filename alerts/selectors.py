"""Reads of clinical alerts for the banner, the alert page and the patient page."""

from django.db.models import Exists, OuterRef, QuerySet

from alerts.models import AlertDelivery, ClinicalAlert

BANNER_LIMIT = 5


def _with_context() -> QuerySet[ClinicalAlert]:
    return ClinicalAlert.objects.select_related("patient", "journey", "acknowledged_by", "raised_by")


def open_alerts_for(user) -> QuerySet[ClinicalAlert]:
    """Open alerts sent to this person (raised to them, or escalated to them), the newest first."""
    sent_to_them = AlertDelivery.objects.filter(alert=OuterRef("pk"), recipient=user)
    return _with_context().filter(acknowledged_at=None).filter(Exists(sent_to_them))


def banner_alerts(user) -> list[ClinicalAlert]:
    """At most BANNER_LIMIT + 1 open alerts (one query): the banner shows five and says there are more."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(open_alerts_for(user)[: BANNER_LIMIT + 1])


def open_alerts_for_patient(*, patient_id: int) -> QuerySet[ClinicalAlert]:
    return _with_context().filter(patient_id=patient_id, acknowledged_at=None)


def alert_detail(*, public_id) -> ClinicalAlert:
    return _with_context().select_related("step__template").get(public_id=public_id)


def recent_alerts(*, limit: int = 50) -> QuerySet[ClinicalAlert]:
    """Every alert, open ones first, for the clinic's alert list."""
    return _with_context().order_by("acknowledged_at", "-raised_at", "-id")[:limit]
