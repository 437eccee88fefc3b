from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from carclinic.errors import DomainError
from journeys import selectors
from journeys.protocol_files import InvalidProtocolFile
from journeys.services import SYSTEM, protocol_load


class Command(BaseCommand):
    help = (
        "Load a protocol file as the next version of the protocol it names. Never changes an existing "
        "version; an invalid file is refused with its problems and nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="A protocol file (TOML), e.g. one written by dump_protocol and edited.")
        parser.add_argument(
            "--as", dest="username", default=None, help="Load as this user (who must be an administrator); by default the system."
        )
        activation = parser.add_mutually_exclusive_group()
        activation.add_argument(
            "--activate", action="store_true", default=None, help="Offer the new version for new journeys at once."
        )
        activation.add_argument(
            "--inactive",
            dest="activate",
            action="store_false",
            help="Do not offer it yet, even if it is the protocol's first version.",
        )

    def handle(self, *args, file, username, activate, **options):
        path = Path(file)
        try:
            text = path.read_bytes()
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        actor = SYSTEM
        if username is not None:
            actor = get_user_model().objects.filter(username=username).first()
            if actor is None:
                raise CommandError(f"No user is named {username!r}.")
        try:
            protocol = protocol_load(actor=actor, text=text, source=path.name, activate=activate)
        except InvalidProtocolFile as error:
            raise CommandError(f"{file}: {error.message}") from None
        except DomainError as error:
            raise CommandError(error.message) from None
        state = "active: offered for new journeys" if protocol.is_active else "inactive: activate it in admin to offer it"
        self.stdout.write(
            f"Created {protocol} ({protocol.step_templates.count()} steps, {state}) from {file}, "
            f"content sha256 {protocol.content_hash[:12]}."
        )
        for version in selectors.protocol_versions_with_same_content(protocol):
            self.stdout.write(f"  Same content as version {version}.")
