"""What leaves carclinic for a registry, and the metrics tables as CSV.

The registry export is pseudonymous: a patient is their public id, never a name, MRN or birth date, and a
visit is placed by its day after Day 0. It is read in chunks of patients by keyset (`id > last id`), each
chunk's visits with `.iterator()`, so a file of 10,000 patients streams with the memory of one chunk.

Time points (registries such as the EBMT's and CIBMTR's ask at Day 100, month 6, year 1, then yearly;
the US LTFU guidance runs 15 years): the visit nearest to the target day, within the window either side,
gives each value; a value missing at that visit is taken from the next nearest visit in the window that
has it (the remission assessment is its own step on the visit's day).
"""

import csv
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db.models import Exists, OuterRef
from django.utils import timezone

from journeys.models import Journey, StageNumber, Step, StepStatus, StepTemplate
from patients.models import Patient
from registry import selectors

CHUNK = 100  # patients per chunk: what the export holds in memory at once


@dataclass(frozen=True)
class TimePoint:
    name: str
    day: int  # after Day 0
    window: int  # days either side


TIME_POINTS = (
    TimePoint("day-100", 100, 30),
    TimePoint("month-6", 182, 45),
    TimePoint("year-1", 365, 60),
    *(TimePoint(f"year-{year}", 365 * year, 90) for year in range(2, 16)),
)

# What a registry asks at each time point, by record field name (stage-5 visits). Missing keys are blank.
VALUE_KEYS = (
    "cd19_b_cells",
    "igg",
    "anti_dsdna",
    "c3",
    "c4",
    "urine_protein_creatinine",
    "creatinine",
    "egfr",
    "ck",
    "disease_activity",
    "sledai_2k",
    "mg_adl",
    "mrss",
    "edss",
    "physician_global",
    "prednisone_mg_day",
    "remission",
    "remission_drug_free",
    "infection_since_last_visit",
    "new_malignancy",
    "igg_replacement",
)

CSV_HEADER = ["patient", "journey", "indication", "time_point", "target_day", "window_days", "visit_day", *VALUE_KEYS]


class _Echo:
    """A file-like object whose write returns the line, for csv.writer inside a streamed response."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """Plain text, never a formula: a cell starting with = + - @ is prefixed so a spreadsheet shows it."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_lines(header: list[str], rows: Iterator[list]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


# --- The registry export --------------------------------------------------------------------------


def registry_patients(*, since: datetime | None = None, patient_scope=None):
    """Patients with an infused journey; with `since`, only those whose follow-up changed since then (the
    FHIR Bulk Data `_since`); `patient_scope` (a queryset of ids) narrows to a client's patients."""
    infused = Journey.objects.filter(patient=OuterRef("pk"), day0_actual__isnull=False)
    patients = Patient.objects.filter(Exists(infused))
    if since is not None:
        patients = patients.filter(
            Exists(
                Step.objects.filter(
                    journey__patient=OuterRef("pk"), template__stage=StageNumber.IMMUNE_RE_EDUCATION, updated_at__gte=since
                )
            )
        )
    if patient_scope is not None:
        patients = patients.filter(id__in=patient_scope)
    return patients


@dataclass
class Visit:
    step_public_id: uuid.UUID
    template_id: int
    day: int  # after Day 0
    on: date
    record: dict


@dataclass
class JourneyVisits:
    public_id: uuid.UUID
    day0: date
    visits: list[Visit]


@dataclass
class PatientVisits:
    public_id: uuid.UUID
    indication: str
    journeys: list[JourneyVisits]


def patient_chunks(patients, *, chunk_size: int = CHUNK) -> Iterator[list[PatientVisits]]:
    """The patients in keyset-paged chunks, each with its infused journeys and their done stage-5 visits:
    three queries per chunk, whatever the number of visits."""
    last_id = 0
    patients = patients.order_by("id")
    while True:
        batch = list(patients.filter(id__gt=last_id).values_list("id", "public_id", "indication")[:chunk_size])
        if not batch:
            return
        last_id = batch[-1][0]
        ids = [row[0] for row in batch]
        journeys: dict[int, JourneyVisits] = {}
        of_patient: dict[int, list[JourneyVisits]] = defaultdict(list)
        for journey_id, patient_id, public_id, day0 in (
            Journey.objects.filter(patient_id__in=ids, day0_actual__isnull=False)
            .order_by("day0_actual", "id")
            .values_list("id", "patient_id", "public_id", "day0_actual")
        ):
            journeys[journey_id] = JourneyVisits(public_id, day0, [])
            of_patient[patient_id].append(journeys[journey_id])
        steps = (
            Step.objects.filter(
                journey_id__in=list(journeys), template__stage=StageNumber.IMMUNE_RE_EDUCATION, status=StepStatus.DONE
            )
            .exclude(record={})
            .order_by("journey_id", "id")
            .values_list("journey_id", "public_id", "template_id", "performed_at", "completed_at", "record")
        )
        for journey_id, public_id, template_id, performed_at, completed_at, record in steps.iterator(chunk_size=chunk_size):
            journey = journeys[journey_id]
            on = timezone.localdate(performed_at or completed_at)
            journey.visits.append(Visit(public_id, template_id, (on - journey.day0).days, on, record))
        yield [PatientVisits(public_id, indication, of_patient[pk]) for pk, public_id, indication in batch]


def time_point_values(visits: list[Visit], point: TimePoint) -> tuple[int | None, dict]:
    """(the nearest visit's day, each value from the nearest visit in the window that has it)."""
    near = sorted(
        (visit for visit in visits if abs(visit.day - point.day) <= point.window),
        key=lambda visit: (abs(visit.day - point.day), visit.day),
    )
    values = {}
    for key in VALUE_KEYS:
        for visit in near:
            if visit.record.get(key) not in (None, ""):
                values[key] = visit.record[key]
                break
    return (near[0].day if near else None), values


def csv_rows_of_chunk(chunk: list[PatientVisits], *, today: date) -> Iterator[list]:
    """One row per patient, journey and time point reached (its window closed) or visited."""
    for patient in chunk:
        for journey in patient.journeys:
            days_since = (today - journey.day0).days
            for point in TIME_POINTS:
                visit_day, values = time_point_values(journey.visits, point)
                if visit_day is None and days_since < point.day + point.window:
                    continue
                yield [
                    patient.public_id,
                    journey.public_id,
                    patient.indication,
                    point.name,
                    point.day,
                    point.window,
                    visit_day,
                    *[values.get(key) for key in VALUE_KEYS],
                ]


def csv_lines_of_chunk(chunk: list[PatientVisits], *, today: date) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in csv_rows_of_chunk(chunk, today=today):
        yield writer.writerow([_cell(value) for value in row])


def csv_header_line() -> str:
    return csv.writer(_Echo()).writerow(CSV_HEADER)


def registry_csv_rows(patients, *, today: date, chunk_size: int = CHUNK) -> Iterator[list]:
    for chunk in patient_chunks(patients, chunk_size=chunk_size):
        yield from csv_rows_of_chunk(chunk, today=today)


# --- FHIR R4, one resource per line (FHIR Bulk Data's NDJSON) -------------------------------------------

LOCAL_FIELD_SYSTEM = "urn:carclinic:record-field"
LOCAL_VALUE_SYSTEM = "urn:carclinic:record-value"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_NAMESPACE = uuid.UUID("0d6b8f0e-55a4-4a3c-9d0b-6f1c8e2b7a34")

# LOINC codes only where the code and the unit we record agree beyond doubt; every other value goes under the
# local code system with its record field's name (anti-dsDNA assays, UPCR units, eGFR formulas and the CD19+
# count differ between laboratories, and a wrong LOINC code is worse than a local one).
LOINC_BY_FIELD = {
    ("igg", "g/L"): ("2465-3", "IgG [Mass/volume] in Serum or Plasma"),
    ("creatinine", "µmol/L"): ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma"),
    ("c3", "g/L"): ("4485-9", "Complement C3 [Mass/volume] in Serum or Plasma"),
    ("c4", "g/L"): ("4498-2", "Complement C4 [Mass/volume] in Serum or Plasma"),
    ("ck", "U/L"): ("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma"),
}
UCUM_CODES = {
    "/µL": "/uL",
    "g/L": "g/L",
    "µmol/L": "umol/L",
    "mg/L": "mg/L",
    "U/L": "U/L",
    "IU/mL": "[iU]/mL",
    "mg/mmol": "mg/mmol",
    "mg/day": "mg/d",
    "mL/min/1.73 m²": "mL/min/{1.73_m2}",
}


def field_units() -> dict[int, dict[str, tuple[str, str, str]]]:
    """Per stage-5 step template: each record field's (unit, label, type). One query, by protocol templates, not patients."""
    units: dict[int, dict[str, tuple[str, str, str]]] = {}
    templates = StepTemplate.objects.filter(stage=StageNumber.IMMUNE_RE_EDUCATION).values_list("id", "record_fields")
    for template_id, specs in templates:
        units[template_id] = {
            spec["name"]: (spec.get("unit") or "", spec.get("label") or spec["name"], spec.get("type") or "")
            for spec in specs or []
        }
    return units


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None


def observation(*, patient_id, visit: Visit, key: str, value, unit: str, label: str, kind: str = "") -> dict:
    loinc = LOINC_BY_FIELD.get((key, unit))
    coding = (
        {"system": LOINC, "code": loinc[0], "display": loinc[1]}
        if loinc
        else {"system": LOCAL_FIELD_SYSTEM, "code": key, "display": label}
    )
    resource = {
        "resourceType": "Observation",
        # Stable across exports, so a registry that loads twice updates instead of adding a copy.
        "id": str(uuid.uuid5(OBSERVATION_NAMESPACE, f"{visit.step_public_id}:{key}")),
        "status": "final",
        "code": {"coding": [coding], "text": label},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": visit.on.isoformat(),
    }
    # A choice is a code even when it reads as a number (an infection grade "2"), never a quantity.
    number = None if kind == "choice" else _number(value)
    if isinstance(value, bool):
        resource["valueBoolean"] = value
    elif number is not None:
        quantity = {"value": number}
        if unit:
            quantity["unit"] = unit
            if unit in UCUM_CODES:
                quantity.update(system=UCUM, code=UCUM_CODES[unit])
        resource["valueQuantity"] = quantity
    else:
        resource["valueCodeableConcept"] = {"coding": [{"system": f"{LOCAL_VALUE_SYSTEM}:{key}", "code": str(value)}]}
    return resource


def fhir_resources_of_chunk(chunk: list[PatientVisits], units: dict) -> Iterator[dict]:
    """A Patient (its pseudonymous id only) and an Observation per registry value of each done stage-5 visit."""
    for patient in chunk:
        yield {"resourceType": "Patient", "id": str(patient.public_id)}
        for journey in patient.journeys:
            for visit in journey.visits:
                specs = units.get(visit.template_id, {})
                for key in VALUE_KEYS:
                    value = visit.record.get(key)
                    if value in (None, ""):
                        continue
                    unit, label, kind = specs.get(key, ("", key, ""))
                    yield observation(
                        patient_id=patient.public_id, visit=visit, key=key, value=value, unit=unit, label=label, kind=kind
                    )


def registry_fhir_resources(patients, *, chunk_size: int = CHUNK) -> Iterator[dict]:
    units = field_units()
    for chunk in patient_chunks(patients, chunk_size=chunk_size):
        yield from fhir_resources_of_chunk(chunk, units)


def ndjson_lines(resources: Iterator[dict]) -> Iterator[str]:
    for resource in resources:
        yield json.dumps(resource, separators=(",", ":"), ensure_ascii=False) + "\n"


def registry_lines(*, fmt: str, patients, today: date, chunk_size: int = CHUNK) -> Iterator[str]:
    if fmt == "ndjson":
        return ndjson_lines(registry_fhir_resources(patients, chunk_size=chunk_size))
    return csv_lines(CSV_HEADER, registry_csv_rows(patients, today=today, chunk_size=chunk_size))


# --- The metrics tables as CSV -----------------------------------------------------------------------


def _one_decimal(value: float | None) -> str:
    """Rounded half up, as the page's floatformat rounds, so the file and the page say the same."""
    return "" if value is None else str(Decimal(str(value)).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _days(value: float | None) -> str:
    return _one_decimal(value)


def _rate(value: float | None) -> str:
    return _one_decimal(None if value is None else value * 100)


SPREAD_HEADER = ["n", "median_days", "q1_days", "q3_days", "min_days", "max_days"]


def _spread_cells(spread: selectors.Spread) -> list:
    return [spread.n, *[_days(getattr(spread, name)) for name in ("median", "q1", "q3", "low", "high")]]


def metrics_table(kind: str, metrics: selectors.Metrics) -> tuple[list[str], list[list]]:
    """The header and rows of one metrics table, as the page shows it."""
    if kind == "vein_to_vein":
        return ["indication", *SPREAD_HEADER], [[row.label, *_spread_cells(row.spread)] for row in metrics.vein_to_vein]
    if kind == "length_of_stay":
        return ["indication", *SPREAD_HEADER], [[row.label, *_spread_cells(row.spread)] for row in metrics.length_of_stay]
    if kind == "turnaround":
        return ["maker", "plant", *SPREAD_HEADER], [
            [row.group, row.label, *_spread_cells(row.spread)] for row in metrics.turnaround
        ]
    if kind == "on_time":
        return (
            ["stage", "on_time", "late", "counted", "on_time_percent"],
            [[row.label, row.on_time, row.late, row.counted, _rate(row.rate)] for row in metrics.on_time],
        )
    if kind == "grades":
        rows = [[f"grade {row.grade}", row.crs, row.icans] for row in metrics.grades]
        rows.append(["not recorded", *metrics.grades_missing])
        return ["highest_grade", "crs_patients", "icans_patients"], rows
    if kind == "follow_up":
        return (
            ["year_after_day0", "visits_due", "visits_done", "done_percent"],
            [[row.year, row.due, row.done, _rate(row.rate)] for row in metrics.follow_up],
        )
    if kind == "stages":
        return ["stage", *[month.strftime("%Y-%m") for month in metrics.months]], [
            [row.label, *row.counts] for row in metrics.stages
        ]
    raise KeyError(kind)
