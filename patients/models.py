import unicodedata
import uuid
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from clinical.body import age_in_years, body_surface_area

# Letters that Unicode does not decompose into a base letter and an accent.
_PLAIN_LETTERS = str.maketrans({"ı": "i", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe"})


# How German and Nordic names are spelled without their letters (a passport, a referral letter, an
# English keyboard): Müller is written Mueller, Øster Oester, Åberg Aaberg. ß needs no entry: casefold()
# already turns it into "ss".
_SPELLED_OUT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ø": "oe", "å": "aa", "æ": "ae", "œ": "oe"})


def _without_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def name_search_key(text: str) -> str:
    """Names as a ward types them: without accents or case, so "muller" finds Müller, "yilmaz" Yılmaz."""
    return _without_accents(text.casefold().translate(_PLAIN_LETTERS))


def name_spelled_key(text: str) -> str:
    """Names with their letters spelled out, so "Mueller" finds Müller (and "Müller" finds Mueller)."""
    # NFC first: an "ü" typed as "u" + combining diaeresis must be spelled out like the one-letter "ü".
    spelled = unicodedata.normalize("NFC", text.casefold()).translate(_SPELLED_OUT)
    return _without_accents(spelled.translate(_PLAIN_LETTERS))


def mrn_search_key(text: str) -> str:
    """An MRN without case, spaces, dashes or dots: "mrn-0039" and "MRN 0039" are the same number."""
    return "".join(c for c in text.upper() if c.isalnum())


class Indication(models.TextChoices):
    SLE = "sle", "Systemic lupus erythematosus"
    LUPUS_NEPHRITIS = "lupus_nephritis", "Lupus nephritis"
    MYASTHENIA_GRAVIS = "myasthenia_gravis", "Myasthenia gravis"
    SYSTEMIC_SCLEROSIS = "systemic_sclerosis", "Systemic sclerosis"
    MULTIPLE_SCLEROSIS = "multiple_sclerosis", "Multiple sclerosis"
    MYOSITIS = "myositis", "Idiopathic inflammatory myopathy (myositis)"
    OTHER = "other", "Other (described)"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PatientQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        # bulk_create skips save(); imports and the demo loader must still be findable by name.
        objs = list(objs)
        for patient in objs:
            patient.refresh_name_key()
        return super().bulk_create(objs, *args, **kwargs)


class Patient(models.Model):
    """A person treated at the clinic. Knows nothing of journeys: they point here, not back."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    mrn = models.CharField("MRN", max_length=32, unique=True, help_text="Medical record number")
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    sex = models.CharField(max_length=16, choices=Sex.choices)
    indication = models.CharField(max_length=32, choices=Indication.choices)
    indication_other = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    coordinator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="coordinated_patients"
    )
    nurse = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="nursed_patients"
    )
    # The physician who answers for this patient: escalations of late steps and the physician's own
    # steps go to them rather than to every physician in the clinic.
    physician = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="treated_patients",
        verbose_name="treating physician",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version = models.PositiveIntegerField(default=1)
    # Derived from the names and the MRN on every save; what the search box and the duplicate check match.
    name_key = models.CharField(max_length=201, blank=True, editable=False)
    name_spelled_key = models.CharField(max_length=260, blank=True, editable=False)
    mrn_key = models.CharField(max_length=32, blank=True, editable=False, db_index=True)

    history = HistoricalRecords(excluded_fields=["name_key", "name_spelled_key", "mrn_key"])
    objects = PatientQuerySet.as_manager()

    class Meta:
        ordering = ["family_name", "given_name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(indication="other") | ~Q(indication_other=""),
                name="patient_other_indication_described",
            ),
        ]
        indexes = [models.Index(fields=["family_name", "given_name"], name="patient_name_idx")]

    def __str__(self) -> str:
        # Ids only: this string ends up in logs and admin breadcrumbs.
        return f"Patient {self.mrn}"

    def refresh_name_key(self) -> None:
        self.name_key = name_search_key(f"{self.given_name} {self.family_name}")
        self.name_spelled_key = name_spelled_key(f"{self.given_name} {self.family_name}")
        self.mrn_key = mrn_search_key(self.mrn)

    def save(self, *args, **kwargs):
        self.refresh_name_key()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key", "name_spelled_key", "mrn_key"}
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, on: date) -> int:
        return age_in_years(self.date_of_birth, on)

    @property
    def indication_label(self) -> str:
        if self.indication == Indication.OTHER:
            return self.indication_other
        return self.get_indication_display()


class Measurement(models.Model):
    """Height and weight on a date: body surface area for lymphodepletion and cells/kg come from here."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="measurements")
    measured_on = models.DateField()
    height_cm = models.DecimalField(
        max_digits=5, decimal_places=1, validators=[MinValueValidator(Decimal("40")), MaxValueValidator(Decimal("250"))]
    )
    weight_kg = models.DecimalField(
        max_digits=5, decimal_places=1, validators=[MinValueValidator(Decimal("2")), MaxValueValidator(Decimal("400"))]
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-measured_on", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(height_cm__gte=40, height_cm__lte=250), name="measurement_height_range"),
            models.CheckConstraint(condition=Q(weight_kg__gte=2, weight_kg__lte=400), name="measurement_weight_range"),
        ]

    @property
    def body_surface_area_m2(self) -> Decimal:
        return body_surface_area(self.height_cm, self.weight_kg)


class ConsentKind(models.TextChoices):
    TREATMENT = "treatment", "Treatment (CAR-T therapy)"
    STUDY = "study", "Study participation"
    SAMPLES = "samples", "Samples and biobank"
    DATA_SHARING = "data_sharing", "Data sharing and registry"
    # Years 6–15 after an integrating vector: being contacted at home (e-mail, questionnaire), not just seen.
    LTFU_CONTACT = "ltfu_contact", "Long-term follow-up contact"


class Consent(models.Model):
    """A signed consent form; a later withdrawal is recorded, never deleted."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=32, choices=ConsentKind.choices, default=ConsentKind.TREATMENT)
    signed_on = models.DateField()
    document_version = models.CharField(max_length=40)
    # The clinician who explained the form and took the signature; not always the one typing it in.
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name="taken by"
    )
    withdrawn_on = models.DateField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    withdrawal_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    history = HistoricalRecords()

    class Meta:
        ordering = ["-signed_on", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gte=models.F("signed_on")),
                name="consent_withdrawn_after_signed",
            )
        ]

    def __str__(self) -> str:
        return f"Consent {self.pk} ({self.kind})"

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_on is not None
