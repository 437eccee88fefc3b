"""Celery tasks of follow-up: ids in, one service call, safe to run twice (the service claims before it sends)."""

from smtplib import SMTPException

from celery import shared_task
from django.db import OperationalError

from followup import services

TRANSIENT = (OperationalError, ConnectionError, SMTPException, TimeoutError)


@shared_task(
    name="followup.send_questionnaire_email",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def send_questionnaire_email(link_id: int) -> dict:
    return {"sent": services.questionnaire_email_send(link_id=link_id)}
