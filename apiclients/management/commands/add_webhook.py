from django.core.management.base import BaseCommand, CommandError

from apiclients.models import ApiClient, WebhookEvent
from apiclients.webhooks import webhook_endpoint_create
from carclinic.errors import InvalidInput


class Command(BaseCommand):
    help = "Register a URL to be told of stage changes and overdue steps; prints the signing secret once."

    def add_arguments(self, parser):
        parser.add_argument("client", help="The API client's name.")
        parser.add_argument("url")
        parser.add_argument(
            "--events", default=",".join(WebhookEvent.values), help=f"Comma-separated, from: {', '.join(WebhookEvent.values)}."
        )

    def handle(self, *args, client, url, events, **options):
        try:
            endpoint, secret = webhook_endpoint_create(
                client_name=client, url=url, events=[e.strip() for e in events.split(",") if e.strip()]
            )
        except ApiClient.DoesNotExist:
            raise CommandError(f"No API client named {client!r}.") from None
        except InvalidInput as error:
            raise CommandError(f"{error.message} {error.field_errors}") from None
        self.stderr.write(f"Webhook {endpoint.pk} for {client}: {', '.join(endpoint.events)}. Signing secret (shown once):")
        self.stdout.write(secret)
