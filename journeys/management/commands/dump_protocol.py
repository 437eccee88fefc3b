from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from journeys import selectors
from journeys.models import ProtocolTemplate
from journeys.protocol_files import to_toml


class Command(BaseCommand):
    help = "Write a protocol version as a protocol file (TOML), the format load_protocol reads."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version N` is the protocol's version here, not Django's (which `manage.py version` prints).
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("name", help="The protocol's name, as admin lists it.")
        parser.add_argument(
            "--version", dest="protocol_version", type=int, default=None, help="Which version (default: the latest)."
        )
        parser.add_argument("--output", default=None, help="Write to this file instead of standard output.")

    def handle(self, *args, name, protocol_version: int | None, output, **options):
        try:
            protocol = selectors.protocol_version(name=name, version=protocol_version)
        except ProtocolTemplate.DoesNotExist:
            names = sorted(set(ProtocolTemplate.objects.values_list("name", flat=True)))
            known = "; ".join(f"“{each}”" for each in names) or "none yet"
            which = f"version {protocol_version} of “{name}”" if protocol_version else f"“{name}”"
            raise CommandError(f"There is no {which}. Protocols: {known}.") from None
        text = to_toml(selectors.protocol_document(protocol))
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {protocol} to {output}.")
        else:
            self.stdout.write(text, ending="")
