"""The webhook channel against a real HTTP server on localhost: one post per event, retried when it fails."""

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from notifications.models import Channel, Reminder, ReminderState
from notifications.services import overdue_scan, reminders_send_due
from tests.notifications.conftest import local

AT = local(date(2026, 3, 4), 8)


@pytest.fixture
def webhook_server():
    received, answers = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0) if answers else 204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received, "answers": answers}
    server.shutdown()
    server.server_close()


def test_webhook_posts_once_per_group_and_retries_a_server_error(start_journey, settings, webhook_server):
    settings.REMINDER_WEBHOOK_URL = webhook_server["url"]
    start_journey()
    overdue_scan(now=AT)
    hooks = Reminder.objects.filter(
        id__in=list(Reminder.objects.filter(channel=Channel.WEBHOOK, send_after__lte=AT).values_list("id", flat=True))
    )
    assert hooks.exists()
    webhook_server["answers"].append(500)  # the first post meets a server error
    reminders_send_due(now=AT)
    failed_first = [r for r in hooks.all() if r.state == ReminderState.PENDING]
    assert failed_first and all("HTTP Error 500" in r.last_error for r in failed_first)
    reminders_send_due(now=AT.replace(hour=9))
    assert set(hooks.values_list("state", flat=True)) == {ReminderState.SENT}
    posted = [reminder for body in webhook_server["received"][1:] for reminder in body["reminders"]]
    assert sorted(posted) == sorted(str(r.public_id) for r in hooks)
    assert all("patient ref" in item["text"] for body in webhook_server["received"] for item in body["items"])
