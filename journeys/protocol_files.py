"""A protocol as a file a clinic can read, diff and load: the schema that checks it, and its TOML form.

A protocol file is TOML (Python reads it with `tomllib`; `tomli_w` formats each value written back):

    name = "CD19 CAR-T for autoimmune disease (Erlangen-style)"
    description = "..."
    planned_vein_to_vein_days = 21

    [[steps]]
    stage = 4
    position = 13
    code = "infusion"
    name = "CAR-T infusion (1 × 10⁶ CAR-T cells/kg)"
    anchor = "day0"
    offset_days = 0
    ...
    done_after = "coi-check"

    [[steps.record_fields]]
    name = "dose_per_kg"
    label = "Dose"
    type = "decimal"
    ...

Visits that record the same fields name a reusable group instead of repeating it:

    [[field_sets.visit_labs.record_fields]]
    name = "igg"
    ...

    [[steps]]
    code = "visit-month-3"
    field_sets = ["visit_labs", "safety"]

The loader expands a step's `field_sets` into its `record_fields` (the sets' fields first, in the order listed,
then the step's own); the database keeps the expanded list, a dump writes it expanded, and the content hash is
taken from the expanded steps (a file without field sets hashes as it always did).

The file has no version number: `load_protocol` always makes the next version of the protocol it names,
so the same file loaded twice makes two versions, and dump → load → dump gives the same text.

To add a protocol parameter: give `ProtocolFile` (or `StepFile`) a field and `ProtocolTemplate` (or
`StepTemplate`) a column of the same name. The loader copies every schema field to its column and the
dump reads it back, in the schema's order; a field that is a table (a dict or a pydantic model) is
written as its own `[table]`.

Problems are reported as `steps[12].offset_days: must be a whole number (line 88)`: the place in the
file (steps counted from 0, as in the file's order), what is wrong in words an administrator can act
on, and the line when it can be found.
"""

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from carclinic.errors import InvalidInput
from journeys import records
from patients.models import ConsentKind

SHIPPED_DIR = Path(__file__).resolve().parent / "protocols"

# The database's own limits (SlugField, CharField max_length), so what the schema accepts the tables can hold.
Code = Annotated[str, StringConstraints(pattern=r"^[-a-zA-Z0-9_]+$", max_length=60)]
# Far beyond any protocol (the long-term follow-up runs 15 years) and well inside date arithmetic.
MAX_DAYS = 36_500

STAGES = (1, 2, 3, 4, 5)
ANCHORS = ("leukapheresis", "day0")
RESPONSIBLE_ROLES = ("coordinator", "nurse", "physician")
MILESTONES = ("", "collection", "product_released", "infusion", "discharge")
CONSENT_KINDS = tuple(ConsentKind.values)
INDICATIONS = (
    "",
    "sle",
    "lupus_nephritis",
    "myasthenia_gravis",
    "systemic_sclerosis",
    "multiple_sclerosis",
    "myositis",
    "other",
)
FieldSetName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]

# The order a record field's keys are written in: what it is first, its limits next, its help last.
SPEC_KEY_ORDER = (
    "name",
    "label",
    "short",
    "type",
    "unit",
    "min",
    "max",
    "step",
    "per_m2",
    "max_length",
    "choices",
    "required",
    "must_be",
    "help",
)


class StepFile(BaseModel):
    """One `[[steps]]` table: the columns of a StepTemplate."""

    model_config = ConfigDict(strict=True, extra="forbid")

    stage: Literal[STAGES]
    position: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    code: Code
    name: Annotated[str, StringConstraints(min_length=1, max_length=160)]
    anchor: Literal[ANCHORS]
    offset_days: Annotated[int, Field(ge=-MAX_DAYS, le=MAX_DAYS)]
    window_before_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 0
    window_after_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 0
    grace_hours: Annotated[int, Field(ge=0, le=MAX_DAYS * 24)] = 0
    responsible_role: Literal[RESPONSIBLE_ROLES]
    required: bool = True
    milestone: Literal[MILESTONES] = ""
    done_after: Annotated[str, StringConstraints(pattern=r"^[-a-zA-Z0-9_]*$", max_length=60)] = ""
    # Signed by two different people, each with their password (chemotherapy, the COI check, the infusion).
    two_person: bool = False
    # Each spec is judged by journeys.records (spec_errors), the same judge as the admin's protocol editor.
    record_fields: list[dict[str, Any]] = []
    # The protocol's field sets this step records, expanded by `parse` into record_fields (not stored: excluded).
    field_sets: list[FieldSetName] = Field([], exclude=True)


class FieldSetFile(BaseModel):
    """One `[field_sets.<name>]` table: record fields several steps share (a visit's labs, its safety questions)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    record_fields: Annotated[list[dict[str, Any]], Field(min_length=1)]


class ProtocolFile(BaseModel):
    """A whole protocol file: the columns of a ProtocolTemplate (but its version) and its steps."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: str = ""
    indication: Literal[INDICATIONS] = ""
    planned_vein_to_vein_days: Annotated[int, Field(ge=0, le=MAX_DAYS)]
    # Days before lymphodepletion's first step by which QC must release the product ("Day 0 at risk").
    release_lead_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 1
    # Days of rest after the last lymphodepletion day before the cells may go in (infusion on day last + rest + 1).
    infusion_rest_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 2
    # false for an off-the-shelf (allogeneic) product: no leukapheresis, no step hung on its date, and the
    # infusion waits for the unit's release only. Written in a file only where false; hashed only where false.
    collection: bool = True
    # Eligibility before a journey starts: the age on the day it starts (a maximum only where the protocol has
    # one) and the consents on file and not withdrawn (issue 13: a 10-year-old started with no consent).
    minimum_age_years: Annotated[int, Field(ge=0, le=150)] = 18
    maximum_age_years: Annotated[int, Field(ge=0, le=150)] | None = None
    consents_required: list[Literal[CONSENT_KINDS]] = ["treatment"]
    # After discharge, counted from Day 0 (US CAR-T labels since June 2025: two weeks within 2 hours of the
    # centre, no driving for two weeks), and whom the patient calls: shown on the printable discharge sheet.
    proximity_restriction_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 14
    proximity_restriction_hours: Annotated[int, Field(ge=0, le=48)] = 2
    driving_restriction_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 14
    discharge_whom_to_call: Annotated[str, StringConstraints(max_length=500)] = ""
    steps: Annotated[list[StepFile], Field(min_length=1)]
    # Reusable groups of record fields; written only in files, expanded into the steps that name them.
    field_sets: dict[FieldSetName, FieldSetFile] = Field({}, exclude=True)

    @model_validator(mode="after")
    def _positions_from_order(self):
        # A hand-written file may leave positions out: the order of the steps in the file is their order.
        for index, step in enumerate(self.steps):
            if step.position is None:
                step.position = index
        return self


# --- problems -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    where: str  # "steps[12].offset_days", or "file" for the file as a whole
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" + (f" (line {self.line})" if self.line else "")


class InvalidProtocolFile(InvalidInput):
    """The file was refused; nothing was written. `problems` lists each one with its place and line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) != 1 else "1 problem"
        super().__init__(
            f"The protocol file has {count}; nothing was loaded:\n" + "\n".join(f"  {problem}" for problem in problems),
            field_errors=_field_errors(problems),
        )


def _field_errors(problems: list[Problem]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for problem in problems:
        errors.setdefault(problem.where, []).append(problem.message + (f" (line {problem.line})" if problem.line else ""))
    return errors


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "file"


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a protocol setting here (check the spelling)"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return "must be a whole number"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "string_type":
        return "must be text in quotes"
    if kind in ("list_type", "tuple_type"):
        return "must be a list"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a table"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", '"')
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return "must be letters, digits, hyphens and underscores only, like “ld-day-5”"
    if kind == "too_short":
        return "needs at least one step"
    return error["msg"][0].lower() + error["msg"][1:]


def _clean_loc(loc: tuple) -> tuple:
    # A nullable field reports its inner type as a step of the path; the field is what matters.
    return tuple(part for part in loc if part not in ("int", "str", "bool"))


# --- where in the text ----------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*("[^"]+"|[A-Za-z0-9_-]+)\s*=')


def line_numbers(text: str) -> dict[tuple, int]:
    """Where each table and key of the file starts, by its place (("steps", 12, "offset_days") → 88).

    tomllib gives no positions for valid TOML, so this follows the file's headers and keys the way
    the dump writes them (and the usual hand-written forms); a place it cannot find has no line."""
    found: dict[tuple, int] = {}
    counts: dict[tuple, int] = {}
    table: tuple = ()
    in_string, array_depth = None, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if array_depth:
            # Inside a list that spans lines (a field's choices): nothing here is a header or a key.
            array_depth += _depth_change(line)
            continue
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            names = tuple(part.strip().strip('"') for part in header.group(2).split("."))
            if header.group(1) == "[[":
                # [[steps.record_fields]] adds a field to the latest step.
                parent = _resolve(names[:-1], counts)
                key = parent + (names[-1],)
                counts[key] = counts.get(key, -1) + 1
                table = key + (counts[key],)
            else:
                table = _resolve(names, counts)
            found.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault(table + (key.group(1).strip('"'),), number)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_string = quote
            if not in_string:
                array_depth = max(0, _depth_change(rest))
    return found


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')


def _depth_change(text: str) -> int:
    bare = _STRING.sub("", text).split("#")[0]
    return bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")


def _resolve(names: tuple, counts: dict) -> tuple:
    place: tuple = ()
    for name in names:
        place += (name,)
        if place in counts:
            place += (counts[place],)
    return place


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


# --- reading --------------------------------------------------------------------------------------


def parse(text: str | bytes) -> ProtocolFile:
    """The file's protocol, checked by the schema and by journeys.records; InvalidProtocolFile if not."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidProtocolFile([Problem("file", f"is not UTF-8 text (byte {error.start})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        if found:
            message += f", column {found.group(2)}"
        raise InvalidProtocolFile(
            [Problem("file", f"is not valid TOML: {message}", int(found.group(1)) if found else None)]
        ) from None
    lines = line_numbers(text)
    try:
        protocol = ProtocolFile.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            loc = _clean_loc(item["loc"])
            problems.append(Problem(_where(loc), _message(item), _line_of(loc, lines)))
        raise InvalidProtocolFile(problems) from None
    problems = [Problem(_where(loc), message, _line_of(loc, lines)) for loc, message in _field_set_errors(protocol)]
    if not problems:
        _expand_field_sets(protocol)
        problems = [Problem(_where(loc), message, _line_of(loc, lines)) for loc, message in _protocol_errors(protocol)]
    if problems:
        raise InvalidProtocolFile(problems)
    return protocol


def _field_set_errors(protocol: ProtocolFile) -> list[tuple[tuple, str]]:
    """Each field set's fields judged where they are written, and every set a step names known."""
    errors = []
    for name, field_set in protocol.field_sets.items():
        for loc, message in _record_field_errors(0, field_set.record_fields):
            errors.append((("field_sets", name, *loc[2:]), message))
    for index, step in enumerate(protocol.steps):
        for position, name in enumerate(step.field_sets):
            if name not in protocol.field_sets:
                errors.append((("steps", index, "field_sets", position), f"no field set is named “{name}”"))
            elif name in step.field_sets[:position]:
                errors.append((("steps", index, "field_sets", position), f"“{name}” is listed twice"))
    return errors


def _expand_field_sets(protocol: ProtocolFile) -> None:
    for step in protocol.steps:
        if step.field_sets:
            shared = [spec for name in step.field_sets for spec in protocol.field_sets[name].record_fields]
            step.record_fields = [*shared, *step.record_fields]


def stored_fields(schema: type[BaseModel]) -> list[str]:
    """The schema's fields that are columns (a field set is expanded on loading, never stored)."""
    return [name for name, field in schema.model_fields.items() if not field.exclude]


def _protocol_errors(protocol: ProtocolFile) -> list[tuple[tuple, str]]:
    """What a schema of single values cannot see: codes used twice, safety orders that cannot hold,
    record fields that journeys.records refuses."""
    errors = [(loc, "contains a NUL character, which cannot be stored") for loc in _nul_places(protocol.model_dump())]
    if protocol.maximum_age_years is not None and protocol.maximum_age_years < protocol.minimum_age_years:
        errors.append((("maximum_age_years",), f"must be at least the minimum age ({protocol.minimum_age_years})"))
    if len(set(protocol.consents_required)) != len(protocol.consents_required):
        errors.append((("consents_required",), "names a consent twice"))
    first_with_code: dict[str, int] = {}
    stage_of = {}
    for index, step in enumerate(protocol.steps):
        if step.code in first_with_code:
            errors.append((("steps", index, "code"), f"“{step.code}” is already the code of steps[{first_with_code[step.code]}]"))
        else:
            first_with_code[step.code] = index
            stage_of[step.code] = step.stage
    milestone_at: dict[str, int] = {}
    for index, step in enumerate(protocol.steps):
        if not protocol.collection and step.anchor == "leukapheresis":
            errors.append((("steps", index, "anchor"), "this protocol has no collection (collection = false): use day0"))
        if not protocol.collection and step.milestone == "collection":
            errors.append((("steps", index, "milestone"), "this protocol has no collection (collection = false)"))
        if step.milestone:
            if step.milestone in milestone_at:
                errors.append(
                    (
                        ("steps", index, "milestone"),
                        f"“{step.milestone}” is already the milestone of steps[{milestone_at[step.milestone]}]",
                    )
                )
            milestone_at.setdefault(step.milestone, index)
        if step.done_after:
            if step.done_after == step.code:
                errors.append((("steps", index, "done_after"), "a step cannot wait for itself"))
            elif step.done_after not in stage_of:
                errors.append((("steps", index, "done_after"), f"no step of this protocol has the code “{step.done_after}”"))
            elif stage_of[step.done_after] > step.stage:
                errors.append((("steps", index, "done_after"), f"“{step.done_after}” belongs to a later stage"))
        errors.extend(_record_field_errors(index, step.record_fields))
    return errors


def _nul_places(value, loc: tuple = ()) -> list[tuple]:
    if isinstance(value, str):
        return [loc] if "\x00" in value else []
    if isinstance(value, dict):
        return [place for key, item in value.items() for place in _nul_places(item, loc + (key,))]
    if isinstance(value, list):
        return [place for index, item in enumerate(value) for place in _nul_places(item, loc + (index,))]
    return []


_SPEC_PREFIX = re.compile(r"^Field (\d+|“[^”]*”): ")


def _record_field_errors(index: int, specs: list[dict]) -> list[tuple[tuple, str]]:
    # Each field on its own first (its message goes to that field), leaving out what only the list can judge
    # (a computed grade reads fields before it, an override names its computed field); then the whole list.
    errors = []
    for position, spec in enumerate(specs):
        for message in records.spec_errors([spec], alone=True):
            errors.append((("steps", index, "record_fields", position), _SPEC_PREFIX.sub("", message).rstrip(".")))
    if not errors:
        # What only the whole list shows (a name used twice).
        errors.extend((("steps", index, "record_fields"), message.rstrip(".")) for message in records.spec_errors(specs))
    return errors


# --- writing --------------------------------------------------------------------------------------

HEADER = """\
# A carclinic protocol. `python manage.py load_protocol FILE` makes it the next version of the
# protocol named here (never changing a version journeys use); `dump_protocol NAME` writes one back.
# Days are counted from the anchor (negative: before); steps are listed in their order.
"""


def _literal(value) -> str:
    # A long text keeps its line breaks as lines ("""…"""), except one with a carriage return: TOML readers
    # turn CR LF inside such a string into LF, so it is written escaped and reads back exactly.
    multiline = not (isinstance(value, str) and "\r" in value)
    return tomli_w.dumps({"v": value}, multiline_strings=multiline)[len("v = ") :].rstrip("\n")


def _key(name: str) -> str:
    return tomli_w.dumps({name: 0})[: -len(" = 0\n")]


def _lines(table: dict) -> list[str]:
    out = []
    for key, value in table.items():
        if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
            # A choice list: one choice a line, its parts side by side, so a diff shows the choice that changed.
            out.append(f"{_key(key)} = [")
            out.extend(f"  [{', '.join(_literal(part) for part in item)}]," for item in value)
            out.append("]")
        elif isinstance(value, dict):
            # A record field's `computed`, `override` or `alert`: one inline table a line, as a clinic writes it.
            out.append(f"{_key(key)} = {_inline(value)}")
        else:
            out.append(f"{_key(key)} = {_inline(value)}")
    return out


def _inline(value) -> str:
    """A value on one line; a table (a computed field's `computed`) as an inline table, so it stays with its field."""
    if isinstance(value, dict):
        # Keys sorted: the database's JSON gives them back in its own order, and a dump must not depend on it.
        return "{ " + ", ".join(f"{_key(key)} = {_inline(value[key])}" for key in sorted(value)) + " }"
    if isinstance(value, list):
        # One line, the way a clinic writes a short list (consents_required = ["treatment"]).
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return _literal(value)


def _spec_in_order(spec: dict) -> dict:
    ordered = {key: spec[key] for key in SPEC_KEY_ORDER if key in spec}
    ordered.update({key: spec[key] for key in sorted(spec) if key not in ordered})
    return ordered


def _omit_empty(table: dict, keys: tuple) -> dict:
    return {key: value for key, value in table.items() if not (key in keys and value in ("", [], None))}


def to_toml(document: dict) -> str:
    """The protocol `document` (ProtocolFile.model_dump's shape) as the text of a protocol file.

    The layout is fixed (the schema's order, one key a line, empty optional keys left out), so that the
    text of two versions diffs line by line and dump → load → dump gives the same text."""
    document = dict(document)
    steps = document.pop("steps")
    scalars = {k: v for k, v in _in_schema_order(document, ProtocolFile).items() if not isinstance(v, dict)}
    tables = {k: v for k, v in _in_schema_order(document, ProtocolFile).items() if isinstance(v, dict)}
    if scalars.get("collection") is True:
        scalars.pop("collection")  # written only where false, like a step's two_person
    out = [HEADER.rstrip("\n"), *_lines(_omit_empty(scalars, ("indication", "maximum_age_years", "discharge_whom_to_call")))]
    for key, table in tables.items():
        out += ["", f"[{_key(key)}]", *_lines(table)]
    for step in sorted(steps, key=step_order):
        step = _in_schema_order(step, StepFile)
        fields = step.pop("record_fields", [])
        if step.get("two_person") is False:
            step.pop("two_person")  # written only where it is true
        out += ["", "[[steps]]", *_lines(_omit_empty(step, ("milestone", "done_after")))]
        for spec in fields:
            out += ["", "[[steps.record_fields]]", *_lines(_spec_in_order(spec))]
    return "\n".join(out) + "\n"


def _in_schema_order(table: dict, schema: type[BaseModel]) -> dict:
    ordered = {key: table[key] for key in stored_fields(schema) if key in table}
    ordered.update({key: table[key] for key in table if key not in ordered})
    return ordered


def step_order(step: dict) -> tuple:
    """The order steps are listed in (a dump, the hash): StepTemplate's own ordering, then the code."""
    return (step["stage"], step["position"], step["offset_days"], step["code"])


def content_hash(document: dict) -> str:
    """SHA-256 of a protocol's content (every field, in a canonical JSON form, the steps in `step_order`):
    two versions with the same hash schedule and record the same things."""
    document = {**document, "steps": sorted(document["steps"], key=step_order)}
    if document.get("collection") is True:
        # Every protocol before the flag collected cells: theirs hash as they always did (no new version on migrate).
        del document["collection"]
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def shipped_files() -> list[Path]:
    """The protocols carclinic ships, loaded on `migrate` (journeys.apps)."""
    return sorted(SHIPPED_DIR.glob("*.toml"))
