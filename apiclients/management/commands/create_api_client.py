from django.core.management.base import BaseCommand, CommandError

from apiclients.models import ApiClientRole
from apiclients.services import api_client_create
from carclinic.errors import InvalidInput


class Command(BaseCommand):
    help = "Make an API client and print its key. The key is shown this once and never stored in clear."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A short name (letters, digits, - and _), e.g. ehr-engine.")
        parser.add_argument("--role", choices=ApiClientRole.values, default=ApiClientRole.VIEWER)
        parser.add_argument("--expires-days", type=int, default=None, help="The key stops working after this many days.")
        parser.add_argument("--throttle-rate", default=None, help='e.g. "600/min" (the default).')
        parser.add_argument(
            "--all-patients",
            action="store_true",
            help="See every patient. Without it the client sees none until patients are granted in the admin.",
        )

    def handle(self, *args, name, role, expires_days, throttle_rate, all_patients, **options):
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1.")
        try:
            client, key = api_client_create(
                name=name, role=role, expires_in_days=expires_days, throttle_rate=throttle_rate, sees_all_patients=all_patients
            )
        except InvalidInput as error:
            raise CommandError(f"{error.message} {error.field_errors}") from None
        expires = client.expires_at.isoformat() if client.expires_at else "never"
        scope = "every patient" if client.sees_all_patients else "no patient until granted in the admin"
        self.stderr.write(
            f"API client {client.name} ({client.role}, sees {scope}), expires {expires}. "
            "Store this key now; it cannot be shown again:"
        )
        self.stdout.write(key)
