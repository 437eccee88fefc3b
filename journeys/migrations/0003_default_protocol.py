"""The default protocol: Erlangen-style CD19 CAR-T for autoimmune disease (../shared/domain.md).

Kept inside the migration so that what was shipped stays what was shipped; a clinic changes it by
making a new version in admin, never by editing this one.
"""

from django.db import migrations

L, D0 = "leukapheresis", "day0"
NURSE, COORDINATOR, PHYSICIAN = "nurse", "coordinator", "physician"

# (stage, code, name, anchor, offset, window before, window after, grace hours, role, required, milestone)
STEPS = [
    (1, "eligibility-labs", "Eligibility labs: CD3+ count, infection screen, pregnancy test", L, -7, 7, 5, 24, NURSE, True, ""),
    (1, "eligibility-signoff", "Eligibility sign-off", L, -2, 5, 1, 24, PHYSICIAN, True, ""),
    (1, "leukapheresis", "Leukapheresis: T-cell collection, bag labelled with the COI id", L, 0, 0, 0, 12, NURSE, True, "collection"),
    # Fresh material must reach the plant within about 72 hours of collection.
    (1, "shipment", "Cells handed to the courier for the plant", L, 1, 1, 1, 12, COORDINATOR, True, ""),
    (2, "plant-receipt", "Receipt at the plant confirmed (temperature log checked)", L, 2, 1, 1, 24, COORDINATOR, True, ""),
    (2, "manufacturing-start", "Manufacturing started in the booked slot", L, 3, 1, 3, 24, COORDINATOR, True, ""),
    (2, "qc-release", "QC release: sterility, viability, CAR expression, vector copy number", D0, -7, 5, 2, 12, COORDINATOR, True, "product_released"),
    # Fludarabine is renally cleared: reduced creatinine clearance flags a dose review.
    (3, "renal-dose-review", "Creatinine clearance and lymphodepletion dose review", D0, -6, 2, 0, 12, PHYSICIAN, True, ""),
    (3, "ld-day-5", "Fludarabine 25 mg/m² (Day −5)", D0, -5, 0, 0, 6, NURSE, True, ""),
    (3, "ld-day-4", "Fludarabine 25 mg/m² (Day −4)", D0, -4, 0, 0, 6, NURSE, True, ""),
    (3, "ld-day-3", "Fludarabine 25 mg/m² and cyclophosphamide 1000 mg/m² (Day −3)", D0, -3, 0, 0, 6, NURSE, True, ""),
    (4, "admission", "Admission to the ward", D0, -1, 1, 0, 12, NURSE, True, ""),
    (4, "coi-check", "Chain-of-identity check: bag against patient", D0, 0, 0, 0, 4, NURSE, True, ""),
    (4, "infusion", "CAR-T infusion (1 × 10⁶ CAR-T cells/kg)", D0, 0, 0, 0, 6, NURSE, True, "infusion"),
    *[
        (4, f"monitoring-day-{n}", f"CRS/ICANS monitoring, Day +{n}", D0, n, 0, 0, 6, NURSE, True, "")
        for n in range(1, 8)
    ],
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
        (5, f"ltfu-year-{year}", f"Long-term follow-up contact or questionnaire, year {year}", D0, 365 * year, 30, 30, 168, COORDINATOR, True, "")
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
            protocol=protocol, stage=stage, code=code, name=name, anchor=anchor, offset_days=offset,
            window_before_days=before, window_after_days=after, grace_hours=grace, responsible_role=role,
            required=required, milestone=milestone, position=position,
        )
        for position, (stage, code, name, anchor, offset, before, after, grace, role, required, milestone) in enumerate(STEPS)
    )


class Migration(migrations.Migration):
    dependencies = [("journeys", "0002_initial")]
    operations = [migrations.RunPython(create_default_protocol, migrations.RunPython.noop)]
