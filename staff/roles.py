"""The clinic's roles and the one matrix of who may do what.

Services call `authorize()` before they write, so the rule holds whichever door (page, API, admin
action, management command) the request came through. Pages and the API also check before they
render, to answer 403 instead of showing a form that cannot be sent.
"""

from django.db import models

from carclinic.errors import NotPermitted


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Coordinator"
    NURSE = "nurse", "Nurse"
    PHYSICIAN = "physician", "Physician"
    VIEWER = "viewer", "Viewer (read-only)"
    ADMIN = "admin", "Administrator"
    # An outside system (the hospital's EHR integration engine) that may read and record step completions.
    INTEGRATION = "integration", "Integration (API client)"
    # A maker's system (API client): reads and updates only its own maker's manufacturing orders.
    MANUFACTURER = "manufacturer", "Manufacturer (API client)"
    # A payer's system (API client): reads only its own contracts' enrolments, with the fields a payer needs.
    PAYER = "payer", "Payer (API client)"
    # A disease or CAR-T registry's system (API client): pulls the pseudonymous registry export, nothing else.
    REGISTRY = "registry", "Registry (API client)"


class Action(models.TextChoices):
    VIEW_CLINICAL = "view_clinical", "See patients, journeys and steps"
    ENROL_PATIENT = "enrol_patient", "Enrol a patient"
    EDIT_PATIENT = "edit_patient", "Edit a patient's details, measurements and consent"
    START_JOURNEY = "start_journey", "Start a journey on a protocol"
    COMPLETE_STEP = "complete_step", "Record a step as done"
    SKIP_STEP = "skip_step", "Skip a step, with a reason"
    CORRECT_STEP = "correct_step", "Correct what a done step recorded, with a reason"
    CORRECT_OTHERS_RECORD = "correct_others_record", "Correct a record someone else signed"
    RESCHEDULE_DAY0 = "reschedule_day0", "Move Day 0, with a reason"
    HOLD_JOURNEY = "hold_journey", "Put a journey on hold or resume it"
    WITHDRAW_JOURNEY = "withdraw_journey", "Withdraw a patient from a journey"
    MANAGE_PROTOCOLS = "manage_protocols", "Create protocol template versions"
    ACKNOWLEDGE_ALERT = "acknowledge_alert", "Acknowledge a clinical alert, with a signature"
    OVERRIDE_COMPUTED = "override_computed", "Record a value other than the computed one (a grade), with a reason"
    MANAGE_REMINDERS = "manage_reminders", "Snooze or cancel a scheduled reminder, with a reason"
    MANAGE_ORDERS = "manage_orders", "Request, book and move manufacturing orders"
    RECORD_QC = "record_qc", "Record QC results against the release specification"
    EXCEPTIONAL_RELEASE = "exceptional_release", "Release an out-of-specification product (signed twice)"
    RECORD_CUSTODY = "record_custody", "Record bags and custody hand-offs"
    DECIDE_EXCURSION = "decide_excursion", "Decide on quarantined material or a bedside mismatch"
    BEDSIDE_CHECK = "bedside_check", "Check a bag's chain of identity at the bedside"
    MANAGE_STOCK = "manage_stock", "Receive off-the-shelf units into stock and reserve them for patients"
    EXPORT_DATA = "export_data", "Export lists with names and MRNs as CSV (audited)"
    PRINT_DISCHARGE_SHEET = "print_discharge_sheet", "Print a patient's discharge sheet (restrictions, whom to call)"
    SEND_QUESTIONNAIRE = "send_questionnaire", "E-mail a patient the year's follow-up questionnaire link (audited)"
    REPORT_SAFETY = "report_safety", "See findings to report to the registry or authority (secondary malignancies)"
    VIEW_CONTRACTS = "view_contracts", "See outcome-based contracts and the money at stake"
    MANAGE_CONTRACTS = "manage_contracts", "Create payers and contracts, and enrol patients under them"
    VIEW_METRICS = "view_metrics", "See and export the clinic's metrics (aggregates, audited when exported)"
    EXPORT_REGISTRY = "export_registry", "Pull the pseudonymous registry export (CSV or FHIR NDJSON, audited)"


_ALL_CLINICAL = {Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.VIEWER, Role.ADMIN}

PERMISSIONS: dict[str, frozenset[str]] = {
    Action.VIEW_CLINICAL: frozenset(_ALL_CLINICAL | {Role.INTEGRATION}),
    Action.ENROL_PATIENT: frozenset({Role.COORDINATOR, Role.ADMIN}),
    Action.EDIT_PATIENT: frozenset({Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.ADMIN}),
    Action.START_JOURNEY: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    Action.COMPLETE_STEP: frozenset({Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.ADMIN, Role.INTEGRATION}),
    Action.SKIP_STEP: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # A nurse corrects her own records only (CORRECT_OTHERS_RECORD); the others correct anyone's.
    Action.CORRECT_STEP: frozenset({Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.ADMIN}),
    Action.CORRECT_OTHERS_RECORD: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    Action.RESCHEDULE_DAY0: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    Action.HOLD_JOURNEY: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    Action.WITHDRAW_JOURNEY: frozenset({Role.PHYSICIAN, Role.COORDINATOR, Role.ADMIN}),
    Action.MANAGE_PROTOCOLS: frozenset({Role.ADMIN}),
    # Acknowledging stops the escalation, so it is for those who act on the finding; most kinds need a
    # physician (see authorize_alert_acknowledgement).
    Action.ACKNOWLEDGE_ALERT: frozenset({Role.PHYSICIAN, Role.COORDINATOR, Role.ADMIN}),
    # A computed CRS/ICANS grade is the ASTCT rule applied to what was recorded; only a physician overrules it.
    Action.OVERRIDE_COMPUTED: frozenset({Role.PHYSICIAN, Role.ADMIN}),
    # The people who run the schedule; a nurse is reminded, she does not reschedule the reminders.
    Action.MANAGE_REMINDERS: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # The manufacturer's rows are limited to its own maker's orders by manufacturing.services.
    Action.MANAGE_ORDERS: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN, Role.MANUFACTURER}),
    Action.RECORD_QC: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN, Role.MANUFACTURER}),
    Action.EXCEPTIONAL_RELEASE: frozenset({Role.PHYSICIAN}),
    Action.RECORD_CUSTODY: frozenset({Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.ADMIN, Role.MANUFACTURER}),
    Action.DECIDE_EXCURSION: frozenset({Role.PHYSICIAN}),
    Action.BEDSIDE_CHECK: frozenset({Role.NURSE, Role.PHYSICIAN, Role.COORDINATOR, Role.ADMIN}),
    # The clinic's own freezer: a maker's API client sees its orders, not the clinic's stock or who gets a unit.
    Action.MANAGE_STOCK: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # A CSV carries names and MRNs out of carclinic's audit trail into spreadsheets: for those who report for
    # the clinic (registries, payers, quality meetings). A viewer reads on screen; a nurse works the lists.
    Action.EXPORT_DATA: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # The sheet goes home with the patient: printed by those who discharge and explain it, not by a viewer.
    Action.PRINT_DISCHARGE_SHEET: frozenset({Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN, Role.ADMIN}),
    # The years 6–15 contact is the coordinator's step; the nurse who reviews the answers may send it too.
    Action.SEND_QUESTIONNAIRE: frozenset({Role.COORDINATOR, Role.NURSE, Role.ADMIN}),
    # Reporting a secondary malignancy to the registry and the authority is the coordinator's and physician's work.
    Action.REPORT_SAFETY: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # Prices and rebates are the clinic's business with its payers: for those who run and sign for the
    # treatment; a nurse and a viewer see a patient's contract status on the patient page only.
    Action.VIEW_CONTRACTS: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    Action.MANAGE_CONTRACTS: frozenset({Role.COORDINATOR, Role.ADMIN}),
    # How the clinic performs (vein-to-vein, on-time rate, grades): for those who run and answer for it.
    Action.VIEW_METRICS: frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.ADMIN}),
    # The registry's own client only: staff take the same export with `manage.py export_registry` on the server.
    Action.EXPORT_REGISTRY: frozenset({Role.REGISTRY}),
}

# A step that a physician must do (eligibility sign-off, CRS/ICANS assessment) may be recorded, or
# skipped, by a physician only; the other roles that may complete steps cover each other on the ward.
STEPS_ONLY_THEIR_ROLE_MAY_COMPLETE = frozenset({Role.PHYSICIAN})


def roles_of(user) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    return user.roles


def can(user, action: str) -> bool:
    return bool(roles_of(user) & PERMISSIONS[action])


def refusal(action: str, message: str | None = None) -> NotPermitted:
    """The NotPermitted for `action`, named by its label when it is one of ours."""
    return NotPermitted(Action(action) if action in Action.values else action, message)


def authorize(user, action: str) -> None:
    if not can(user, action):
        raise refusal(action)


def authorize_step_resolution(user, responsible_role: str, action: str = Action.COMPLETE_STEP) -> None:
    """May this user record (or skip) a step that `responsible_role` is responsible for?"""
    authorize(user, action)
    if responsible_role in STEPS_ONLY_THEIR_ROLE_MAY_COMPLETE:
        roles = roles_of(user)
        if responsible_role not in roles and Role.ADMIN not in roles:
            verb = {Action.SKIP_STEP: "skip", Action.CORRECT_STEP: "correct"}.get(action, "record")
            raise NotPermitted(action, f"Only a {Role(responsible_role).label.lower()} may {verb} this step.")


def authorize_alert_acknowledgement(user, *, physician_only: bool) -> None:
    """May this user acknowledge an alert? A finding about the patient's body (a CRS or ICANS grade, a
    positive pregnancy test) is for a physician; a custody excursion may be taken by the coordinator."""
    authorize(user, Action.ACKNOWLEDGE_ALERT)
    if physician_only and not roles_of(user) & {Role.PHYSICIAN, Role.ADMIN}:
        raise NotPermitted(Action.ACKNOWLEDGE_ALERT, "Only a physician may acknowledge this alert.")


def authorize_step_correction(user, *, responsible_role: str, recorded_by_id, recorded_by=None) -> None:
    """May this user correct a done step's record? The step's role rule (a physician's step stays with
    physicians), and a record someone else signed only with CORRECT_OTHERS_RECORD (a nurse corrects
    what she recorded herself)."""
    authorize_step_resolution(user, responsible_role, Action.CORRECT_STEP)
    if recorded_by_id != getattr(user, "pk", None) and not can(user, Action.CORRECT_OTHERS_RECORD):
        raise NotPermitted(
            Action.CORRECT_OTHERS_RECORD,
            f"{recorded_by} recorded this step; ask them, a coordinator or a physician to correct it.",
        )


def may_correct_step(user, *, responsible_role: str, recorded_by_id) -> bool:
    """`authorize_step_correction` as a yes or no, for pages deciding whether to offer the form."""
    try:
        authorize_step_correction(user, responsible_role=responsible_role, recorded_by_id=recorded_by_id)
    except NotPermitted:
        return False
    return True
