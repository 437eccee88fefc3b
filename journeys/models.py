"""The five-stage CAR-T journey: protocol templates as data, and each patient's journey, stages and steps.

Dates that drive alerts (a step's due date and the moment it becomes overdue) are stored and
indexed, so "what is late?" is one indexed query rather than a loop in Python.
"""

import uuid
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Func, Min, OuterRef, Q, Subquery
from simple_history.models import HistoricalRecords

from journeys.records import validate_specs
from patients.models import ConsentKind, Indication, Patient
from staff.roles import Role


class StageNumber(models.IntegerChoices):
    LEUKAPHERESIS = 1, "Leukapheresis"
    RE_ENGINEERING = 2, "Re-engineering"
    LYMPHODEPLETION = 3, "Lymphodepletion"
    INFUSION = 4, "Infusion"
    IMMUNE_RE_EDUCATION = 5, "Immune re-education"


class Anchor(models.TextChoices):
    LEUKAPHERESIS = "leukapheresis", "Leukapheresis date"
    DAY0 = "day0", "Day 0 (infusion)"


class Milestone(models.TextChoices):
    """What completing a step tells the journey, beyond the step itself."""

    NONE = "", "None"
    COLLECTION = "collection", "Cells collected: sets the leukapheresis date"
    PRODUCT_RELEASED = "product_released", "Product released by QC: lymphodepletion may start"
    INFUSION = "infusion", "Cells infused: sets Day 0"
    DISCHARGE = "discharge", "Discharged after the infusion: the restrictions start"


def default_consents_required() -> list[str]:
    return ["treatment"]


def validate_consent_kinds(value) -> None:
    """The admin's check of `consents_required`: a list of consent kinds, each once."""
    kinds = set(ConsentKind.values)
    if not isinstance(value, list) or not all(isinstance(kind, str) and kind in kinds for kind in value):
        raise ValidationError(f"A list of consent kinds, from: {', '.join(sorted(kinds))}.")
    if len(set(value)) != len(value):
        raise ValidationError("A consent kind is named twice.")


class ProtocolTemplate(models.Model):
    """A versioned treatment protocol. Once a journey uses a version it is locked; changes make a new version."""

    name = models.CharField(max_length=120)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    indication = models.CharField(max_length=32, choices=Indication.choices, blank=True, help_text="Blank: any indication.")
    planned_vein_to_vein_days = models.PositiveIntegerField(
        default=21,
        help_text="Days from leukapheresis to Day 0 used to plan Day 0 when the coordinator gives none.",
    )
    # The shipped protocol's QC release is due on Day −7 and lymphodepletion's first step (the creatinine
    # clearance and dose review) on Day −6: released by the day before, or Day 0 cannot hold.
    release_lead_days = models.PositiveIntegerField(
        default=1,
        help_text="Days before lymphodepletion's first step by which QC must have released the product; "
        "a journey still waiting after that shows 'Day 0 at risk'.",
    )
    infusion_rest_days = models.PositiveIntegerField(
        default=2,
        help_text="Days between the last lymphodepletion day and the infusion, at least (Day −3 → Day 0: 2 full days).",
    )
    collection = models.BooleanField(
        default=True,
        help_text="The patient's own cells are collected (leukapheresis). False for an off-the-shelf (allogeneic) "
        "product reserved from stock: the journey has no leukapheresis date to plan.",
    )
    # Eligibility before a journey starts (journeys.transitions.guard_journey_eligibility).
    minimum_age_years = models.PositiveSmallIntegerField(
        default=18, help_text="The youngest age, on the day the journey starts, the protocol treats."
    )
    maximum_age_years = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The oldest age the protocol treats; blank: no upper limit."
    )
    consents_required = models.JSONField(
        default=default_consents_required,
        blank=True,
        validators=[validate_consent_kinds],
        help_text='Consent kinds that must be on file and not withdrawn before a journey starts, e.g. ["treatment"].',
    )
    # After discharge (journeys.selectors.discharge_summary): counted from Day 0.
    proximity_restriction_days = models.PositiveIntegerField(
        default=14, help_text="Days from Day 0 the patient stays near the centre (US labels since June 2025: 14)."
    )
    proximity_restriction_hours = models.PositiveSmallIntegerField(
        default=2, help_text="Near the centre: within this many hours' travel."
    )
    driving_restriction_days = models.PositiveIntegerField(
        default=14, help_text="Days from Day 0 the patient does not drive (US labels since June 2025: 14)."
    )
    discharge_whom_to_call = models.TextField(
        blank=True, max_length=500, help_text="Whom the patient calls, day and night, printed on the discharge sheet."
    )
    is_active = models.BooleanField(default=True, help_text="Offered when starting new journeys.")
    locked_at = models.DateTimeField(null=True, blank=True, help_text="Set when the first journey used it.")
    created_at = models.DateTimeField(auto_now_add=True)
    # What `migrate` compares a shipped protocol file with, so that loading it again finds the version it
    # already made (journeys.protocol_files.content_hash). Kept true by every write to the version's content.
    content_hash = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text="SHA-256 of the version's content as a protocol file; blank until first computed.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="protocol_name_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class StepTemplate(models.Model):
    """One step of a protocol: when it falls (anchor + offset), its window, its grace and who does it."""

    protocol = models.ForeignKey(ProtocolTemplate, on_delete=models.CASCADE, related_name="step_templates")
    stage = models.PositiveSmallIntegerField(choices=StageNumber.choices)
    code = models.SlugField(max_length=60)
    name = models.CharField(max_length=160)
    anchor = models.CharField(max_length=16, choices=Anchor.choices)
    offset_days = models.IntegerField(help_text="Days after the anchor (negative: before).")
    window_before_days = models.PositiveIntegerField(default=0, help_text="How early still counts as on time.")
    window_after_days = models.PositiveIntegerField(default=0, help_text="How late still counts as on time.")
    grace_hours = models.PositiveIntegerField(default=0, help_text="Hours after the window before it is overdue.")
    responsible_role = models.CharField(
        max_length=16, choices=[(r.value, r.label) for r in (Role.COORDINATOR, Role.NURSE, Role.PHYSICIAN)]
    )
    required = models.BooleanField(default=True, help_text="Must be done or skipped with a reason to finish the stage.")
    milestone = models.CharField(max_length=20, choices=Milestone.choices, blank=True, default=Milestone.NONE)
    position = models.PositiveIntegerField(default=0)
    # A safety order inside a stage, by code so that a new protocol version copies it as it is:
    # the bag's chain of identity is checked before the cells go in, never after.
    done_after = models.SlugField(
        max_length=60,
        blank=True,
        help_text="Code of a step of the same protocol that must be recorded as done before this one.",
    )
    two_person = models.BooleanField(
        default=False,
        help_text="Signed by two different people, each re-entering their password (chemotherapy, the COI "
        "check, the infusion); an API key cannot record it.",
    )
    record_fields = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_specs],
        help_text='What completing the step records: a list of field specs, e.g. [{"name": "crs_grade", '
        '"label": "CRS grade (ASTCT)", "type": "choice", "choices": [["0", "Grade 0"], ["1", "Grade 1"]], '
        '"required": true}]. Types: integer, decimal, choice, boolean, text, date; numbers take unit, min, max.',
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["protocol", "stage", "position", "offset_days"]
        constraints = [
            models.UniqueConstraint(fields=["protocol", "code"], name="step_template_code_unique"),
            models.CheckConstraint(condition=Q(stage__gte=1, stage__lte=5), name="step_template_stage_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.protocol} / {self.name}"

    def clean(self):
        super().clean()
        if self.done_after:
            if self.done_after == self.code:
                raise ValidationError({"done_after": "A step cannot wait for itself."})
            earlier = StepTemplate.objects.filter(protocol_id=self.protocol_id, code=self.done_after).first()
            if earlier is None:
                raise ValidationError({"done_after": "No step of this protocol has that code."})
            if earlier.stage > self.stage:
                raise ValidationError({"done_after": "That step belongs to a later stage."})


class JourneyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    COMPLETED = "completed", "Completed"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_JOURNEY_STATUSES = (JourneyStatus.ACTIVE, JourneyStatus.ON_HOLD)


class DaysBefore(Func):
    """A date minus a whole number of days, as a date, on PostgreSQL and on SQLite (`make run`) alike."""

    arity = 2
    output_field = models.DateField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" - ", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="date(%(expressions)s || ' days')", arg_joiner=", '-' || ", **extra)


def release_needed_by() -> Func:
    """For a journey query: the last day the product may be released for Day 0 to hold, i.e. the
    protocol's lead time before the first step of lymphodepletion as planned now (it moves with Day 0)."""
    first_ld_day = Subquery(
        Step.objects.filter(journey=OuterRef("pk"), stage__number=StageNumber.LYMPHODEPLETION)
        .order_by()
        .values("journey")
        .annotate(first=Min("due_on"))
        .values("first")[:1]
    )
    return DaysBefore(first_ld_day, F("protocol__release_lead_days"))


def day0_at_risk_condition(today: date) -> Q:
    """The one "Day 0 at risk" rule, as a filter on journeys annotated with `release_needed_by`: an active
    journey whose product is not released and either the day it was needed by has passed, the plant's
    expected release falls after that day, or the product is out of specification (see `Day0Risk`)."""
    return Q(status=JourneyStatus.ACTIVE, product_released_at__isnull=True) & (
        Q(release_needed_by__lt=today)
        | Q(product_out_of_specification=True)
        | Q(product_expected_release_on__gt=F("release_needed_by"))
    )


class Day0Risk(models.TextChoices):
    """Why a journey's Day 0 is at risk, most pressing first (`Journey.day0_risk`)."""

    OUT_OF_SPECIFICATION = "out_of_specification", "The product is out of specification"
    RELEASE_OVERDUE = "release_overdue", "QC has not released the product, which was needed by now"
    RELEASE_EXPECTED_LATE = "release_expected_late", "The plant expects to release the product after it is needed"


class JourneyQuerySet(models.QuerySet):
    def with_release_needed_by(self):
        return self.annotate(release_needed_by=release_needed_by())

    def day0_at_risk(self, today: date):
        """Journeys whose Day 0 is at risk on `today` (see `day0_at_risk_condition`)."""
        return self.with_release_needed_by().filter(day0_at_risk_condition(today))


class Journey(models.Model):
    """One patient's walk through the five stages on one protocol version."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="journeys")
    protocol = models.ForeignKey(ProtocolTemplate, on_delete=models.PROTECT, related_name="journeys")
    status = models.CharField(max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.ACTIVE)
    status_reason = models.TextField(blank=True)
    current_stage = models.PositiveSmallIntegerField(choices=StageNumber.choices, default=StageNumber.LEUKAPHERESIS)
    # On a protocol without collection (off the shelf) there is no leukapheresis: this holds the day the journey
    # started, so the work-up's dates and "Day 0 not before it" still have a reference.
    leukapheresis_date = models.DateField(help_text="Planned until the collection is recorded, then actual.")
    day0_planned = models.DateField("planned Day 0")
    day0_actual = models.DateField("actual Day 0", null=True, blank=True)
    product_released_at = models.DateTimeField(null=True, blank=True)
    # The plant's forecast for the product while it is not released, written by manufacturing through
    # `journey_product_forecast`: it feeds the one "Day 0 at risk" rule (`day0_at_risk_condition`).
    product_expected_release_on = models.DateField(null=True, blank=True)
    product_out_of_specification = models.BooleanField(default=False)
    # Set when a manufacturing order exists for the journey: the QC-release step is then recorded by the
    # order's release (against the product's specification), never by hand.
    product_release_by_order = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version = models.PositiveIntegerField(default=1)

    history = HistoricalRecords()
    objects = JourneyQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # A patient walks one journey at a time; completed and withdrawn ones stay as history.
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(status__in=["active", "on_hold"]),
                name="journey_one_open_per_patient",
            ),
            models.CheckConstraint(condition=Q(current_stage__gte=1, current_stage__lte=5), name="journey_stage_1_to_5"),
            models.CheckConstraint(
                condition=Q(day0_planned__gte=F("leukapheresis_date")), name="journey_day0_after_leukapheresis"
            ),
        ]
        indexes = [models.Index(fields=["status", "current_stage"], name="journey_status_stage_idx")]

    def __str__(self) -> str:
        return f"Journey {self.public_id}"

    @property
    def day0(self) -> date:
        return self.day0_actual or self.day0_planned

    def anchor_date(self, anchor: str) -> date:
        return self.day0 if anchor == Anchor.DAY0 else self.leukapheresis_date

    def day_number(self, on: date) -> int:
        return (on - self.day0).days

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_JOURNEY_STATUSES

    def is_day0_at_risk(self, today: date) -> bool:
        """`day0_at_risk_condition` for a loaded journey; it must carry `release_needed_by` (from
        `Journey.objects.with_release_needed_by()`, or set by the status read)."""
        return self.day0_risk(today) is not None

    def day0_risk(self, today: date) -> "Day0Risk | None":
        """Why Day 0 is at risk on `today` (`day0_at_risk_condition` for a loaded journey), or None."""
        if self.status != JourneyStatus.ACTIVE or self.product_released_at is not None:
            return None
        needed_by = self.release_needed_by
        if self.product_out_of_specification:
            return Day0Risk.OUT_OF_SPECIFICATION
        if needed_by is not None and needed_by < today:
            return Day0Risk.RELEASE_OVERDUE
        expected = self.product_expected_release_on
        if needed_by is not None and expected is not None and expected > needed_by:
            return Day0Risk.RELEASE_EXPECTED_LATE
        return None


class StageStatus(models.TextChoices):
    PENDING = "pending", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"


class Stage(models.Model):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="stages")
    number = models.PositiveSmallIntegerField(choices=StageNumber.choices)
    status = models.CharField(max_length=16, choices=StageStatus.choices, default=StageStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["journey", "number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="stage_number_unique_per_journey"),
            models.CheckConstraint(condition=Q(number__gte=1, number__lte=5), name="stage_number_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.get_number_display()} ({self.get_status_display()})"


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


RESOLVED_STEP_STATUSES = (StepStatus.DONE, StepStatus.SKIPPED, StepStatus.NOT_APPLICABLE)


def late_condition(at, prefix: str = "") -> Q:
    """The one overdue rule, as a filter: a pending step of an active journey, past its window and grace,
    in a stage that has started. `prefix` reaches the step from another model (e.g. "steps__").

    A step whose stage has not started is *blocked*, not late: it cannot be done yet (the lymphodepletion
    days before the product's release), and what is late is the gate in front of it."""
    return Q(
        **{
            f"{prefix}status": StepStatus.PENDING,
            f"{prefix}overdue_after__lte": at,
            f"{prefix}journey__status": JourneyStatus.ACTIVE,
            f"{prefix}stage__status": StageStatus.IN_PROGRESS,
        }
    )


def blocked_condition(prefix: str = "") -> Q:
    """A pending step that cannot be done yet because the stage it belongs to has not started."""
    return Q(**{f"{prefix}status": StepStatus.PENDING, f"{prefix}stage__status": StageStatus.PENDING})


class StepQuerySet(models.QuerySet):
    def overdue(self, at):
        """Steps that are late at `at` (see `late_condition`)."""
        return self.filter(late_condition(at))

    def blocked(self):
        return self.filter(blocked_condition())


class SignatureMeaning(models.TextChoices):
    PERFORMED = "performed", "Performed"
    VERIFIED = "verified", "Verified"


class Step(models.Model):
    """One thing to do for one patient on one date. Dates are computed from the journey's anchors."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="steps")
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="steps")
    template = models.ForeignKey(StepTemplate, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    due_on = models.DateField()
    window_opens_on = models.DateField()
    window_closes_on = models.DateField()
    overdue_after = models.DateTimeField(help_text="When a pending step becomes overdue (window end + grace).")
    overdue_since = models.DateTimeField(null=True, blank=True, help_text="Set by the overdue scan.")
    # `overdue_since` is cleared when a step is done or its schedule moves (Day 0 moved, it is on time
    # again); this one never is, so on-time figures still count a step that was late once.
    first_late_at = models.DateTimeField(null=True, blank=True, help_text="When the step first counted as late; never cleared.")
    performed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signature_meaning = models.CharField(max_length=16, choices=SignatureMeaning.choices, blank=True)
    second_signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The second person of a two-person step.",
    )
    notes = models.TextField(blank=True)
    record = models.JSONField(
        default=dict, blank=True, help_text="The values recorded at completion, by the template's record_fields."
    )
    skip_reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()
    objects = StepQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "template__position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_opens_on__lte=F("due_on"), window_closes_on__gte=F("due_on")),
                name="step_window_contains_due",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(completed_at__isnull=False),
                name="step_resolved_has_time",
            ),
            models.CheckConstraint(condition=~Q(status="skipped") | ~Q(skip_reason=""), name="step_skip_has_reason"),
            models.UniqueConstraint(fields=["journey", "template"], name="step_template_once_per_journey"),
        ]
        indexes = [
            models.Index(fields=["overdue_after"], condition=Q(status="pending"), name="step_pending_overdue_idx"),
            models.Index(fields=["due_on"], condition=Q(status="pending"), name="step_pending_due_idx"),
            models.Index(fields=["overdue_since"], condition=Q(overdue_since__isnull=False), name="step_overdue_since_idx"),
            # The planning calendar places a done step on the day it was performed (an undated one on its due
            # day): with these and step_pending_due_idx it reads only the days it shows, not every step.
            models.Index(fields=["performed_at"], condition=Q(status="done"), name="step_done_performed_idx"),
            models.Index(
                fields=["due_on"], condition=Q(status="done", performed_at__isnull=True), name="step_done_undated_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Step {self.public_id}"

    @property
    def is_resolved(self) -> bool:
        return self.status in RESOLVED_STEP_STATUSES

    @property
    def is_blocked(self) -> bool:
        return self.status == StepStatus.PENDING and self.stage.status == StageStatus.PENDING

    def is_overdue(self, at) -> bool:
        """`late_condition` for a loaded step (its journey and stage loaded with it, to cost no query)."""
        return (
            self.status == StepStatus.PENDING
            and self.overdue_after <= at
            and self.journey.status == JourneyStatus.ACTIVE
            and self.stage.status == StageStatus.IN_PROGRESS
        )


class EventKind(models.TextChoices):
    JOURNEY_STARTED = "journey_started", "Journey started"
    JOURNEY_HELD = "journey_held", "Put on hold"
    JOURNEY_RESUMED = "journey_resumed", "Resumed"
    JOURNEY_WITHDRAWN = "journey_withdrawn", "Withdrawn"
    JOURNEY_COMPLETED = "journey_completed", "Journey completed"
    STAGE_STARTED = "stage_started", "Stage started"
    STAGE_COMPLETED = "stage_completed", "Stage completed"
    STEP_DONE = "step_done", "Step done"
    STEP_SKIPPED = "step_skipped", "Step skipped"
    STEP_NOT_APPLICABLE = "step_not_applicable", "Step not applicable"
    STEP_CORRECTED = "step_corrected", "Record corrected"
    ANCHOR_MOVED = "anchor_moved", "Schedule moved"
    PRODUCT_RELEASED = "product_released", "Product released"


class JourneyEvent(models.Model):
    """One row per transition, written in the same transaction: the journey's audit trail and the durable
    record that reminders and webhooks are derived from."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="events")
    stage_number = models.PositiveSmallIntegerField(choices=StageNumber.choices, null=True, blank=True)
    step = models.ForeignKey(Step, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["journey", "at"], name="event_journey_at_idx"),
            models.Index(fields=["at"], name="event_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"
