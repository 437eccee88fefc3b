"""Demo clinic: one user per role and about 40 patients spread over all five stages, a few overdue.

Everything goes through the real services, so the demo data obeys the same rules as real data.
"""

import random
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from alerts.models import ClinicalAlert
from alerts.services import alert_acknowledge
from clinical import disease_activity as scores
from clinical.body import age_in_years, body_surface_area
from clinical.dosing import dose_from_bsa
from journeys import records, selectors
from journeys import services as journey_services
from journeys.clock import clinic_zone
from journeys.models import JourneyStatus, ProtocolTemplate, StageStatus, StepStatus
from patients.models import Indication, Patient, Sex
from patients.services import consent_record, measurement_record, patient_enrol
from staff.models import User
from staff.roles import Role

DEMO_PASSWORD = "ward-demo-2026"
DEMO_MRN_PREFIX = "DEMO"
DEMO_USERS = [
    ("coordinator", "Clara", "Weber", Role.COORDINATOR),
    ("nurse", "Nadia", "Kaya", Role.NURSE),
    ("physician", "Paul", "Richter", Role.PHYSICIAN),
    ("viewer", "Viktor", "Lang", Role.VIEWER),
    ("admin", "Ada", "Admin", Role.ADMIN),
]
# Fictional people; any likeness to a real patient is chance.
GIVEN = [
    "Maria",
    "Lena",
    "Aylin",
    "Sophie",
    "Jonas",
    "Elif",
    "Hannah",
    "Mila",
    "Noah",
    "Emma",
    "Lea",
    "Anna",
    "Paula",
    "Ida",
    "Ben",
    "Clara",
    "Zoe",
    "Mira",
    "Lina",
    "Theo",
]
FAMILY = [
    "Ortiz",
    "Becker",
    "Yılmaz",
    "Hoffmann",
    "Schulz",
    "Novák",
    "Keller",
    "Müller",
    "Wagner",
    "Braun",
    "Wolf",
    "Neumann",
    "Krause",
    "Vogel",
    "Jäger",
    "Roth",
    "Frank",
    "Berg",
    "Haas",
    "Lorenz",
]
# Days since leukapheresis, chosen to put patients in every stage: before collection, in the plant,
# in lymphodepletion, on the ward after infusion, and in follow-up for up to three years.
DAYS_SINCE_LEUKAPHERESIS = [
    -9,
    -6,
    -3,
    -1,
    0,
    1,
    3,
    6,
    9,
    12,
    14,
    15,
    16,
    17,
    18,
    19,
    21,
    22,
    24,
    26,
    28,
    33,
    40,
    50,
    70,
    95,
    110,
    140,
    200,
    260,
    320,
    400,
    500,
    640,
    760,
    900,
    1100,
    12,
    20,
    45,
]


# Two patients on the ward show what the bedside sheet does (issue 13), by their place in the list above:
# Day +3 today (24 days since collection): CRS grade 2 on Day +1 (hypotension, low-flow oxygen), tocilizumab given,
# the alert it raised acknowledged by the physician's signature;
CRS2_ACKNOWLEDGED = 18
# Day +5 today (26 days): on Day +2 a fever gave a computed CRS grade 1, which the physician overrules, saying why.
PHYSICIAN_OVERRIDE = 19
OVERRIDE_REASON = "Fever with a positive blood culture from the central line: catheter infection, not CRS."
ACKNOWLEDGEMENT_NOTE = "Seen on the ward round: tocilizumab 8 mg/kg given, fluids, observed 4-hourly."


class Progress:
    """A one-line progress bar on a terminal, plain lines elsewhere (CI logs)."""

    def __init__(self, total: int, label: str, stream=sys.stdout):
        self.total, self.label, self.stream, self.done = total, label, stream, 0
        self.tty = getattr(stream, "isatty", lambda: False)()

    def advance(self) -> None:
        self.done += 1
        width = 30
        filled = width * self.done // self.total
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        elif self.done == self.total or self.done % 10 == 0:
            self.stream.write(line + "\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Load the demo clinic (skipped if it is there already)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=len(DAYS_SINCE_LEUKAPHERESIS))
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, patients: int, seed: int, **options):
        users = self._users()
        if Patient.objects.filter(mrn__startswith=DEMO_MRN_PREFIX).exists():
            self.stdout.write("Demo clinic already loaded.")
        else:
            self._patients(users, patients, random.Random(seed))
        # Outcome contracts live above journeys: called by name, so journeys imports nothing of theirs.
        if apps.is_installed("contracts"):
            call_command("load_demo_contracts", stdout=self.stdout)
        self.stdout.write(f"\nDemo sign-ins (password for all: {DEMO_PASSWORD})")
        for username, _given, _family, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {Role(role).label}")

    def _users(self) -> dict[str, User]:
        users = {}
        for username, given, family, role in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": given, "last_name": family, "email": f"{username}@clinic.test"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                if role == Role.ADMIN:
                    user.is_staff = user.is_superuser = True
                user.save()
                user.groups.add(Group.objects.get(name=role))
            users[role] = User.objects.get(pk=user.pk)
        return users

    def _patients(self, users: dict[str, User], count: int, rng: random.Random) -> None:
        protocol = ProtocolTemplate.objects.filter(is_active=True, collection=True).order_by("-version").first()
        coordinator, nurse, physician = users[Role.COORDINATOR], users[Role.NURSE], users[Role.PHYSICIAN]
        by_role = {Role.COORDINATOR: coordinator, Role.NURSE: nurse, Role.PHYSICIAN: physician}
        today = timezone.localdate()
        progress = Progress(count, "Loading demo patients")
        indications = [i for i in Indication.values if i != Indication.OTHER]
        for index in range(count):
            days_since = DAYS_SINCE_LEUKAPHERESIS[index % len(DAYS_SINCE_LEUKAPHERESIS)]
            with transaction.atomic():
                patient = patient_enrol(
                    actor=coordinator,
                    mrn=f"{DEMO_MRN_PREFIX}{index + 1:04d}",
                    given_name=GIVEN[index % len(GIVEN)],
                    family_name=FAMILY[(index * 7) % len(FAMILY)],
                    date_of_birth=date(1975 + rng.randint(0, 28), rng.randint(1, 12), rng.randint(1, 28)),
                    sex=rng.choice([Sex.FEMALE, Sex.FEMALE, Sex.MALE]),
                    indication=indications[index % len(indications)],
                    coordinator=coordinator,
                    nurse=nurse,
                    physician=physician,
                )
                height_cm, weight_kg = rng.randint(155, 190), rng.randint(50, 95)
                measurement_record(
                    actor=nurse,
                    patient_id=patient.id,
                    measured_on=today - timedelta(days=max(days_since, 0) + 10),
                    height_cm=height_cm,
                    weight_kg=weight_kg,
                )
                consent_record(
                    actor=coordinator,
                    patient_id=patient.id,
                    signed_on=today - timedelta(days=max(days_since, 0) + 14),
                    document_version="2026-01",
                )
                journey = journey_services.journey_start(
                    actor=coordinator,
                    patient_id=patient.id,
                    protocol_id=protocol.id,
                    leukapheresis_date=today - timedelta(days=days_since),
                )
                # About one patient in six has a step left undone a day or two ago: the overdue list.
                leave_overdue = index % 6 == 2
                # Every fifth patient's kidneys call for the package insert's −20 % fludarabine (CrCl about 50).
                demo_records = DemoRecords(
                    rng,
                    journey,
                    height_cm,
                    weight_kg,
                    renal_reduction=index % 5 == 1,
                    crs2_acknowledged=index == CRS2_ACKNOWLEDGED,
                    physician_override=index == PHYSICIAN_OVERRIDE,
                )
                self._walk(journey, today, by_role, leave_overdue, demo_records)
                if index == count - 3 and journey.status == JourneyStatus.ACTIVE:
                    journey_services.journey_hold(
                        actor=physician, journey_id=journey.id, reason="Upper respiratory infection; reassess in a week"
                    )
            progress.advance()

    def _walk(self, journey, today: date, by_role: dict, leave_overdue: bool, demo_records: "DemoRecords") -> None:
        """Record every step due before today, in date order, as the ward would have."""
        zone = clinic_zone()
        while True:
            step = (
                journey.steps.filter(status=StepStatus.PENDING, stage__status=StageStatus.IN_PROGRESS, due_on__lt=today)
                .select_related("template", "stage", "journey")
                .order_by("due_on", "template__position")
                .first()
            )
            if step is None:
                return
            # Leave undone a step that fell due in the last few days: late, but not forgotten for years.
            if leave_overdue and step.is_overdue(timezone.now()) and step.window_closes_on >= today - timedelta(days=5):
                return
            performed = datetime.combine(step.due_on, time(10, 30), tzinfo=zone)
            record = demo_records.for_step(step)
            # A grade other than the computed one is the physician's to record (staff.roles' OVERRIDE_COMPUTED).
            overrules = demo_records.overrules(step)
            actor = by_role[Role.PHYSICIAN] if overrules else by_role[step.template.responsible_role]
            if step.template.code == "renal-dose-review":
                # Weighed for lymphodepletion: the BSA may only come from a height and weight of the last 7 days.
                measurement_record(
                    actor=by_role[Role.NURSE],
                    patient_id=journey.patient_id,
                    measured_on=step.due_on,
                    height_cm=demo_records.height_cm,
                    weight_kg=demo_records.weight_kg,
                )
            # Chemotherapy, the COI check and the infusion: the physician signs as the second person.
            second = by_role[Role.PHYSICIAN] if actor != by_role[Role.PHYSICIAN] else by_role[Role.NURSE]
            journey_services.step_complete(
                actor=actor,
                step_id=step.id,
                performed_at=performed,
                notes="",
                record=record,
                **(
                    {"second_signer_username": second.username, "second_signer_password": DEMO_PASSWORD}
                    if step.template.two_person
                    else {}
                ),
            )
            if demo_records.crs2_acknowledged and step.template.code == demo_records.CRS2_DAY:
                # The recording raised the alert (journeys.services); the physician signs that it was seen.
                for alert in ClinicalAlert.objects.filter(step_id=step.id, acknowledged_at=None):
                    alert_acknowledge(
                        actor=by_role[Role.PHYSICIAN], alert_id=alert.id, password=DEMO_PASSWORD, note=ACKNOWLEDGEMENT_NOTE
                    )


class DemoRecords:
    """Plausible values for what each step records, so the demo's timeline reads like a ward's: CRS grade 0
    or 1 almost always (autoimmune series report mostly grade 1), B cells absent for about 100 days, then back."""

    CRS2_DAY, OVERRIDE_DAY = "monitoring-day-1", "monitoring-day-2"

    def __init__(
        self,
        rng: random.Random,
        journey,
        height_cm: int,
        weight_kg: int,
        renal_reduction: bool = False,
        crs2_acknowledged: bool = False,
        physician_override: bool = False,
    ):
        self.rng, self.journey, self.weight_kg, self.height_cm = rng, journey, weight_kg, height_cm
        self.renal_reduction = renal_reduction
        self.crs2_acknowledged, self.physician_override = crs2_acknowledged, physician_override
        self.bsa = body_surface_area(height_cm, weight_kg)
        self.activity = rng.choice([8, 10, 12, 16, 20])

    def for_step(self, step) -> dict:
        rng, journey = self.rng, self.journey
        day = (step.due_on - journey.day0).days
        crs = rng.choices(["0", "1", "2"], weights=[70, 27, 3])[0]
        icans = rng.choices(["0", "1"], weights=[95, 5])[0]
        overrules = self.overrules(step)
        if self.crs2_acknowledged and step.template.code == self.CRS2_DAY:
            crs, icans = "2", "0"  # one alert, the CRS one, for the physician to acknowledge
        elif overrules:
            crs = "1"
        if day >= 28:
            self.activity = max(0, self.activity - rng.choice([2, 4, 6]))
        values = {
            "cd3_count": rng.randint(600, 1600),
            "pregnancy_test": rng.choice(["negative", "not_applicable"]),
            "infection_screen": "clear",
            "volume_processed": round(rng.uniform(8, 14), 1),
            "volume_collected": rng.randint(120, 260),
            "cd3_yield": round(rng.uniform(2, 8), 2),
            "bag_id": f"BAG-{journey.pk:05d}",
            "coi_id": f"COI-{journey.leukapheresis_date:%Y}-{journey.pk:05d}",
            "courier": "MedLogistik",
            "tracking_number": f"ML{rng.randint(10**7, 10**8 - 1)}",
            "temperature_on_arrival": round(rng.uniform(3, 7), 1),
            "temperature_log_ok": True,
            "lot_number": f"LOT-{journey.pk:05d}-A",
            "sterility": "no_growth",
            "viability": round(rng.uniform(85, 97), 1),
            "car_expression": round(rng.uniform(25, 60), 1),
            "vector_copy_number": round(rng.uniform(0.8, 3.5), 2),
            "creatinine_clearance": rng.randint(70, 130),
            "dose_adjustment": "none",
            "bsa": float(self.bsa),
            "double_checked_by": "Paul Richter",
            "coi_match": True,
            "second_checker": "Paul Richter",
            "dose_per_kg": 1.0,
            "total_cells": float(self.weight_kg),
            "temperature_max": round(rng.uniform(38.0, 38.9) if crs != "0" else rng.uniform(36.4, 37.8), 1),
            "crs_grade": crs,  # typed only where the protocol asks for it typed; the bedside sheet computes it
            # The bedside components that give the grade drawn for the day (ASTCT 2019): a fever for CRS 1,
            # hypotension with low-flow oxygen for CRS 2; ICE 8 (no writing, no counting back) for ICANS 1.
            "fever_masked": False,
            "hypotension": crs == "2",
            "vasopressors": "none",
            "vasopressin": False,
            "oxygen": "low_flow" if crs == "2" else "none",
            "oxygen_l_min": 2 if crs == "2" else None,
            "ice_orientation": 4,
            "ice_naming": 3,
            "ice_commands": 1,
            "ice_writing": 1 if icans == "0" else 0,
            "ice_attention": 1 if icans == "0" else 0,
            "consciousness": "alert",
            "seizure": "none",
            "motor": "none",
            "cerebral_oedema": "none",
            "icans_grade": icans,
            "crs_grade_physician": "0" if overrules else None,
            "crs_grade_reason": OVERRIDE_REASON if overrules else None,
            "tocilizumab_mg": min(800, 8 * self.weight_kg) if crs == "2" else None,
            "discharge_date": step.due_on.isoformat(),
            "cd19_b_cells": 0.0 if day < 100 else round(rng.uniform(50, 400), 1),
            "igg_measured": round(rng.uniform(5.5, 10.5), 1),
            "igg_unit": "g/L",
            "anti_dsdna": round(rng.uniform(2, 8) if self.activity <= 4 else rng.uniform(30, 200), 1),
            "c3": round(rng.uniform(0.9, 1.4), 2),
            "c4": round(rng.uniform(0.15, 0.35), 2),
            "urine_protein_creatinine": round(rng.uniform(5, 14), 1),
            "creatinine_measured": rng.randint(55, 95),
            "creatinine_unit": "µmol/L",
            "egfr": rng.randint(80, 115),
            "ck": rng.randint(60, 180) if self.activity <= 4 else rng.randint(400, 2500),
            **self._activity_items(),
            "infection_since_last_visit": (infection := rng.choices(["none", "2"], weights=[85, 15])[0]),
            "infection_site": "upper_respiratory" if infection != "none" else None,
            "infection_organism": "Rhinovirus" if infection != "none" else None,
            "infection_hospitalised": False if infection != "none" else None,
            "infection_treatment": "Symptomatic" if infection != "none" else None,
            "vaccine_response": "not_assessed",
            "new_allergy": False,
            "igg_replacement": False,
            "global_health_vas": rng.randint(60, 95),
            "new_malignancy": False,
            "contact": rng.choice(["visit", "phone", "questionnaire"]),
            # DORIS asks for a clinical SLEDAI of 0; LLDAS allows up to 4 (lupus only: others are active or not
            # assessable, the only states their record accepts).
            "remission": self._remission(),
            "remission_drug_free": self.activity == 0 and self._lupus,
        }
        if step.template.code == "renal-dose-review":
            values["creatinine"], values["creatinine_unit"] = self._creatinine(step), "µmol/L"
        for spec in step.template.record_fields:
            if spec.get("per_m2"):
                # A dose per m² is given as the sheet calculates it from the protocol's mg/m², to the field's step.
                places = max(0, -Decimal(str(spec.get("step", 1))).normalize().as_tuple().exponent)
                values[spec["name"]] = float(dose_from_bsa(spec["per_m2"], self.bsa, places=places))
        indication = journey.patient.indication
        record = {
            spec["name"]: values[spec["name"]]
            for spec in step.template.record_fields
            if values.get(spec["name"]) is not None
            and not spec.get("computed")
            and not spec.get("within_percent")
            and indication in spec.get("indications", [indication])
        }
        return self._given_as_prescribed(step, record)

    def overrules(self, step) -> bool:
        """Whether the physician records this day's CRS grade differently from the computed one."""
        return self.physician_override and step.template.code == self.OVERRIDE_DAY

    @property
    def _lupus(self) -> bool:
        return self.journey.patient.indication in scores.SLE_INDICATIONS

    def _remission(self) -> str:
        if not self._lupus:
            return "active" if self.activity else "not_assessable"
        return "doris" if self.activity == 0 else "lldas" if self.activity <= 4 else "active"

    def _activity_items(self) -> dict:
        """The items of each indication's score that add up to the demo's activity level (an SLE patient's
        SLEDAI-2K is the level itself), with the physician global and prednisone that go with it."""
        level, rng = self.activity, self.rng
        sledai = dict.fromkeys(scores.SLEDAI_2K_WEIGHTS, False)
        left = level
        # Non-organ items first, so a SLEDAI-2K of 4 or less is an LLDAS one.
        for item in ("arthritis", "rash", "alopecia", "mucosal_ulcers", "low_complement", "increased_dna_binding", "myositis"):
            if scores.SLEDAI_2K_WEIGHTS[item] <= left:
                sledai[item], left = True, left - scores.SLEDAI_2K_WEIGHTS[item]
        for item in ("proteinuria", "haematuria", "pleurisy", "fever"):
            if left and scores.SLEDAI_2K_WEIGHTS[item] <= left:
                sledai[item], left = True, left - scores.SLEDAI_2K_WEIGHTS[item]

        def spread(names, total, highest):
            values = dict.fromkeys(names, 0)
            for index in range(min(total, highest * len(names))):
                values[names[index % len(names)]] += 1
            return values

        values = {f"sledai_{name}": present for name, present in sledai.items()}
        values |= {f"mg_adl_{name}": value for name, value in spread(scores.MG_ADL_ITEMS, level // 2, 3).items()}
        values |= {f"mrss_{name}": value for name, value in spread(scores.MRSS_SITES, level, 3).items()}
        values |= {f"mmt8_{name}": value for name, value in spread(scores.MMT8_GROUPS, 80 - level, 10).items()}
        values["edss"] = 0 if level == 0 else min(10.0, 1.0 + level // 4 * 0.5)
        values["physician_global"] = 0.2 if level == 0 else 0.8 if level <= 4 else round(rng.uniform(1.2, 2.0), 1)
        values["prednisone_mg_day"] = 0 if level == 0 else 5 if level <= 4 else 10
        return values

    def _creatinine(self, step) -> float:
        """A serum creatinine in µmol/L: normal, or (renal_reduction) the one that gives a CrCl of about 50 mL/min
        by Cockcroft–Gault for this patient (clinical.renal does the sum the sheet shows)."""
        if not self.renal_reduction:
            return float(self.rng.randint(55, 95))
        patient = self.journey.patient
        age = age_in_years(patient.date_of_birth, step.due_on)
        mg_dl = Decimal(140 - age) * self.weight_kg / (72 * 50) * (Decimal("0.85") if patient.sex == Sex.FEMALE else 1)
        return float(round(mg_dl * Decimal("88.4"), 1))

    def _given_as_prescribed(self, step, record: dict) -> dict:
        """Each dose given exactly as the sheet prescribes it (within_percent fields): computed the way the
        service will compute it, from the same facts."""
        specs = records.parse_specs(step.template.record_fields)
        if not any(spec.within_percent for spec in specs):
            return record
        facts = selectors.record_facts(
            journey_id=self.journey.pk, patient_id=self.journey.patient_id, specs=step.template.record_fields, on=step.due_on
        )
        so_far = dict(record)
        for spec in specs:
            if spec.computed is not None:
                value = spec.computed_value(so_far, facts)
                if value is not None:
                    so_far[spec.name] = value
            elif spec.within_percent is not None and so_far.get(spec.within_percent.of) is not None:
                record[spec.name] = so_far[spec.name] = so_far[spec.within_percent.of]
        return record
