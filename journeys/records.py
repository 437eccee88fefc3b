"""What a step records at the bedside, described as protocol data.

A step template carries `record_fields`, a list of field specs; completing the step stores the values
in `Step.record`. The clinic's knowledge (which step records what, in which unit, within which range)
lives in the specs; this module knows only the field *types*. The service, the page form and the API
all validate through `clean_record`, so a value is judged the same way wherever it comes from.

A spec:

    {"name": "crs_grade", "label": "CRS grade (ASTCT)", "type": "choice", "required": true,
     "choices": [["0", "Grade 0: no CRS", "0"], ["1", "Grade 1: fever ≥ 38 °C", "1"], ...],
     "short": "CRS grade", "unit": "", "help": "..."}

- `type`: integer, decimal, choice, boolean, text or date.
- `min`/`max` (numbers only), `step` (decimal only: the input's step, e.g. 0.1).
- `choices`: [value, label] or [value, label, short]; the short form is what the timeline shows.
- `short`: the timeline's name for the value (default: the label).
- `must_be` (yes/no only): the one answer that lets the step be recorded as done; any other answer is
  refused with the field's help (a failed COI check is not a completed one).
- `per_m2` (numbers only): a dose per m² of body surface area; the form shows the dose calculated from the
  patient's latest height and weight beside the field (a help, never a value filled in for the nurse).
- `computed`: computed by a calculator from other fields ("record.bsa"), the patient's facts
  ("patient.weight_kg"), a field of an earlier step of the same journey already recorded as done
  ("step.renal-dose-review.dose_percent", the value in force: a physician's overruling counts) or a value
  written into the protocol.
- `measured_within_days` (computed fields only): the height and weight it reads may be at most this many
  days old on the day performed (a year-old weight never doses chemotherapy).
- `indications`: the patient indications (patients.Indication) the field is asked for; for a patient of another
  indication it is not asked, not validated, not required and refused if sent (an MG-ADL item for a lupus patient).
  Without the key the field is asked for every patient.
- `alert`: a finding that raises a clinical alert at once: a whole-number or choice field at least `from`, or a
  yes/no field answered yes (a new malignancy).
- `within_percent` (numbers only): {"of": field, "percent": 5, "reason": text field}: the value given must be
  within ± percent of that (prescribed) field; outside it, only a physician records it, saying why.
- `criterion` (numbers and choices): {"at_least": 100} or {"one_of": ["negative"]}, "reason": text field}: an
  eligibility criterion; a value that does not meet it is recorded only by a physician, saying why.

Stored values, normalised: integers and decimals as JSON numbers (a decimal is read exactly as a
Decimal, checked, then stored as a number: clinic values have few significant digits, which a JSON
number carries exactly), choices as their value string, booleans as true/false, text as the stripped
string, dates as ISO "YYYY-MM-DD". A field left empty is left out of the record.

Errors are keyed "record.<name>" (and "record" for the record as a whole); the page form names its
inputs the same way, so a service error lands next to its field.
"""

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, model_validator
from pydantic import ValidationError as SpecInvalid
from pydantic_core import PydanticCustomError

from carclinic.errors import InvalidInput
from clinical.calculators import CALCULATORS, PATIENT_FACTS, PatientFacts
from clinical.dosing import deviation_percent, dose_from_bsa, within_tolerance
from clinical.numbers import rounded
from patients.models import Indication

FIELD_TYPES = ("integer", "decimal", "choice", "boolean", "text", "date")
NUMBER_TYPES = ("integer", "decimal")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
TEXT_MAX_LENGTH = 200
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
RECORD_PREFIX, PATIENT_PREFIX, STEP_PREFIX = "record.", "patient.", "step."
STEP_SOURCE = re.compile(r"^step\.([-a-zA-Z0-9_]{1,60})\.([a-z][a-z0-9_]{0,49})$")

__all__ = ["FieldSpec", "PatientFacts", "clean_record", "record_errors", "spec_errors", "validate_specs"]


def error_key(name: str) -> str:
    return f"{RECORD_PREFIX}{name}"


# --- the spec: one pydantic model ------------------------------------------------------------------
# Validation of specs (`spec_errors`, the admin's validator), of values (`FieldSpec.clean`), the page's
# inputs (journeys.forms.record_form_field reads a FieldSpec) and the API's OpenAPI schema (the
# serializer names `FieldSpecList`) all come from these two classes.

Number = int | float  # JSON numbers; ints stay ints, so a spec reads back as it was written
Text = Annotated[str, StringConstraints(max_length=4000)]
Choice = Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=2, max_length=3)]


@dataclass(frozen=True)
class RecordFacts(PatientFacts):
    """The patient's facts and, for "step.<code>.<field>" sources, the records in force of the journey's
    steps already done (code → record, a physician's overruling applied)."""

    done_steps: dict = dataclass_field(default_factory=dict)


class Computed(BaseModel):
    """A value the record computes instead of asking for it: calculator `by` (clinical.calculators) with each
    argument `from` another field ("record.bsa"), a patient fact ("patient.weight_kg"), a field of a step
    already done ("step.renal-dose-review.dose_percent") or a value written into the protocol (25, [...])."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    by: str = Field(
        description="The calculator, e.g. body_surface_area, dose_from_bsa, crs_grade.",
        json_schema_extra={"enum": sorted(CALCULATORS)},
    )
    sources: dict[str, Any] = Field(
        alias="from", description='Argument name → "record.<field>", "patient.<fact>" or a value given by the protocol.'
    )

    def references(self) -> list[str]:
        return [
            value[len(RECORD_PREFIX) :]
            for value in self.sources.values()
            if isinstance(value, str) and value.startswith(RECORD_PREFIX)
        ]

    def step_references(self) -> list[str]:
        """The codes of the other steps this reads ("step.renal-dose-review.dose_percent" → renal-dose-review)."""
        return [
            match.group(1) for value in self.sources.values() if isinstance(value, str) and (match := STEP_SOURCE.match(value))
        ]

    def problems(self) -> list[str]:
        calculator = CALCULATORS.get(self.by)
        if calculator is None:
            return [f"computed.by must be one of {', '.join(sorted(CALCULATORS))}."]
        problems = []
        unknown = set(self.sources) - set(calculator.arguments)
        missing = set(calculator.arguments) - set(self.sources) - calculator.optional
        if unknown:
            problems.append(f"{self.by} takes no {', '.join(sorted(unknown))}.")
        if missing:
            problems.append(f"{self.by} needs {', '.join(sorted(missing))} in computed.from.")
        for argument, value in self.sources.items():
            if isinstance(value, str) and value.startswith(PATIENT_PREFIX) and value[len(PATIENT_PREFIX) :] not in PATIENT_FACTS:
                problems.append(f"{argument}: patient facts are {', '.join(PATIENT_FACTS)}.")
            elif (
                isinstance(value, str) and value.startswith(RECORD_PREFIX) and not NAME_PATTERN.match(value[len(RECORD_PREFIX) :])
            ):
                problems.append(f"{argument}: {value!r} names no field.")
            elif isinstance(value, str) and value.startswith(STEP_PREFIX) and not STEP_SOURCE.match(value):
                problems.append(f"{argument}: {value!r} is not step.<step code>.<field>.")
        return problems


class Override(BaseModel):
    """This field records a value other than the one computed for field `of` (a physician's different grade);
    `reason` names the text field that must then say why. Who may do it is staff.roles' OVERRIDE_COMPUTED."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    of: str = Field(alias="of", pattern=NAME_PATTERN.pattern, description="The computed field this one overrides.")
    reason: str = Field(pattern=NAME_PATTERN.pattern, description="The text field that gives the reason.")


class WithinPercent(BaseModel):
    """The value given must be within ± `percent` of field `of` (the dose prescribed); outside it, text field
    `reason` must say why and only a physician records it (staff.roles' OVERRIDE_COMPUTED)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    of: str = Field(pattern=NAME_PATTERN.pattern, description="The field the value is compared with.")
    percent: Number = Field(ge=0, le=100, description="The tolerance, ± % of that field's value.")
    reason: str = Field(pattern=NAME_PATTERN.pattern, description="The text field that says why it is outside.")


class Criterion(BaseModel):
    """An eligibility criterion (a CD3+ count at least the protocol's minimum, a negative pregnancy test): a value
    that does not meet it stops the step unless a physician records it, saying why in text field `reason` (the
    same path as a dose outside `within_percent`: staff.roles' OVERRIDE_COMPUTED, the reason in the audit)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    at_least: Number | None = Field(None, description="Numbers: the lowest value that meets the criterion.")
    one_of: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        None, min_length=1, description="Choices: the values that meet the criterion."
    )
    reason: str = Field(pattern=NAME_PATTERN.pattern, description="The text field that says why a physician goes on.")

    def met(self, value) -> bool:
        if self.at_least is not None:
            return Decimal(str(value)) >= Decimal(str(self.at_least))
        return value in (self.one_of or [])

    def words(self, unit: str | None, choices=None) -> str:
        """The criterion in words: "at least 100 /µL", "Negative or Not applicable" (the choices' labels)."""
        if self.at_least is not None:
            return f"at least {_plain(self.at_least)}{f' {unit}' if unit else ''}"
        labels = {choice[0]: choice[1] for choice in choices or []}
        return " or ".join(labels.get(value, value) for value in self.one_of or [])


class AlertWhen(BaseModel):
    """A finding that raises a clinical alert at once: when this (computed, whole-number) field's value is at
    least `from` (a CRS grade 2, any ICANS), or a yes/no field is answered yes (a new malignancy: no `from`).
    The alert's kind is `kind`; unacknowledged after `escalate_after_minutes` it goes to every physician. Both
    numbers are the protocol's."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    kind: str = Field(pattern=NAME_PATTERN.pattern, description='The clinical alert kind, e.g. "crs", "icans".')
    at_least: int | None = Field(
        None, alias="from", ge=0, description="The lowest value that raises the alert (numbers and choices; not yes/no)."
    )
    # A finding that is a choice, not a grade: a positive pregnancy test.
    one_of: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        None, min_length=1, description="Choice values that raise the alert (instead of `from`)."
    )
    escalate_after_minutes: int = Field(
        30, ge=1, le=7 * 24 * 60, description="Unacknowledged this long, the alert escalates to every physician."
    )


class DoseCheck(BaseModel):
    """A weight-based dose with a schedule (tocilizumab: 8 mg/kg, at most 800 mg a dose, 8 h apart, 3 in 24 h,
    4 in all), checked by the journeys service against the patient's weight and the doses recorded before;
    outside it the dose needs a physician's reason in field `reason`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    per_kg: Number = Field(gt=0)
    cap: Number = Field(gt=0)
    min_hours_apart: Number = Field(ge=0)
    max_in_window: int = Field(ge=1)
    window_hours: Number = Field(gt=0)
    max_total: int = Field(ge=1)
    reason: str = Field(pattern=NAME_PATTERN.pattern)


class FieldSpec(BaseModel):
    """One value a step records when completed."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        json_schema_extra={"description": "One value a step records when completed (journeys.records describes the spec)."},
    )

    name: str = Field(pattern=NAME_PATTERN.pattern, description='The key to send in `record`, e.g. "crs_grade".')
    label: Annotated[str, StringConstraints(min_length=1, max_length=4000, pattern=r"\S")]
    type: Literal["integer", "decimal", "choice", "boolean", "text", "date"]
    unit: Text | None = None
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    choices: list[Choice] | None = Field(None, description="[value, label] or [value, label, short]; send the value.")
    required: bool = False
    help: Text | None = None
    short: Text | None = None
    max_length: int | None = None
    per_m2: Number | None = Field(None, description="A dose per m² of body surface area, in `unit`/m².")
    must_be: bool | None = Field(None, description="The one yes/no answer that lets the step be recorded as done.")
    computed: Computed | None = Field(
        None, description="Computed from other fields and the patient's data; shown and stored, never sent."
    )
    override: Override | None = Field(
        None,
        description="Records a value other than the computed one of another "
        "field, with a reason (a physician's different grade).",
    )
    measured_within_days: int | None = Field(
        None, ge=0, le=3650, description="Computed fields: the height and weight read may be at most this many days old."
    )
    within_percent: WithinPercent | None = Field(
        None, description="The value must be within ± percent of another field; outside it a physician records it with a reason."
    )
    criterion: Criterion | None = Field(
        None, description="An eligibility criterion: a value not meeting it is recorded only by a physician with a reason."
    )
    alert: AlertWhen | None = Field(None, description="Raises a clinical alert when the value reaches a threshold.")
    indications: Annotated[list[Literal[tuple(Indication.values)]], Field(min_length=1)] | None = Field(
        None, description="Asked, validated and required only for patients of these indications; absent: for every patient."
    )
    dose_check: DoseCheck | None = Field(None, description="A weight-based dose and its schedule, checked when given.")

    @model_validator(mode="after")
    def _rules(self):
        if problems := self.rule_problems():
            raise PydanticCustomError("spec_rules", "{message}", {"message": " ".join(problems), "problems": problems})
        return self

    def rule_problems(self) -> list[str]:
        """What the types alone cannot say: which keys fit which type, and how they fit together."""
        problems, kind = [], self.type
        if self.must_be is not None and kind != "boolean":
            problems.append("must_be is true or false, for yes/no fields only.")
        bounds = {key: getattr(self, key) for key in ("min", "max", "step", "per_m2") if getattr(self, key) is not None}
        if bounds and kind not in NUMBER_TYPES:
            problems.append("min, max, step and per_m2 are for numbers only.")
        elif kind == "integer":
            problems.extend(
                f"{key} of a whole-number field must be a whole number."
                for key in ("min", "max")
                if key in bounds and bounds[key] != int(bounds[key])
            )
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append("min is greater than max.")
        problems.extend(
            f"{key} must be greater than zero." for key in ("step", "per_m2") if key in bounds and not bounds[key] > 0
        )
        if kind == "choice":
            problems.extend(_choice_errors(self.choices))
        elif self.choices is not None:
            problems.append("choices are for choice fields only.")
        if self.max_length is not None and (kind != "text" or not 1 <= self.max_length <= 4000):
            problems.append("max_length is a whole number from 1 to 4000, for text fields.")
        if self.alert is not None and kind not in ("integer", "choice", "boolean"):
            problems.append("alert is for whole-number, choice (a grade) and yes/no fields.")
        elif self.alert is not None and self.alert.one_of is not None:
            # A choice that alerts by its value, not its grade (a positive pregnancy test).
            if kind != "choice" or self.alert.at_least is not None:
                problems.append("alert.one_of is for choice fields, instead of alert.from.")
        elif self.alert is not None and (self.alert.at_least is None) != (kind == "boolean"):
            problems.append("alert.from is the lowest value that alerts, for numbers and choices; a yes/no field alerts on yes.")
        if self.computed is not None:
            problems.extend(self.computed.problems())
            if self.must_be is not None or self.per_m2 is not None or self.override is not None:
                problems.append("a computed field takes no must_be, per_m2 or override.")
            if self.within_percent is not None:
                problems.append("a computed field takes no within_percent.")
        elif self.measured_within_days is not None:
            problems.append("measured_within_days is for computed fields.")
        if self.within_percent is not None and kind not in NUMBER_TYPES:
            problems.append("within_percent is for numbers only.")
        if self.criterion is not None:
            if (self.criterion.at_least is None) == (self.criterion.one_of is None):
                problems.append("criterion takes at_least (numbers) or one_of (choices).")
            elif (self.criterion.at_least is not None and kind not in NUMBER_TYPES) or (
                self.criterion.one_of is not None and kind != "choice"
            ):
                problems.append("criterion.at_least is for numbers, criterion.one_of for choices.")
            elif self.criterion.one_of and self.choices and set(self.criterion.one_of) - {c[0] for c in self.choices}:
                problems.append("criterion.one_of names values that are not choices of this field.")
        return problems

    # --- its values ---

    def asked_for(self, indication: str | None) -> bool:
        """Whether a patient of `indication` is asked this field."""
        return self.indications is None or indication in self.indications

    @property
    def places(self) -> int | None:
        """Decimal places of the input's step (0.1 → 1), the precision a computed value is stored at."""
        if self.type == "integer":
            return 0
        if self.step is None:
            return None
        return max(0, -Decimal(str(self.step)).normalize().as_tuple().exponent)

    def clean(self, raw):
        """The value normalised for storage, or ValueError in words for the person who typed it."""
        kind = self.type
        if kind in NUMBER_TYPES:
            return self._number(raw)
        if kind == "choice":
            if isinstance(raw, str) and raw.strip() in [choice[0] for choice in self.choices]:
                return raw.strip()
            raise ValueError(f"Choose one of: {', '.join(choice[1] for choice in self.choices)}.")
        if kind == "boolean":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
                return raw.strip().lower() in _TRUE
            raise ValueError("Answer yes or no.")
        if kind == "date":
            if isinstance(raw, date):
                return raw.isoformat()
            # Only the plain form: fromisoformat would also take week dates and other forms a person never types.
            if isinstance(raw, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw.strip()):
                try:
                    return date.fromisoformat(raw.strip()).isoformat()
                except ValueError:
                    pass
            raise ValueError("Enter a date as YYYY-MM-DD.")
        if not isinstance(raw, str):
            raise ValueError("Enter text.")
        text = raw.strip()
        limit = self.max_length or TEXT_MAX_LENGTH
        if len(text) > limit:
            raise ValueError(f"At most {limit} characters.")
        if "\x00" in text:
            raise ValueError("Contains a character that cannot be stored.")
        return text

    def _number(self, raw) -> int | float:
        if isinstance(raw, bool):
            raise ValueError("Enter a number.")
        if self.type == "integer":
            if isinstance(raw, int):
                value = raw
            elif isinstance(raw, float) and raw.is_integer():
                value = int(raw)
            elif isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d{1,12}\s*", raw):
                value = int(raw)
            else:
                raise ValueError("Enter a whole number.")
            exact = Decimal(value)
        else:
            try:
                exact = (
                    Decimal(raw.strip().replace(",", "."))
                    if isinstance(raw, str)
                    else raw
                    if isinstance(raw, Decimal)
                    else Decimal(str(raw))
                )
            except (InvalidOperation, TypeError):
                raise ValueError("Enter a number, e.g. 38.5.") from None
            if not exact.is_finite() or abs(exact) >= Decimal("1e12"):
                raise ValueError("Enter a number, e.g. 38.5.")
            value = int(exact) if exact == exact.to_integral_value() else float(exact)
        unit = f" {self.unit}" if self.unit else ""
        low, high = self.min, self.max
        if low is not None and exact < Decimal(str(low)):
            raise ValueError(
                f"Must be at least {_plain(low)}{unit}."
                if high is None
                else f"Must be from {_plain(low)} to {_plain(high)}{unit}."
            )
        if high is not None and exact > Decimal(str(high)):
            raise ValueError(
                f"Must be at most {_plain(high)}{unit}."
                if low is None
                else f"Must be from {_plain(low)} to {_plain(high)}{unit}."
            )
        return value

    def computed_value(self, record: dict, facts: PatientFacts):
        """The value the calculator gives from the record so far and the patient's facts: None when an input is
        missing or the calculator gives none (a renal band where a physician decides); ValueError when it
        cannot be computed from what was given, the height and weight are older than the protocol allows,
        or the result is outside the field's range."""
        calculator = CALCULATORS[self.computed.by]
        if (
            self.measured_within_days is not None
            and facts.measured_on is not None
            and (facts.measurement_age_days is None or facts.measurement_age_days > self.measured_within_days)
        ):
            raise ValueError(
                f"weigh the patient first: the latest height and weight are from "
                f"{facts.measured_on:%d %b %Y}, {facts.measurement_age_days} days old; the protocol "
                f"allows at most {self.measured_within_days}"
            )
        arguments = {}
        for argument in calculator.arguments:
            value = _source_value(self.computed.sources.get(argument), record, facts)
            if value is None and argument not in calculator.optional:
                return None
            arguments[argument] = value
        result = calculator(**arguments)
        if result is None:
            return None
        if self.type in NUMBER_TYPES:
            exact = Decimal(result) if isinstance(result, int) else result
            if self.places is not None:
                exact = rounded(exact, self.places)
            return self._number(int(exact) if self.type == "integer" else exact)
        if self.type == "choice" and isinstance(result, int):
            result = str(result)
        return self.clean(result)


def _source_value(source, record: dict, facts: PatientFacts):
    if isinstance(source, str) and source.startswith(RECORD_PREFIX):
        return record.get(source[len(RECORD_PREFIX) :])
    if isinstance(source, str) and source.startswith(PATIENT_PREFIX):
        return facts.get(source[len(PATIENT_PREFIX) :])
    if isinstance(source, str) and (match := STEP_SOURCE.match(source)):
        return (getattr(facts, "done_steps", {}).get(match.group(1)) or {}).get(match.group(2))
    return source  # a value the protocol gives (or None: an optional argument left out)


class FieldSpecList(RootModel[list[FieldSpec]]):
    """What a step records: its field specs, in the order the form asks for them."""


def field_specs_openapi() -> dict:
    """The JSON schema of a list of field specs as OpenAPI 3.0 reads it, from the same model that validates
    them: keys are left out rather than null, so nullability is dropped; sub-models are inlined."""
    schema = FieldSpecList.model_json_schema()
    definitions = schema.pop("$defs", {})

    def tidy(node):
        if isinstance(node, list):
            return [tidy(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return tidy({**definitions[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}})
        node = {key: tidy(value) for key, value in node.items() if key != "title" and not (key == "default" and value is None)}
        # Bounds on a number-or-integer field come out under pydantic's own names; OpenAPI 3.0 words them so.
        for bound, (word, exclusive) in {
            "ge": ("minimum", False),
            "gt": ("minimum", True),
            "le": ("maximum", False),
            "lt": ("maximum", True),
        }.items():
            if bound in node:
                node[word] = node.pop(bound)
                if exclusive:
                    node[f"exclusive{word.capitalize()}"] = True
        if "anyOf" in node:
            options = [option for option in node["anyOf"] if option != {"type": "null"}]
            if {"type": "integer"} in options and {"type": "number"} in options:
                options.remove({"type": "integer"})  # an integer is a number
            node.pop("anyOf")
            node = {**options[0], **node} if len(options) == 1 else {**node, "anyOf": options}
        return node

    return tidy(schema)


def parse_specs(specs) -> list[FieldSpec]:
    """Stored specs (dicts, already checked on save) as FieldSpecs."""
    return [spec if isinstance(spec, FieldSpec) else FieldSpec.model_validate(spec) for spec in specs or []]


# --- the specs, in words for the protocol editor ---------------------------------------------------

_TYPE_WORDS = {
    "name": "name must be lower-case letters, digits and underscores, starting with a letter.",
    "label": "a label is required.",
    "type": f"type must be one of {', '.join(FIELD_TYPES)}.",
    "required": "required must be true or false.",
    "must_be": "must_be is true or false, for yes/no fields only.",
    "max_length": "max_length is a whole number from 1 to 4000, for text fields.",
    "choices": "a choice field needs a list of [value, label] choices.",
    "computed": 'computed is {"by": a calculator, "from": {argument: source}}.',
}


def _words(error: SpecInvalid) -> list[str]:
    words, unknown = [], []
    for item in error.errors():
        key = item["loc"][0] if item["loc"] else None
        if item["type"] == "spec_rules":
            words.extend(item["ctx"]["problems"])
        elif item["type"] == "extra_forbidden" and len(item["loc"]) == 1:
            unknown.append(str(key))
        elif item["type"] == "missing" and key == "label":
            words.append(_TYPE_WORDS["label"])
        elif key in ("unit", "help", "short"):
            words.append(f"{key} must be text.")
        elif key in ("min", "max", "step", "per_m2"):
            words.append(f"{key} must be a number.")
        elif key == "choices":
            words.append(
                f"each choice is [value, label] or [value, label, short] in text, not {item['input']!r}."
                if len(item["loc"]) > 1
                else _TYPE_WORDS["choices"]
            )
        else:
            words.append(_TYPE_WORDS.get(key, f"{'.'.join(map(str, item['loc']))}: {item['msg']}."))
    if unknown:
        words.insert(0, f"unknown keys {', '.join(sorted(unknown))}.")
    return list(dict.fromkeys(words))  # one message per problem, even when a union reports it twice


def spec_errors(specs, *, alone: bool = False) -> list[str]:
    """Everything wrong with a list of field specs, in words for the protocol editor (empty: all good).
    `alone`: judge each spec by itself, leaving out what only the whole list shows (fields it refers to)."""
    if specs in (None, ""):
        return []
    if not isinstance(specs, list):
        return ["Record fields must be a list of field specs."]
    errors, seen = [], []
    for position, spec in enumerate(specs, start=1):
        where = f"Field {position}"
        if not isinstance(spec, dict):
            errors.append(f"{where}: must be an object with name, label and type.")
            continue
        name = spec.get("name")
        if isinstance(name, str) and NAME_PATTERN.match(name):
            where = f"Field “{name}”"
            if name in seen:
                errors.append(f"{where}: the name is used twice.")
        try:
            parsed = FieldSpec.model_validate(spec)
        except SpecInvalid as error:
            errors.extend(f"{where}: {words}" for words in _words(error))
        else:
            # A computed field reads fields asked before it (the form fills them in that order).
            if parsed.computed is not None and not alone:
                errors.extend(
                    f"{where}: computed from “{other}”, which is not a field before it."
                    for other in parsed.computed.references()
                    if other not in seen
                )
        if isinstance(name, str):
            seen.append(name)
    if not alone:
        errors.extend(_override_errors(specs))
    return errors


def _override_errors(specs: list) -> list[str]:
    by_name = {spec.get("name"): spec for spec in specs if isinstance(spec, dict)}
    order = list(by_name)
    errors = []
    for name, spec in by_name.items():
        override = spec.get("override")
        if not isinstance(override, dict):
            continue
        target, reason = by_name.get(override.get("of")), by_name.get(override.get("reason"))
        if (
            target is None
            or not target.get("computed")
            or target.get("type") != spec.get("type")
            or order.index(override["of"]) > order.index(name)
        ):
            errors.append(f"Field “{name}”: override.of names a computed field of the same type before it.")
        if reason is None or reason.get("type") != "text":
            errors.append(f"Field “{name}”: override.reason names a text field of this step.")
    for name, spec in by_name.items():
        rule = spec.get("criterion")
        if isinstance(rule, dict) and (
            (reason := by_name.get(rule.get("reason"))) is None
            or reason.get("type") != "text"
            or order.index(rule["reason"]) < order.index(name)
        ):
            errors.append(f"Field “{name}”: criterion.reason names a text field of this step after it.")
    for name, spec in by_name.items():
        rule = spec.get("within_percent")
        if not isinstance(rule, dict):
            continue
        target, reason = by_name.get(rule.get("of")), by_name.get(rule.get("reason"))
        if target is None or target.get("type") not in NUMBER_TYPES or order.index(rule["of"]) > order.index(name):
            errors.append(f"Field “{name}”: within_percent.of names a number field before it.")
        if reason is None or reason.get("type") != "text":
            errors.append(f"Field “{name}”: within_percent.reason names a text field of this step.")
    return errors


def _choice_errors(choices) -> list[str]:
    if not choices:
        return ["a choice field needs a list of [value, label] choices."]
    errors, values = [], set()
    for choice in choices:
        if not all(part.strip() for part in choice):
            errors.append(f"each choice is [value, label] or [value, label, short] in text, not {choice!r}.")
        elif choice[0] in values:
            errors.append(f"the choice value “{choice[0]}” is used twice.")
        else:
            values.add(choice[0])
    return errors


def validate_specs(specs) -> None:
    """The model field's validator: admin and `full_clean` show these next to `record_fields`."""
    errors = spec_errors(specs)
    if errors:
        raise ValidationError(errors)


def needs_patient_facts(specs) -> bool:
    """Whether completing a step with these specs computes anything or asks by indication (so the caller fetches
    the patient's facts)."""
    return any(isinstance(spec, dict) and (spec.get("computed") or spec.get("indications")) for spec in specs or [])


def for_patient(specs, facts: PatientFacts | None) -> list[FieldSpec]:
    """The specs asked of this patient: those of the patient's indication and those of every indication. Without
    facts (nothing computed, nothing by indication) every spec."""
    specs = parse_specs(specs)
    if facts is None:
        return specs
    return [spec for spec in specs if spec.asked_for(facts.indication)]


def step_references(specs) -> list[str]:
    """The codes of the other steps whose records these specs compute from."""
    return sorted({code for spec in parse_specs(specs) if spec.computed for code in spec.computed.step_references()})


def in_force(specs, record: dict | None) -> dict:
    """A done step's record as it counts for later steps: a physician's overruling replaces the computed value
    (a dose percent decided below 30 mL/min, where the protocol computes none)."""
    record = dict(record or {})
    for change in overrides(specs, record):
        if change.get("tolerance_percent") is None and change.get("criterion") is None:
            record[change["field"]] = change["recorded"]
    return record


def reads_patient_facts(specs, names) -> bool:
    """Whether a computed field of `specs` reads one of the patient facts `names` (the caller fetches them)."""
    wanted = {f"{PATIENT_PREFIX}{name}" for name in names}
    return any(
        isinstance(spec, dict)
        and isinstance(spec.get("computed"), dict)
        and wanted & {value for value in (spec["computed"].get("from") or {}).values() if isinstance(value, str)}
        for spec in specs or []
    )


# --- the values -----------------------------------------------------------------------------------


def _is_empty(raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _plain(number) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def record_errors(specs, record, *, facts: PatientFacts | None = None) -> tuple[dict, dict[str, list[str]]]:
    """(the normalised record, errors keyed "record.<name>"): the shared judgement of service, form and API.

    Computed fields are never typed: a value sent for one is refused. They are computed, in the specs'
    order, from the typed values and `facts`; without `facts` (a form checking shapes only) they are left
    to the service."""
    every = parse_specs(specs)
    specs = for_patient(every, facts)
    if record is None:
        record = {}
    if not isinstance(record, dict):
        return {}, {"record": ["Send the recorded values as an object of field name to value."]}
    errors: dict[str, list[str]] = {}
    cleaned = {}
    by_name = {spec.name: spec for spec in specs}
    other_indication = {spec.name for spec in every} - set(by_name)
    for name in record:
        if name in other_indication and _is_empty(record[name]):
            continue  # a form's empty input of another indication's field says nothing
        if name in other_indication:
            errors[error_key(str(name))] = ["Not recorded for this patient's indication."]
        elif name not in by_name:
            errors[error_key(str(name))] = ["This step records no such field."]
    for spec in specs:
        raw = record.get(spec.name)
        if spec.computed is not None:
            if not _is_empty(raw):
                # Typing over a calculation is what the checks exist to stop (a BSA of 2.50 beside a measured 1.82).
                errors[error_key(spec.name)] = ["Computed, not typed: leave it out and it is calculated."]
            continue
        if _is_empty(raw):
            # Without the patient's facts the indication is unknown: what only some indications require is left
            # to the service, which knows it.
            if spec.required and (facts is not None or spec.indications is None):
                errors[error_key(spec.name)] = ["Required for this step."]
            continue
        try:
            cleaned[spec.name] = spec.clean(raw)
        except ValueError as error:
            errors[error_key(spec.name)] = [str(error)]
            continue
        if spec.must_be is not None and cleaned[spec.name] != spec.must_be:
            # A safety check answered the wrong way stops the step: recording "done" would let the
            # journey move on (the infusion follows the COI check) on a failed check.
            errors[error_key(spec.name)] = [
                " ".join(
                    filter(None, (f"Only “{'yes' if spec.must_be else 'no'}” lets this step be recorded as done.", spec.help))
                )
            ]
    if facts is not None and not errors:
        for spec in specs:
            if spec.computed is None:
                continue
            try:
                value = spec.computed_value(cleaned, facts)
            except ValueError as error:
                message = str(error)
                if (source := _refused_field(spec, error)) is not None:
                    # A score item out of its scale or a remission the criteria do not allow: said by that input.
                    errors.setdefault(error_key(source), []).append(message)
                    continue
                errors[error_key(spec.name)] = [
                    f"Computed as out of range: {message}"
                    if message.startswith("Must")
                    else f"{message[0].upper()}{message[1:]}."
                    if message.startswith("weigh")
                    else f"Cannot be computed: {message}"
                ]
                continue
            if value is not None:
                cleaned[spec.name] = value
            elif spec.required:
                errors[error_key(spec.name)] = [f"Cannot be computed: {missing_inputs(spec, cleaned, facts)}."]
        for change in overrides(specs, cleaned):
            if change["reason"] or change.get("criterion") is not None:
                continue
            if change.get("tolerance_percent") is None:
                errors[error_key(change["reason_field"])] = [
                    f"{change['label']} differs from the computed one: say why (it goes into the audit trail)."
                ]
            else:
                # A dose off the prescription (91 mg for 45.5, grams typed as mg) stops here unless a physician says why.
                errors[error_key(change["by_field"])] = [
                    f"{_plain(change['recorded'])} is {change['deviation']} from the {change['of_label']} "
                    f"{_plain(change['computed'])} (the protocol allows ±{_plain(change['tolerance_percent'])} %): "
                    f"correct it, or a physician confirms it with a reason."
                ]
    if not errors:
        # A failed eligibility criterion (a CD3+ count of 20/µL, a positive pregnancy test) is not recorded as if it
        # were met: the physician who goes on anyway says why. Judged with or without facts: nothing is computed.
        for change in overrides(specs, cleaned):
            if change.get("criterion") is not None and not change["reason"]:
                errors[error_key(change["by_field"])] = [
                    f"{change['label']} {display_value(by_name[change['by_field']].model_dump(), change['recorded'])}: "
                    f"the protocol's eligibility criterion is {change['criterion']}. Not eligible: a physician may "
                    "go on only with a reason."
                ]
    return cleaned, errors


def _refused_field(spec: FieldSpec, error: ValueError) -> str | None:
    """The record field a calculator's refusal is about (clinical.disease_activity.ItemRefused names its argument)."""
    source = spec.computed.sources.get(getattr(error, "argument", None) or "")
    if isinstance(source, str) and source.startswith(RECORD_PREFIX):
        return source[len(RECORD_PREFIX) :]
    return None


def overrides(specs, record: dict) -> list[dict]:
    """Where the record holds a value other than the computed one: which field, both values, the reason."""
    specs = parse_specs(specs)
    changes = []
    for spec in specs:
        if spec.override is None or spec.name not in record:
            continue
        computed = record.get(spec.override.of)
        if record[spec.name] != computed:
            changes.append(
                {
                    "field": spec.override.of,
                    "by_field": spec.name,
                    "label": spec.label,
                    "computed": computed,
                    "recorded": record[spec.name],
                    "reason_field": spec.override.reason,
                    "reason": record.get(spec.override.reason, ""),
                }
            )
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        rule = spec.within_percent
        if rule is None or spec.name not in record or not record.get(rule.of):
            continue
        given, prescribed = record[spec.name], record[rule.of]
        if not within_tolerance(given, prescribed, rule.percent):
            deviation = rounded(deviation_percent(given, prescribed), 0)
            changes.append(
                {
                    "field": rule.of,
                    "by_field": spec.name,
                    "label": spec.label,
                    "of_label": by_name[rule.of].label.lower() if rule.of in by_name else rule.of,
                    "computed": prescribed,
                    "recorded": given,
                    "tolerance_percent": rule.percent,
                    "deviation": f"{'+' if deviation > 0 else '−' if deviation < 0 else '±'}{abs(deviation)} %",
                    "reason_field": rule.reason,
                    "reason": record.get(rule.reason, ""),
                }
            )
    for spec in specs:
        rule = spec.criterion
        if rule is None or spec.name not in record or rule.met(record[spec.name]):
            continue
        changes.append(
            {
                "field": spec.name,
                "by_field": spec.name,
                "label": spec.label,
                "computed": f"eligible if {rule.words(spec.unit, spec.choices)}",
                "recorded": record[spec.name],
                "criterion": rule.words(spec.unit, spec.choices),
                "reason_field": rule.reason,
                "reason": record.get(rule.reason, ""),
            }
        )
    return changes


def missing_inputs(spec: FieldSpec, record: dict, facts: PatientFacts) -> str:
    """What a computed field lacks, in words: "no weight recorded for the patient", "no Creatinine"."""
    calculator = CALCULATORS[spec.computed.by]
    lacking = []
    for argument in calculator.arguments:
        source = spec.computed.sources.get(argument)
        if argument in calculator.optional or _source_value(source, record, facts) is not None:
            continue
        if isinstance(source, str) and source.startswith(PATIENT_PREFIX):
            lacking.append(f"no {source[len(PATIENT_PREFIX) :].replace('_', ' ')} on file for the patient")
        elif isinstance(source, str) and source.startswith(RECORD_PREFIX):
            lacking.append(f"no {source[len(RECORD_PREFIX) :]} recorded")
        elif isinstance(source, str) and (match := STEP_SOURCE.match(source)):
            lacking.append(
                f"no {match.group(2).replace('_', ' ')} recorded at the step “{match.group(1)}” (record it as done first)"
            )
    return "; ".join(lacking) or "the protocol gives no dose for this band, a physician decides"


def clean_record(specs, record, *, facts: PatientFacts | None = None) -> dict:
    """The record normalised for storage, or InvalidInput with a message per field."""
    cleaned, errors = record_errors(specs, record, facts=facts)
    if errors:
        raise InvalidInput("Some recorded values need correcting.", field_errors=errors)
    return cleaned


def computed_help(
    spec: FieldSpec, facts: PatientFacts | None, labels: dict[str, str] | None = None, record: dict | None = None
) -> str:
    """The formula of a computed field for its read-only input, with the patient's values where known and the
    other fields by their labels: "Mosteller: √(170.0 cm × 70.0 kg / 3600)"."""
    calculator = CALCULATORS[spec.computed.by]
    shown = {}
    for argument in calculator.arguments:
        source = spec.computed.sources.get(argument)
        if isinstance(source, str) and source.startswith(RECORD_PREFIX):
            name = source[len(RECORD_PREFIX) :]
            shown[argument] = (record or {}).get(name, (labels or {}).get(name, name))
        elif isinstance(source, str) and STEP_SOURCE.match(source):
            value = _source_value(source, {}, facts) if facts is not None else None
            shown[argument] = value if value is not None else STEP_SOURCE.match(source).group(2).replace("_", " ")
        elif isinstance(source, str) and source.startswith(PATIENT_PREFIX):
            fact = facts.get(source[len(PATIENT_PREFIX) :]) if facts else None
            shown[argument] = fact if fact is not None else source[len(PATIENT_PREFIX) :].replace("_", " ")
        elif isinstance(source, list | dict):
            shown[argument] = "table"
        else:
            shown[argument] = "—" if source is None else source
    return "Computed: " + calculator.text(shown, spec.unit or "")


# --- showing them ---------------------------------------------------------------------------------


def display_value(spec: dict, value) -> str:
    kind = spec["type"]
    if kind == "choice":
        for choice in spec["choices"]:
            if choice[0] == value:
                return choice[2] if len(choice) == 3 else choice[1]
        return str(value)
    if kind == "boolean":
        return "yes" if value else "no"
    if kind == "date":
        try:
            return f"{date.fromisoformat(value):%d %b %Y}"
        except (TypeError, ValueError):
            return str(value)
    text = str(value)
    if kind == "decimal" and spec.get("step") and isinstance(value, int | float):
        # As precise as the input asks for: a temperature of 37 reads "37.0 °C", like the thermometer.
        places = max(0, -Decimal(str(spec["step"])).normalize().as_tuple().exponent)
        text = f"{value:.{places}f}"
    return f"{text} {spec['unit']}" if spec.get("unit") and kind in NUMBER_TYPES else text


def summary(specs: list[dict], record: dict | None) -> str:
    """One compact line for the timeline: "CRS grade 1 · ICE 10 · Tmax 38.2 °C", in the specs' order."""
    if not record:
        return ""
    # A score's items (24 SLEDAI-2K answers, 17 mRSS sites) are summarised by the score they are computed into.
    items = {
        value[len(RECORD_PREFIX) :]
        for spec in specs or []
        if isinstance(spec.get("computed"), dict) and spec.get("indications")
        for value in (spec["computed"].get("from") or {}).values()
        if isinstance(value, str) and value.startswith(RECORD_PREFIX)
    }
    parts = []
    for spec in specs or []:
        if spec.get("name") in record and not (spec.get("indications") and spec["name"] in items):
            computed = " (computed)" if spec.get("computed") else ""
            parts.append(f"{spec.get('short') or spec['label']} {display_value(spec, record[spec['name']])}{computed}")
    return " · ".join(parts)


def changes(specs: list[dict], before: dict, after: dict) -> str:
    """What a correction changed, in the specs' order: "CRS grade 1 → 0 · Tmax 38.2 °C → 37.2 °C"."""
    parts = []
    for spec in specs or []:
        old, new = before.get(spec["name"]), after.get(spec["name"])
        if old != new:
            shown = [display_value(spec, value) if value is not None else "—" for value in (old, new)]
            parts.append(f"{spec.get('short') or spec['label']} {shown[0]} → {shown[1]}")
    return " · ".join(parts)


def calculated_dose(spec: dict, bsa_m2) -> str:
    """ "25 mg/m² × 1.72 m² = 43.0 mg" for a per-m² dose field, or "" when the field or the BSA says nothing."""
    if not spec.get("per_m2") or not bsa_m2:
        return ""
    unit = spec.get("unit", "")
    dose = dose_from_bsa(spec["per_m2"], bsa_m2)
    return f"{_plain(spec['per_m2'])} {unit}/m² × {bsa_m2} m² = {display_value(spec, float(dose))}"


def alert_findings(specs, record: dict) -> list[dict]:
    """The findings of `record` that raise a clinical alert by the specs' `alert` thresholds: the worse of the
    computed value and a physician's different one (an overruling upwards alerts too; downwards it does not
    silence the computed finding, the physician acknowledges it instead)."""
    specs = parse_specs(specs)
    by_override = {spec.override.of: spec.name for spec in specs if spec.override is not None}
    findings = []
    for spec in specs:
        if spec.alert is None:
            continue
        if spec.alert.one_of is not None:
            # A choice finding (a positive pregnancy test) has no grade: it alerts or it does not (as a grade, 1).
            if record.get(spec.name) in spec.alert.one_of:
                findings.append(
                    {
                        "field": spec.name,
                        "label": spec.label,
                        "kind": spec.alert.kind,
                        "value": 1,
                        "shown": record[spec.name],
                        "escalate_after_minutes": spec.alert.escalate_after_minutes,
                    }
                )
            continue
        values = [record.get(spec.name), record.get(by_override.get(spec.name, ""))]
        if spec.type == "boolean":
            # A yes raises it (a new malignancy); as a grade it is 1, so a correction to yes raises, to no does not.
            grades, threshold = [1 for value in values if value is True], 1
        else:
            grades = [int(value) for value in values if value not in (None, "") and str(value).lstrip("-").isdigit()]
            threshold = spec.alert.at_least
        if grades and max(grades) >= threshold:
            findings.append(
                {
                    "field": spec.name,
                    "label": spec.label,
                    "kind": spec.alert.kind,
                    "value": max(grades),
                    "shown": "yes" if spec.type == "boolean" else str(max(grades)),
                    "escalate_after_minutes": spec.alert.escalate_after_minutes,
                }
            )
    return findings
