"""The registry export: time points worked out by hand, FHIR NDJSON that parses, the command's file and
progress bar, the audit row, and queries that depend on the chunks, not on the visits or the patients."""

import io
import json
from datetime import date

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient

from journeys.models import StepStatus
from registry import exports
from registry.models import ExportChannel, ExportFormat, ExportKind, RegistryExport
from tests.registry.builders import add_step, at, make_journey

FOLLOW_UP = {number: (at(2025, 1, 1), at(2025, 1, 2)) for number in (1, 2, 3, 4)} | {5: (at(2025, 1, 20), None)}


@pytest.fixture
def followed(db, at_clinic):
    """Clock at 15 June 2026. A (SLE): Day 0 10 Jan 2025, so Day +521: Day 100 (70–130), month 6 (137–227) and
    year 1 (305–425) are reached, year 2 (640–820) is not. B: Day 0 1 May 2026, nothing reached yet.
    C: not infused, never exported."""
    at_clinic(2026, 6, 15, 12, 0)
    a = make_journey(leukapheresis=date(2024, 12, 16), day0=date(2025, 1, 10), stages=FOLLOW_UP)
    add_step(a, "visit-day-14", record={"cd19_b_cells": 0, "igg": 6.1})  # Day +14: in no window
    add_step(a, "visit-month-3", record={"cd19_b_cells": 2.5, "igg": 6.8, "disease_activity": 2})  # Day +90
    add_step(a, "remission-month-3", record={"remission": "doris"})  # Day +90, its own step
    add_step(a, "visit-month-6", record={"igg": 7.4, "new_malignancy": "none"}, performed_at=at(2025, 7, 19, 10))  # +190
    add_step(a, "visit-month-9", status=StepStatus.PENDING)
    b = make_journey(leukapheresis=date(2026, 4, 10), day0=date(2026, 5, 1), stages=FOLLOW_UP)
    make_journey(leukapheresis=date(2026, 6, 1), day0=None, stages={1: (at(2026, 5, 25), None)})
    return {"a": a, "b": b}


def csv_text(**kwargs) -> list[str]:
    patients = exports.registry_patients()
    return "".join(exports.registry_lines(fmt="csv", patients=patients, today=date(2026, 6, 15), **kwargs)).splitlines()


def test_csv_at_the_registry_time_points(followed):
    a = followed["a"]
    lines = csv_text()
    assert lines[0] == ",".join(exports.CSV_HEADER)
    blank = [""] * len(exports.VALUE_KEYS)

    def row(point, target, window, visit_day, **values):
        cells = [str(a.patient.public_id), str(a.public_id), "sle", point, str(target), str(window), visit_day]
        return ",".join(cells + [str(values.get(key, "")) for key in exports.VALUE_KEYS])

    assert lines[1:] == [
        # Day 100: the Day +90 visit; its remission from the assessment recorded as its own step that day.
        row("day-100", 100, 30, "90", cd19_b_cells=2.5, igg=6.8, disease_activity=2, remission="doris"),
        row("month-6", 182, 45, "190", igg=7.4, new_malignancy="none"),
        # Year 1: its window has closed without a visit: a row with no values tells the registry so.
        ",".join([str(a.patient.public_id), str(a.public_id), "sle", "year-1", "365", "60", "", *blank]),
    ]


def test_csv_names_no_one(followed):
    patient = followed["a"].patient
    text = "\n".join(csv_text())
    assert patient.mrn not in text and patient.family_name not in text and patient.date_of_birth.isoformat() not in text


def test_ndjson_is_one_fhir_resource_per_line(followed):
    a = followed["a"]
    lines = list(exports.registry_lines(fmt="ndjson", patients=exports.registry_patients(), today=date(2026, 6, 15)))
    resources = [json.loads(line) for line in lines]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    assert all("resourceType" in resource for resource in resources)
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    # Patients A and B, by id only; A's values: 2 at Day +14, 3 at Day +90, the remission, 2 at month 6.
    assert patients == [
        {"resourceType": "Patient", "id": str(a.patient.public_id)},
        {"resourceType": "Patient", "id": str(followed["b"].patient.public_id)},
    ]
    assert len(observations) == 8
    for resource in patients:
        FhirPatient.model_validate(resource)
    for resource in observations:
        Observation.model_validate(resource)
        assert resource["subject"] == {"reference": f"Patient/{a.patient.public_id}"}
    igg = [r for r in observations if r["code"]["coding"][0]["code"] == "2465-3"]
    assert [r["valueQuantity"] for r in igg] == [
        {"value": 6.1, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
        {"value": 6.8, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
        {"value": 7.4, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    ]
    b_cells = next(r for r in observations if r["code"]["coding"][0]["code"] == "cd19_b_cells")
    assert b_cells["code"]["coding"][0]["system"] == "urn:carclinic:record-field"  # no LOINC code we are sure of
    assert b_cells["valueQuantity"]["code"] == "/uL"
    remission = next(r for r in observations if r["code"]["coding"][0]["code"] == "remission")
    assert remission["valueCodeableConcept"]["coding"][0]["code"] == "doris"
    # The same value gets the same id on every export, so a registry updates rather than duplicates.
    again = [
        json.loads(line)
        for line in exports.registry_lines(fmt="ndjson", patients=exports.registry_patients(), today=date(2026, 6, 15))
    ]
    assert [r["id"] for r in again] == [r["id"] for r in resources]


def test_since_keeps_the_patients_whose_follow_up_changed(followed):
    from django.utils import timezone

    from journeys.models import Step

    Step.objects.update(updated_at=at(2026, 1, 1))
    assert exports.registry_patients(since=timezone.now()).count() == 0
    assert exports.registry_patients(since=at(2025, 12, 31)).count() == 1  # B has no follow-up step yet
    followed["a"].steps.filter(template__code="visit-month-6").update(updated_at=timezone.now())
    assert list(exports.registry_patients(since=timezone.now()).values_list("id", flat=True)) == [followed["a"].patient_id]


def test_missing_keys_and_odd_values_are_tolerated(followed):
    record = {"igg": "", "infection_since_last_visit": "2", "new_malignancy": True, "something_else": [1, 2]}
    add_step(followed["b"], "visit-day-14", record=record)
    lines = list(exports.registry_lines(fmt="ndjson", patients=exports.registry_patients(), today=date(2026, 6, 15)))
    resources = [json.loads(line) for line in lines if str(followed["b"].patient.public_id) in line]
    by_code = {r["code"]["coding"][0]["code"]: r for r in resources if r["resourceType"] == "Observation"}
    assert set(by_code) == {"infection_since_last_visit", "new_malignancy"}  # the empty IgG and unknown keys left out
    assert by_code["infection_since_last_visit"]["valueCodeableConcept"]["coding"][0]["code"] == "2"
    assert by_code["new_malignancy"]["valueBoolean"] is True
    for resource in by_code.values():
        Observation.model_validate(resource)


def _queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        csv_text(**kwargs)
    return len(captured)


def test_queries_grow_with_chunks_not_with_visits(followed):
    # One chunk: the patients, their journeys, their visits, then the empty next page: 4 queries.
    assert _queries(chunk_size=10) == 4
    for code in ("visit-month-9", "visit-month-12", "ltfu-year-2"):
        add_step(followed["b"], code, record={"igg": 8.0})
    assert _queries(chunk_size=10) == 4
    # One patient per chunk: 3 queries per chunk and the empty page.
    assert _queries(chunk_size=1) == 3 * 2 + 1


def test_the_export_is_streamed_chunk_by_chunk(followed):
    """Nothing is read before the first line is asked for, and the first patient's lines come out before the
    second chunk is read: the file is never held whole."""
    with CaptureQueriesContext(connection) as captured:
        lines = exports.registry_lines(fmt="ndjson", patients=exports.registry_patients(), today=date(2026, 6, 15), chunk_size=1)
        assert len(captured) == 0
        first = next(lines)
        after_first = len(captured)
        rest = list(lines)
    assert json.loads(first)["resourceType"] == "Patient"
    assert after_first == 1 + 3  # the field units, then one chunk
    assert len(captured) == 1 + 3 * 2 + 1 and len(rest) == 9


def test_the_command_writes_the_file_with_a_progress_bar_and_is_audited(followed, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_registry", "--format", "csv", "--chunk-size", "1", stdout=out, stderr=err)
    assert out.getvalue().splitlines() == csv_text()
    progress = err.getvalue()
    assert f"[{'.' * 30}] 0/2 patients" in progress
    assert f"[{'#' * 15}{'.' * 15}] 1/2 patients" in progress
    assert progress.endswith(f"[{'#' * 30}] 2/2 patients\n")
    audit = RegistryExport.objects.get()
    assert (audit.kind, audit.format, audit.channel, audit.row_count, audit.exported_by) == (
        ExportKind.REGISTRY,
        ExportFormat.CSV,
        ExportChannel.COMMAND,
        2,
        None,
    )
    assert audit.exported_by_label.startswith("server:") and audit.filters == {"output": "stdout"}

    target = tmp_path / "registry.ndjson"
    call_command(
        "export_registry", "--format", "ndjson", "--output", str(target), "--no-progress", stdout=io.StringIO(), stderr=err
    )
    lines = target.read_text().splitlines()
    assert len(lines) == 10 and {json.loads(line)["resourceType"] for line in lines} == {"Patient", "Observation"}
    assert RegistryExport.objects.count() == 2


def test_the_command_refuses_a_bad_date(followed):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("export_registry", "--since", "last week", stdout=io.StringIO(), stderr=io.StringIO())
    assert not RegistryExport.objects.exists()
