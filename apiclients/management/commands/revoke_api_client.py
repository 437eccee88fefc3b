from django.core.management.base import BaseCommand, CommandError

from apiclients.models import ApiClient
from apiclients.services import api_client_revoke


class Command(BaseCommand):
    help = "Stop an API client's key working at once. The client stays, for the audit trail."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            client = api_client_revoke(name=name)
        except ApiClient.DoesNotExist:
            raise CommandError(f"No API client named {name!r}.") from None
        self.stdout.write(f"Revoked API client {client.name} at {client.revoked_at.isoformat()}.")
