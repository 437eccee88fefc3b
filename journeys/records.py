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

Stored values, normalised: integers and decimals as JSON numbers (a decimal is read exactly as a
Decimal, checked, then stored as a number: clinic values have few significant digits, which a JSON
number carries exactly), choices as their value string, booleans as true/false, text as the stripped
string, dates as ISO "YYYY-MM-DD". A field left empty is left out of the record.

Errors are keyed "record.<name>" (and "record" for the record as a whole); the page form names its
inputs the same way, so a service error lands next to its field.
"""

import math
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

from carclinic.errors import InvalidInput
from clinical.dosing import dose_from_bsa

FIELD_TYPES = ("integer", "decimal", "choice", "boolean", "text", "date")
NUMBER_TYPES = ("integer", "decimal")
SPEC_KEYS = {"name", "label", "type", "unit", "min", "max", "step", "choices", "required", "help", "short", "max_length",
             "per_m2", "must_be"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
TEXT_MAX_LENGTH = 200
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def error_key(name: str) -> str:
    return f"record.{name}"


# --- the specs ------------------------------------------------------------------------------------

def spec_errors(specs) -> list[str]:
    """Everything wrong with a list of field specs, in words for the protocol editor (empty: all good)."""
    if specs in (None, ""):
        return []
    if not isinstance(specs, list):
        return ["Record fields must be a list of field specs."]
    errors, seen = [], set()
    for position, spec in enumerate(specs, start=1):
        where = f"Field {position}"
        if not isinstance(spec, dict):
            errors.append(f"{where}: must be an object with name, label and type.")
            continue
        name = spec.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            errors.append(f"{where}: name must be lower-case letters, digits and underscores, starting with a letter.")
        else:
            where = f"Field “{name}”"
            if name in seen:
                errors.append(f"{where}: the name is used twice.")
            seen.add(name)
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            errors.append(f"{where}: unknown keys {', '.join(sorted(unknown))}.")
        if not isinstance(spec.get("label"), str) or not spec["label"].strip():
            errors.append(f"{where}: a label is required.")
        kind = spec.get("type")
        if kind not in FIELD_TYPES:
            errors.append(f"{where}: type must be one of {', '.join(FIELD_TYPES)}.")
            continue
        for key in ("unit", "help", "short"):
            if key in spec and not isinstance(spec[key], str):
                errors.append(f"{where}: {key} must be text.")
        if "required" in spec and not isinstance(spec["required"], bool):
            errors.append(f"{where}: required must be true or false.")
        if "must_be" in spec and (kind != "boolean" or not isinstance(spec["must_be"], bool)):
            errors.append(f"{where}: must_be is true or false, for yes/no fields only.")
        bounds = {key: spec[key] for key in ("min", "max", "step", "per_m2") if key in spec}
        if bounds and kind not in NUMBER_TYPES:
            errors.append(f"{where}: min, max, step and per_m2 are for numbers only.")
        for key, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                errors.append(f"{where}: {key} must be a number.")
            elif kind == "integer" and key in ("min", "max") and value != int(value):
                errors.append(f"{where}: {key} of a whole-number field must be a whole number.")
        if all(isinstance(spec.get(k), int | float) and not isinstance(spec.get(k), bool) for k in ("min", "max")):
            if spec["min"] > spec["max"]:
                errors.append(f"{where}: min is greater than max.")
        for key in ("step", "per_m2"):
            if isinstance(bounds.get(key), int | float) and not isinstance(bounds[key], bool) and not bounds[key] > 0:
                errors.append(f"{where}: {key} must be greater than zero.")
        if kind == "choice":
            errors.extend(f"{where}: {message}" for message in _choice_errors(spec.get("choices")))
        elif "choices" in spec:
            errors.append(f"{where}: choices are for choice fields only.")
        if "max_length" in spec and (kind != "text" or not isinstance(spec["max_length"], int)
                                     or isinstance(spec["max_length"], bool) or not 1 <= spec["max_length"] <= 4000):
            errors.append(f"{where}: max_length is a whole number from 1 to 4000, for text fields.")
    return errors


def _choice_errors(choices) -> list[str]:
    if not isinstance(choices, list) or not choices:
        return ["a choice field needs a list of [value, label] choices."]
    errors, values = [], set()
    for choice in choices:
        if (not isinstance(choice, list) or len(choice) not in (2, 3)
                or not all(isinstance(part, str) and part.strip() for part in choice)):
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


# --- the values -----------------------------------------------------------------------------------

def _is_empty(raw) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _number(spec: dict, raw) -> int | float:
    kind = spec["type"]
    if isinstance(raw, bool):
        raise ValueError("Enter a number.")
    if kind == "integer":
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
            exact = Decimal(raw.strip().replace(",", ".")) if isinstance(raw, str) else Decimal(str(raw))
        except (InvalidOperation, TypeError):
            raise ValueError("Enter a number, e.g. 38.5.") from None
        if not exact.is_finite() or abs(exact) >= Decimal("1e12"):
            raise ValueError("Enter a number, e.g. 38.5.")
        value = int(exact) if exact == exact.to_integral_value() else float(exact)
    unit = f" {spec['unit']}" if spec.get("unit") else ""
    low, high = spec.get("min"), spec.get("max")
    if low is not None and exact < Decimal(str(low)):
        raise ValueError(f"Must be at least {_plain(low)}{unit}." if high is None
                         else f"Must be from {_plain(low)} to {_plain(high)}{unit}.")
    if high is not None and exact > Decimal(str(high)):
        raise ValueError(f"Must be at most {_plain(high)}{unit}." if low is None
                         else f"Must be from {_plain(low)} to {_plain(high)}{unit}.")
    return value


def _plain(number) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _clean_value(spec: dict, raw):
    kind = spec["type"]
    if kind in NUMBER_TYPES:
        return _number(spec, raw)
    if kind == "choice":
        values = [choice[0] for choice in spec["choices"]]
        if isinstance(raw, str) and raw.strip() in values:
            return raw.strip()
        raise ValueError(f"Choose one of: {', '.join(choice[1] for choice in spec['choices'])}.")
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
    # text
    if not isinstance(raw, str):
        raise ValueError("Enter text.")
    text = raw.strip()
    limit = spec.get("max_length", TEXT_MAX_LENGTH)
    if len(text) > limit:
        raise ValueError(f"At most {limit} characters.")
    if "\x00" in text:
        raise ValueError("Contains a character that cannot be stored.")
    return text


def record_errors(specs: list[dict], record) -> tuple[dict, dict[str, list[str]]]:
    """(the normalised record, errors keyed "record.<name>"): the shared judgement of service, form and API."""
    specs = specs or []
    if record is None:
        record = {}
    if not isinstance(record, dict):
        return {}, {"record": ["Send the recorded values as an object of field name to value."]}
    errors: dict[str, list[str]] = {}
    cleaned = {}
    by_name = {spec["name"]: spec for spec in specs}
    for name in record:
        if name not in by_name:
            errors[error_key(str(name))] = ["This step records no such field."]
    for spec in specs:
        raw = record.get(spec["name"])
        if _is_empty(raw):
            if spec.get("required"):
                errors[error_key(spec["name"])] = ["Required for this step."]
            continue
        try:
            cleaned[spec["name"]] = _clean_value(spec, raw)
        except ValueError as error:
            errors[error_key(spec["name"])] = [str(error)]
            continue
        if "must_be" in spec and cleaned[spec["name"]] != spec["must_be"]:
            # A safety check answered the wrong way stops the step: recording "done" would let the
            # journey move on (the infusion follows the COI check) on a failed check.
            errors[error_key(spec["name"])] = [" ".join(filter(None, (
                f"Only “{'yes' if spec['must_be'] else 'no'}” lets this step be recorded as done.", spec.get("help"))))]
    return cleaned, errors


def clean_record(specs: list[dict], record) -> dict:
    """The record normalised for storage, or InvalidInput with a message per field."""
    cleaned, errors = record_errors(specs, record)
    if errors:
        raise InvalidInput("Some recorded values need correcting.", field_errors=errors)
    return cleaned


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
    parts = []
    for spec in specs or []:
        if spec.get("name") in record:
            parts.append(f"{spec.get('short') or spec['label']} {display_value(spec, record[spec['name']])}")
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
