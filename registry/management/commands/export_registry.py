"""`manage.py export_registry`: the registry export to a file (or stdout), with a progress bar on stderr.

manage.py export_registry --format csv --output registry.csv
manage.py export_registry --format ndjson --since 2026-01-01 > registry.ndjson
"""

import getpass
import sys
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date

from registry import exports, services
from registry.models import ExportChannel, ExportFormat, ExportKind

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Write the pseudonymous registry export (CSV at the registry time points, or FHIR R4 NDJSON)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=ExportFormat.values, default=ExportFormat.CSV)
        parser.add_argument("--since", help="Only patients whose follow-up changed on or after this date (YYYY-MM-DD).")
        parser.add_argument("--output", help="A file to write; stdout when left out.")
        parser.add_argument("--chunk-size", type=int, default=exports.CHUNK)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (cron).")

    def handle(self, *args, **options):
        since = None
        if options["since"]:
            day = parse_date(options["since"])
            if day is None:
                raise CommandError("--since takes a date, YYYY-MM-DD.")
            since = timezone.make_aware(datetime.combine(day, time.min))
        fmt = options["format"]
        patients = exports.registry_patients(since=since)
        total = patients.count()
        services.export_record(
            actor=None,
            kind=ExportKind.REGISTRY,
            channel=ExportChannel.COMMAND,
            fmt=fmt,
            filters={"since": options["since"], "output": options["output"] or "stdout"},
            row_count=total,
            server_account=getpass.getuser(),
        )
        out = open(options["output"], "w", encoding="utf-8", newline="") if options["output"] else self.stdout._out
        progress = None if options["no_progress"] else Progress(total, self.stderr._out)
        try:
            self._write(out, fmt, patients, options["chunk_size"], progress)
        finally:
            if options["output"]:
                out.close()
        if progress:
            progress.finish()

    def _write(self, out, fmt, patients, chunk_size, progress):
        today = timezone.localdate()
        if fmt == ExportFormat.NDJSON:
            units = exports.field_units()
        else:
            out.write(exports.csv_header_line())
        for chunk in exports.patient_chunks(patients, chunk_size=chunk_size):
            if fmt == ExportFormat.NDJSON:
                lines = exports.ndjson_lines(exports.fhir_resources_of_chunk(chunk, units))
            else:
                lines = exports.csv_lines_of_chunk(chunk, today=today)
            for line in lines:
                out.write(line)
            if progress:
                progress.advance(len(chunk))


class Progress:
    """`[#########.....]  450/1000 patients` on one line of stderr, redrawn as chunks finish."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self.draw()

    def advance(self, count: int) -> None:
        self.done += count
        self.draw()

    def draw(self) -> None:
        filled = BAR_WIDTH if not self.total else BAR_WIDTH * self.done // self.total
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done:>{len(str(self.total))}}/{self.total} patients"
        )
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
