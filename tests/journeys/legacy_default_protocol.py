"""The shipped default protocol exactly as the old data migrations made it (0003, 0005, 0006 before they
became no-ops), kept verbatim so a test can run them against a fresh database and compare their result,
field by field, with journeys/protocols/cd19-car-t-autoimmune.toml loaded by the loader.

Run `apply(apps)` with Django's app registry: it does what `migrate` did to version 1.
"""

# --- journeys/migrations/0003_default_protocol.py -----------------------------------------------
L, D0 = "leukapheresis", "day0"
NURSE, COORDINATOR, PHYSICIAN = "nurse", "coordinator", "physician"

# (stage, code, name, anchor, offset, window before, window after, grace hours, role, required, milestone)
STEPS = [
    (1, "eligibility-labs", "Eligibility labs: CD3+ count, infection screen, pregnancy test", L, -7, 7, 5, 24, NURSE, True, ""),
    (1, "eligibility-signoff", "Eligibility sign-off", L, -2, 5, 1, 24, PHYSICIAN, True, ""),
    (
        1,
        "leukapheresis",
        "Leukapheresis: T-cell collection, bag labelled with the COI id",
        L,
        0,
        0,
        0,
        12,
        NURSE,
        True,
        "collection",
    ),
    # Fresh material must reach the plant within about 72 hours of collection.
    (1, "shipment", "Cells handed to the courier for the plant", L, 1, 1, 1, 12, COORDINATOR, True, ""),
    (2, "plant-receipt", "Receipt at the plant confirmed (temperature log checked)", L, 2, 1, 1, 24, COORDINATOR, True, ""),
    (2, "manufacturing-start", "Manufacturing started in the booked slot", L, 3, 1, 3, 24, COORDINATOR, True, ""),
    (
        2,
        "qc-release",
        "QC release: sterility, viability, CAR expression, vector copy number",
        D0,
        -7,
        5,
        2,
        12,
        COORDINATOR,
        True,
        "product_released",
    ),
    # Fludarabine is renally cleared: reduced creatinine clearance flags a dose review.
    (3, "renal-dose-review", "Creatinine clearance and lymphodepletion dose review", D0, -6, 2, 0, 12, PHYSICIAN, True, ""),
    (3, "ld-day-5", "Fludarabine 25 mg/m² (Day −5)", D0, -5, 0, 0, 6, NURSE, True, ""),
    (3, "ld-day-4", "Fludarabine 25 mg/m² (Day −4)", D0, -4, 0, 0, 6, NURSE, True, ""),
    (3, "ld-day-3", "Fludarabine 25 mg/m² and cyclophosphamide 1000 mg/m² (Day −3)", D0, -3, 0, 0, 6, NURSE, True, ""),
    (4, "admission", "Admission to the ward", D0, -1, 1, 0, 12, NURSE, True, ""),
    (4, "coi-check", "Chain-of-identity check: bag against patient", D0, 0, 0, 0, 4, NURSE, True, ""),
    (4, "infusion", "CAR-T infusion (1 × 10⁶ CAR-T cells/kg)", D0, 0, 0, 0, 6, NURSE, True, "infusion"),
    *[(4, f"monitoring-day-{n}", f"CRS/ICANS monitoring, Day +{n}", D0, n, 0, 0, 6, NURSE, True, "") for n in range(1, 8)],
    (4, "crs-icans-review", "Physician review of CRS and ICANS grades (ASTCT)", D0, 3, 2, 2, 12, PHYSICIAN, True, ""),
    # Hospital stay under ten days; the proximity and driving restrictions run two weeks from Day 0.
    (4, "discharge", "Discharge: proximity and driving restrictions explained", D0, 8, 1, 1, 24, PHYSICIAN, True, ""),
    (5, "visit-day-14", "Follow-up visit, Day +14", D0, 14, 2, 2, 24, NURSE, True, ""),
    (5, "visit-day-28", "Follow-up visit, Day +28: B cells, IgG", D0, 28, 3, 3, 24, NURSE, True, ""),
    (5, "visit-month-2", "Follow-up visit, month 2", D0, 60, 7, 7, 48, NURSE, True, ""),
    (5, "visit-month-3", "Follow-up visit, month 3", D0, 90, 7, 7, 48, NURSE, True, ""),
    (5, "remission-month-3", "Remission assessment, month 3 (disease activity score)", D0, 90, 7, 7, 48, PHYSICIAN, True, ""),
    (5, "visit-month-6", "Follow-up visit, month 6", D0, 182, 14, 14, 72, NURSE, True, ""),
    (5, "visit-month-9", "Follow-up visit, month 9", D0, 273, 14, 14, 72, NURSE, True, ""),
    (5, "visit-month-12", "Follow-up visit, month 12", D0, 365, 14, 14, 72, NURSE, True, ""),
    (5, "remission-month-12", "Remission assessment, month 12", D0, 365, 14, 14, 72, PHYSICIAN, True, ""),
    # Outcome-based contracts commonly pay in full only if remission holds two years.
    (5, "remission-month-24", "Remission assessment, month 24 (payer milestone)", D0, 730, 30, 30, 72, PHYSICIAN, True, ""),
    # FDA LTFU guidance (2020) for integrating vectors: at least 5 years of annual examinations, then
    # annual contact or questionnaire to 15 years.
    *[
        (5, f"ltfu-year-{year}", f"Long-term follow-up examination, year {year}", D0, 365 * year, 30, 30, 168, NURSE, True, "")
        for year in range(2, 6)
    ],
    *[
        (
            5,
            f"ltfu-year-{year}",
            f"Long-term follow-up contact or questionnaire, year {year}",
            D0,
            365 * year,
            30,
            30,
            168,
            COORDINATOR,
            True,
            "",
        )
        for year in range(6, 16)
    ],
]


def create_default_protocol(apps, schema_editor):
    ProtocolTemplate = apps.get_model("journeys", "ProtocolTemplate")
    StepTemplate = apps.get_model("journeys", "StepTemplate")
    protocol, created = ProtocolTemplate.objects.get_or_create(
        name="CD19 CAR-T for autoimmune disease (Erlangen-style)",
        version=1,
        defaults={
            "description": "Fludarabine 25 mg/m² days −5…−3, cyclophosphamide 1000 mg/m² day −3, "
            "1 × 10⁶ CAR-T cells/kg on Day 0, daily monitoring to Day +7, visits to month 12, "
            "long-term follow-up to year 15.",
            "planned_vein_to_vein_days": 21,
        },
    )
    if not created:
        return
    StepTemplate.objects.bulk_create(
        StepTemplate(
            protocol=protocol,
            stage=stage,
            code=code,
            name=name,
            anchor=anchor,
            offset_days=offset,
            window_before_days=before,
            window_after_days=after,
            grace_hours=grace,
            responsible_role=role,
            required=required,
            milestone=milestone,
            position=position,
        )
        for position, (stage, code, name, anchor, offset, before, after, grace, role, required, milestone) in enumerate(STEPS)
    )


# --- journeys/migrations/0005_default_protocol_record_fields.py ---------------------------------
PROTOCOL_NAME = "CD19 CAR-T for autoimmune disease (Erlangen-style)"


def choice(name, label, choices, **extra):
    return {"name": name, "label": label, "type": "choice", "choices": [list(c) for c in choices], **extra}


def number(name, label, kind, unit, low, high, **extra):
    return {"name": name, "label": label, "type": kind, "unit": unit, "min": low, "max": high, **extra}


def text(name, label, **extra):
    return {"name": name, "label": label, "type": "text", **extra}


# ASTCT 2019 consensus grades (Lee et al.); the short form is what the timeline shows.
CRS_GRADES = [
    ("0", "Grade 0: no CRS", "0"),
    ("1", "Grade 1: fever ≥ 38 °C", "1"),
    ("2", "Grade 2: hypotension without vasopressors and/or low-flow O₂", "2"),
    ("3", "Grade 3: one vasopressor and/or high-flow O₂", "3"),
    ("4", "Grade 4: several vasopressors and/or positive pressure", "4"),
]
ICANS_GRADES = [
    ("0", "Grade 0: no ICANS (ICE 10)", "0"),
    ("1", "Grade 1: ICE 7–9, wakes spontaneously", "1"),
    ("2", "Grade 2: ICE 3–6, wakes to voice", "2"),
    ("3", "Grade 3: ICE 0–2, wakes to touch, or brief seizure", "3"),
    ("4", "Grade 4: unrousable, prolonged seizure or cerebral oedema", "4"),
]

# The grades are what a monitoring day is for, so they are required; the rest is recorded when measured or given.
CRS_ICANS = [
    number("temperature_max", "Highest temperature", "decimal", "°C", 34, 43, step=0.1, short="Tmax"),
    choice("crs_grade", "CRS grade (ASTCT)", CRS_GRADES, short="CRS grade", required=True),
    number(
        "ice_score",
        "ICE score (0–10)",
        "integer",
        "",
        0,
        10,
        short="ICE",
        help="Orientation 4, naming 3, commands 1, writing 1, counting back 1.",
    ),
    choice("icans_grade", "ICANS grade (ASTCT)", ICANS_GRADES, short="ICANS grade", required=True),
    number(
        "tocilizumab_mg",
        "Tocilizumab given",
        "integer",
        "mg",
        0,
        800,
        short="Tocilizumab",
        help="8 mg/kg, at most 800 mg per dose. Leave empty if none.",
    ),
    text("steroids", "Steroids given (drug and dose)", short="Steroids", help="Leave empty if none."),
]

BSA = number(
    "bsa",
    "Body surface area",
    "decimal",
    "m²",
    0.5,
    3,
    step=0.01,
    short="BSA",
    help="Mosteller: √(height cm × weight kg / 3600).",
)
FLUDARABINE = number(
    "fludarabine_mg",
    "Fludarabine given",
    "decimal",
    "mg",
    0,
    100,
    step=0.1,
    short="Fludarabine",
    per_m2=25,
    help="25 mg/m² × BSA; reduced if the renal review said so.",
)
DOUBLE_CHECK = text("double_checked_by", "Dose double-checked by", short="Checked by")
LYMPHODEPLETION_DAY = [BSA, FLUDARABINE, DOUBLE_CHECK]

DISEASE_ACTIVITY = number(
    "disease_activity",
    "Disease activity score (SLEDAI-2K / MG-ADL / mRSS / EDSS)",
    "decimal",
    "",
    0,
    105,
    step=0.5,
    short="Activity score",
    help="The score of the patient's indication: SLEDAI-2K 0–105, MG-ADL 0–24, mRSS 0–51, EDSS 0–10.",
)
FOLLOW_UP_VISIT = [
    number("cd19_b_cells", "CD19+ B cells", "decimal", "/µL", 0, 5000, step=0.1, short="CD19+ B"),
    number("igg", "IgG", "decimal", "g/L", 0, 50, step=0.1, short="IgG"),
    number("creatinine", "Creatinine", "integer", "µmol/L", 0, 2000, short="Creatinine"),
    number("egfr", "eGFR", "integer", "mL/min/1.73 m²", 0, 200, short="eGFR"),
    DISEASE_ACTIVITY,
    choice(
        "infection_since_last_visit",
        "Infection since the last visit",
        [("none", "None"), ("mild", "Mild (treated as outpatient)"), ("severe", "Severe (hospital or IV antibiotics)")],
        short="Infection",
    ),
]
NEW_MALIGNANCY = choice(
    "new_malignancy",
    "New malignancy since the last contact",
    [("none", "None"), ("suspected", "Suspected: work-up under way"), ("confirmed", "Confirmed")],
    short="New malignancy",
    help="T-cell malignancy is a labelled risk of CAR-T: report any to the manufacturer.",
)
REMISSION = [
    choice(
        "remission",
        "Remission status",
        [
            ("doris", "DORIS remission"),
            ("lldas", "LLDAS (low disease activity)"),
            ("active", "Active disease"),
            ("not_assessable", "Not assessable"),
        ],
        short="Remission",
        required=True,
    ),
    DISEASE_ACTIVITY,
]

RECORD_FIELDS = {
    "eligibility-labs": [
        number("cd3_count", "CD3+ count", "integer", "/µL", 0, 10000, short="CD3+"),
        choice(
            "pregnancy_test",
            "Pregnancy test",
            [("negative", "Negative"), ("positive", "Positive"), ("not_applicable", "Not applicable")],
            short="Pregnancy test",
        ),
        choice(
            "infection_screen",
            "Infection screen (HIV, HBV, HCV)",
            [("clear", "Clear"), ("positive", "Positive")],
            short="Infection screen",
        ),
    ],
    "leukapheresis": [
        number("volume_processed", "Blood volume processed", "decimal", "L", 0, 40, step=0.1, short="Processed"),
        number("volume_collected", "Volume collected", "integer", "mL", 0, 1000, short="Collected"),
        number("cd3_yield", "CD3+ yield", "decimal", "×10⁹ cells", 0, 100, step=0.01, short="CD3+ yield"),
        text("bag_id", "Bag id", short="Bag"),
        text(
            "coi_id",
            "Chain-of-identity (COI) id",
            required=True,
            short="COI",
            help="As printed on the bag label; it follows the cells to the infusion.",
        ),
    ],
    "shipment": [
        text("courier", "Courier", short="Courier"),
        text("tracking_number", "Courier tracking number", short="Tracking"),
    ],
    "plant-receipt": [
        text("courier", "Courier", short="Courier"),
        number("temperature_on_arrival", "Temperature on arrival", "decimal", "°C", -200, 40, step=0.1, short="Arrived at"),
        {
            "name": "temperature_log_ok",
            "label": "Temperature log within limits for the whole journey",
            "type": "boolean",
            "short": "Log in limits",
        },
    ],
    "qc-release": [
        text("lot_number", "Lot number", required=True, short="Lot"),
        choice(
            "sterility", "Sterility", [("no_growth", "No growth"), ("growth", "Growth (out of specification)")], short="Sterility"
        ),
        number("viability", "Viability", "decimal", "%", 0, 100, step=0.1, short="Viability"),
        number("car_expression", "CAR expression", "decimal", "%", 0, 100, step=0.1, short="CAR+"),
        number("vector_copy_number", "Vector copy number", "decimal", "copies/cell", 0, 20, step=0.01, short="VCN"),
    ],
    "renal-dose-review": [
        number("creatinine_clearance", "Creatinine clearance", "integer", "mL/min", 0, 250, short="CrCl"),
        choice(
            "dose_adjustment",
            "Fludarabine dose",
            [("none", "Full dose"), ("reduced", "Reduced for renal function")],
            short="Dose",
        ),
    ],
    "ld-day-5": LYMPHODEPLETION_DAY,
    "ld-day-4": LYMPHODEPLETION_DAY,
    "ld-day-3": [
        BSA,
        FLUDARABINE,
        number(
            "cyclophosphamide_mg",
            "Cyclophosphamide given",
            "decimal",
            "mg",
            0,
            3000,
            step=1,
            short="Cyclophosphamide",
            per_m2=1000,
            help="1000 mg/m² × BSA.",
        ),
        DOUBLE_CHECK,
    ],
    "coi-check": [
        {
            "name": "coi_match",
            "label": "The COI on the bag matches the patient's wristband and record",
            "type": "boolean",
            "required": True,
            "short": "COI match",
            "help": "If they do not match, do not infuse: call the coordinator.",
        },
        text("second_checker", "Second checker", short="Second checker"),
    ],
    "infusion": [
        number("dose_per_kg", "Dose", "decimal", "×10⁶ CAR-T cells/kg", 0, 10, step=0.01, short="Dose"),
        number("total_cells", "Total CAR-T cells", "decimal", "×10⁶", 0, 2000, step=0.1, short="Total"),
    ],
    **{f"monitoring-day-{n}": CRS_ICANS for n in range(1, 8)},
    "crs-icans-review": [
        choice("crs_grade", "Highest CRS grade so far (ASTCT)", CRS_GRADES, short="Highest CRS grade", required=True),
        choice("icans_grade", "Highest ICANS grade so far (ASTCT)", ICANS_GRADES, short="Highest ICANS grade", required=True),
    ],
    "discharge": [
        {"name": "discharge_date", "label": "Discharge date", "type": "date", "short": "Discharged"},
        {
            "name": "restrictions_until",
            "label": "Driving and proximity restrictions until",
            "type": "date",
            "short": "Restrictions until",
            "help": "Two weeks from Day 0 under the US labels since June 2025.",
        },
    ],
    **dict.fromkeys(
        ("visit-day-14", "visit-day-28", "visit-month-2", "visit-month-3", "visit-month-6", "visit-month-9", "visit-month-12"),
        FOLLOW_UP_VISIT,
    ),
    **dict.fromkeys(("remission-month-3", "remission-month-12", "remission-month-24"), REMISSION),
    **{f"ltfu-year-{year}": [*FOLLOW_UP_VISIT, NEW_MALIGNANCY] for year in range(2, 6)},
    **{
        f"ltfu-year-{year}": [
            choice(
                "contact",
                "Contact by",
                [("visit", "Visit"), ("phone", "Phone"), ("questionnaire", "Questionnaire")],
                short="Contact",
            ),
            NEW_MALIGNANCY,
        ]
        for year in range(6, 16)
    },
}


def add_record_fields(apps, schema_editor):
    StepTemplate = apps.get_model("journeys", "StepTemplate")
    for template in StepTemplate.objects.filter(protocol__name=PROTOCOL_NAME, protocol__version=1):
        fields = RECORD_FIELDS.get(template.code)
        if fields:
            template.record_fields = fields
            template.save(update_fields=["record_fields"])


# --- journeys/migrations/0006_step_done_after.py ----------------------------------------------
def infusion_follows_a_passed_coi_check(apps, schema_editor):
    # The shipped default, in place: like its record fields, this says how a step is recorded, not when
    # it falls, so journeys already on the version keep their schedule.
    StepTemplate = apps.get_model("journeys", "StepTemplate")
    shipped = StepTemplate.objects.filter(protocol__name=PROTOCOL_NAME, protocol__version=1)
    shipped.filter(code="infusion").update(done_after="coi-check")
    for check in shipped.filter(code="coi-check"):
        for spec in check.record_fields:
            if spec.get("name") == "coi_match":
                spec["must_be"] = True
        check.save(update_fields=["record_fields"])


def apply(apps) -> None:
    """What 0003 + 0005 + 0006 did to a fresh database, in that order."""
    create_default_protocol(apps, None)
    add_record_fields(apps, None)
    infusion_follows_a_passed_coi_check(apps, None)
