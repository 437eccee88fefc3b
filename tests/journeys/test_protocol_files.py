"""Protocols as data files: the shipped file equals what the old migrations made, the schema refuses a bad
file by place and line, load always makes a new version, dump → load → dump gives the same text, and
`migrate` loads the shipped file once."""

import io
import json
from datetime import date
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from carclinic.errors import NotPermitted
from journeys import protocol_files, selectors
from journeys.models import Journey, ProtocolTemplate, StepTemplate
from journeys.protocol_files import InvalidProtocolFile, content_hash, parse, to_toml
from journeys.services import SYSTEM, journey_start, protocol_load, protocol_load_shipped, protocol_new_version
from tests.journeys import legacy_default_protocol as legacy

SHIPPED = protocol_files.SHIPPED_DIR / "cd19-car-t-autoimmune.toml"
NAME = "CD19 CAR-T for autoimmune disease (Erlangen-style)"
PROTOCOL_FIELDS = ("name", "version", "description", "indication", "planned_vein_to_vein_days", "is_active")
STEP_FIELDS = (
    "stage",
    "code",
    "name",
    "anchor",
    "offset_days",
    "window_before_days",
    "window_after_days",
    "grace_hours",
    "responsible_role",
    "required",
    "milestone",
    "position",
    "done_after",
    "record_fields",
)


def _snapshot(protocol: ProtocolTemplate) -> tuple[dict, dict[str, dict]]:
    return (
        {field: getattr(protocol, field) for field in PROTOCOL_FIELDS},
        {step.code: {field: getattr(step, field) for field in STEP_FIELDS} for step in protocol.step_templates.all()},
    )


def _shipped_text() -> str:
    return SHIPPED.read_text(encoding="utf-8")


def _counts() -> tuple:
    return (
        ProtocolTemplate.objects.count(),
        StepTemplate.objects.count(),
        ProtocolTemplate.history.count(),
        StepTemplate.history.count(),
    )


# --- nothing clinical lost in the move ----------------------------------------------------------------


# The shipped file as the move from migrations to files wrote it; the shipped file has changed since (the
# lymphodepletion sheet, two-person steps), which existing databases receive as a new version.
FIRST_SHIPPED = Path(__file__).parent / "first_shipped_protocol.toml"


def test_the_first_shipped_file_equals_what_the_old_migrations_made_field_by_field(db):
    ProtocolTemplate.objects.filter(name=NAME).delete()
    from_file = protocol_load(actor=SYSTEM, text=FIRST_SHIPPED.read_text(), source=str(FIRST_SHIPPED))
    file_protocol, file_steps = _snapshot(from_file)
    from_file.delete()

    legacy.apply(django_apps)  # 0003 + 0005 + 0006 as they were, on the same database
    made = ProtocolTemplate.objects.get(name=NAME, version=1)
    made_protocol, made_steps = _snapshot(made)

    assert file_protocol == made_protocol
    assert list(file_steps) == list(made_steps) and len(made_steps) == 47
    for code, fields in made_steps.items():
        for field, value in fields.items():
            assert file_steps[code][field] == value, f"{code}.{field}"
    # The two safety rules 0006 added in place are in the file.
    assert made_steps["infusion"]["done_after"] == "coi-check"
    assert {"name": "coi_match", "must_be": True}.items() <= made_steps["coi-check"]["record_fields"][0].items()
    assert sum(len(fields["record_fields"]) for fields in made_steps.values()) == 176


def test_the_shipped_file_is_the_dump_of_its_version_with_comments_and_field_sets(protocol):
    dumped = io.StringIO()
    call_command("dump_protocol", NAME, "--version", "1", stdout=dumped)
    # The dump writes each step's fields expanded; the file names stage 5's field sets instead: the same content.
    assert parse(dumped.getvalue()).model_dump(mode="json") == parse(_shipped_text()).model_dump(mode="json")
    without_comments = [line for line in _shipped_text().splitlines() if not line.startswith("#")]
    first_set = next(index for index, line in enumerate(without_comments) if line.startswith("field_sets = "))
    dumped_lines = [line for line in dumped.getvalue().splitlines() if not line.startswith("#")]
    # Up to the first step that names a field set, the file is the dump line by line.
    assert dumped_lines[:first_set] == without_comments[:first_set]


# --- migrate ----------------------------------------------------------------------------------------


def test_migrate_loaded_the_shipped_protocol_once_as_active_version_1(protocol):
    assert (protocol.name, protocol.version, protocol.is_active) == (NAME, 1, True)
    assert protocol.content_hash == content_hash(parse(_shipped_text()).model_dump(mode="json"))
    assert protocol.content_hash == content_hash(selectors.protocol_document(protocol))
    assert protocol_load_shipped() == []
    emit_post_migrate_signal(0, False, "default")  # what `flush` and every `migrate` send
    assert list(ProtocolTemplate.objects.filter(name=NAME).values_list("version", flat=True)) == [1]


def test_the_post_migrate_handler_loads_the_shipped_protocol_into_an_emptied_database(db):
    ProtocolTemplate.objects.filter(name=NAME).delete()
    emit_post_migrate_signal(0, False, "default")
    assert ProtocolTemplate.objects.get(name=NAME).version == 1


def test_an_old_database_keeps_its_version_1_and_gets_todays_shipped_file_once_as_a_new_version(db):
    ProtocolTemplate.objects.filter(name=NAME).delete()
    legacy.apply(django_apps)
    old = ProtocolTemplate.objects.get(name=NAME)
    assert old.content_hash == ""  # made before the hash existed

    [created] = protocol_load_shipped()

    old.refresh_from_db()
    # Its rows are the first shipped file's, so its hash is that file's; today's file differs and is version 2.
    assert old.content_hash == content_hash(parse(FIRST_SHIPPED.read_text()).model_dump(mode="json"))
    assert (created.version, created.is_active) == (2, False)
    assert created.content_hash == content_hash(parse(_shipped_text()).model_dump(mode="json"))
    assert protocol_load_shipped() == []  # the next migrate adds nothing


def test_a_changed_shipped_file_becomes_a_new_inactive_version_and_the_used_one_stays(journey, protocol):
    # As if the next release changed the shipped default: version 1 (locked, in use) now differs from it.
    StepTemplate.objects.filter(protocol=protocol, code="shipment").update(grace_hours=48)
    ProtocolTemplate.objects.filter(pk=protocol.pk).update(content_hash="")
    before = _snapshot(protocol)

    [created] = protocol_load_shipped()

    assert (created.version, created.is_active) == (2, False)
    assert created.step_templates.get(code="shipment").grace_hours == 12
    protocol.refresh_from_db()
    assert _snapshot(protocol) == before and protocol.is_locked
    assert Journey.objects.get(pk=journey.pk).protocol_id == protocol.pk


# --- load_protocol ------------------------------------------------------------------------------------


def test_load_protocol_makes_the_next_version_and_never_touches_a_locked_one(journey, protocol, tmp_path):
    before = _snapshot(protocol)
    path = tmp_path / "ours.toml"
    path.write_text(_shipped_text().replace("grace_hours = 168", "grace_hours = 240"), encoding="utf-8")
    out = io.StringIO()

    call_command("load_protocol", str(path), stdout=out)

    assert out.getvalue().startswith(f"Created {NAME} v2 (54 steps, inactive: activate it in admin")
    new = ProtocolTemplate.objects.get(name=NAME, version=2)
    assert not new.is_active and new.step_templates.get(code="ltfu-year-2").grace_hours == 240
    protocol.refresh_from_db()
    assert _snapshot(protocol) == before
    assert Journey.objects.get(pk=journey.pk).protocol_id == protocol.pk

    call_command("load_protocol", str(path), "--activate", stdout=(again := io.StringIO()))
    assert "v3" in again.getvalue() and "Same content as version 2." in again.getvalue()
    assert ProtocolTemplate.objects.get(name=NAME, version=3).is_active


def test_the_first_version_of_a_new_protocol_is_active(db, tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    call_command("load_protocol", str(path), stdout=io.StringIO())
    short = ProtocolTemplate.objects.get(name="Short protocol")
    assert (short.version, short.is_active, short.step_templates.get().position) == (1, True, 0)


MINIMAL = """\
name = "Short protocol"
planned_vein_to_vein_days = 14

[[steps]]
stage = 1
code = "collect"
name = "Collection"
anchor = "leukapheresis"
offset_days = 0
responsible_role = "nurse"
milestone = "collection"
"""


def _line(text: str, needle: str, nth: int = 1) -> int:
    found = [number for number, line in enumerate(text.splitlines(), start=1) if line == needle]
    return found[nth - 1]


SHIPPED_TEXT = _shipped_text()


# (what to change in the shipped file, the problem reported, and the line it names: the nth line equal
# to `at`, moved by `delta` when the place is the table above it)
@pytest.mark.parametrize(
    "old, new, problem, at, nth, delta",
    [
        (
            "offset_days = -4\n",
            "offset_days = -4.5\n",
            "steps[9].offset_days: must be a whole number",
            "offset_days = -4.5",
            1,
            0,
        ),
        (
            'anchor = "day0"\n',
            'anchor = "Day 0"\n',
            'steps[6].anchor: must be one of "leukapheresis" or "day0"',
            'anchor = "Day 0"',
            1,
            0,
        ),
        (
            "grace_hours = 24\n",
            "grace_hours = 24\ngrace_days = 1\n",
            "steps[0].grace_days: is not a protocol setting here (check the spelling)",
            "grace_days = 1",
            1,
            0,
        ),
        ("required = true\n", 'required = "yes"\n', "steps[0].required: must be true or false", 'required = "yes"', 1, 0),
        (
            'done_after = "coi-check"\n',
            'done_after = "coi-chek"\n',
            "steps[13].done_after: no step of this protocol has the code “coi-chek”",
            'done_after = "coi-chek"',
            1,
            0,
        ),
        (
            'code = "ld-day-4"\n',
            'code = "ld-day-5"\n',
            "steps[9].code: “ld-day-5” is already the code of steps[8]",
            'code = "ld-day-5"',
            2,
            0,
        ),
        (
            'milestone = "infusion"\n',
            'milestone = "collection"\n',
            "steps[13].milestone: “collection” is already the milestone of steps[2]",
            'milestone = "collection"',
            2,
            0,
        ),
        ("min = 34\n", "min = 44\n", "field_sets.bedside.record_fields[0]: min is greater than max", "min = 44", 1, -6),
        (
            'name = "coi_match"\n',
            'name = "coi_match"\nmin = 1\n',
            "steps[12].record_fields[0]: min, max, step and per_m2 are for numbers only",
            'name = "coi_match"',
            1,
            -1,
        ),
        (
            "planned_vein_to_vein_days = 21\n",
            "planned_vein_to_vein_days = -21\n",
            "planned_vein_to_vein_days: must be at least 0",
            "planned_vein_to_vein_days = -21",
            1,
            0,
        ),
        ("stage = 5\n", "stage = 6\n", "steps[30].stage: must be one of 1, 2, 3, 4 or 5", "stage = 6", 1, 0),
        (
            "position = 3\n",
            "position = 3\nposition = 4\n",
            "file: is not valid TOML: Cannot overwrite a value, column 13",
            "position = 4",
            1,
            0,
        ),
    ],
)
def test_an_invalid_file_is_refused_by_place_and_line_and_nothing_is_written(db, tmp_path, old, new, problem, at, nth, delta):
    text = SHIPPED_TEXT.replace(old, new, 1)
    assert text != SHIPPED_TEXT
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    before = _counts()

    with pytest.raises(CommandError) as refused:
        call_command("load_protocol", str(path), stdout=io.StringIO())

    assert f"  {problem} (line {_line(text, at, nth) + delta})" in str(refused.value).splitlines()
    assert _counts() == before


def test_the_service_refuses_a_file_with_every_problem_keyed_by_its_place(db):
    text = MINIMAL.replace("offset_days = 0", 'offset_days = "0"').replace('anchor = "leukapheresis"\n', "")
    with pytest.raises(InvalidProtocolFile) as refused:
        protocol_load(actor=SYSTEM, text=text)
    assert refused.value.field_errors == {
        "steps[0].anchor": ["is required (line 4)"],
        "steps[0].offset_days": ["must be a whole number (line 8)"],
    }
    assert [str(problem) for problem in refused.value.problems] == [
        "steps[0].anchor: is required (line 4)",
        "steps[0].offset_days: must be a whole number (line 8)",
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "steps: is required"),
        ('name = "x"\nplanned_vein_to_vein_days = 1\nsteps = []\n', "steps: needs at least one step (line 3)"),
        (b'name = "\xff"\n', "file: is not UTF-8 text (byte 8)"),
        (
            MINIMAL.replace('name = "Collection"', 'name = "Coll\\u0000ection"'),
            "steps[0].name: contains a NUL character, which cannot be stored (line 7)",
        ),
    ],
)
def test_whole_file_problems(db, text, problem):
    with pytest.raises(InvalidProtocolFile) as refused:
        parse(text)
    assert problem in [str(p) for p in refused.value.problems]


def test_only_an_administrator_or_the_system_loads_a_protocol(db, coordinator, superuser):
    with pytest.raises(NotPermitted):
        protocol_load(actor=coordinator, text=MINIMAL)
    assert not ProtocolTemplate.objects.filter(name="Short protocol").exists()

    by_admin = protocol_load(actor=superuser, text=MINIMAL, source="short.toml")
    by_system = protocol_load(actor=SYSTEM, text=MINIMAL)
    assert [by_admin.version, by_system.version] == [1, 2]
    assert by_admin.history.get().history_user == superuser
    assert by_admin.history.get().history_change_reason == "Loaded from short.toml"
    assert by_system.history.get().history_user is None
    assert StepTemplate.history.filter(protocol_id=by_admin.pk).get().history_user == superuser


def test_load_protocol_as_a_named_user_checks_that_users_role(db, coordinator, tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(CommandError, match="Your role does not allow this"):
        call_command("load_protocol", str(path), "--as", coordinator.username, stdout=io.StringIO())


# --- dump_protocol and round trips -----------------------------------------------------------------------


def test_dump_load_dump_gives_the_same_text(protocol, tmp_path):
    first = tmp_path / "first.toml"
    call_command("dump_protocol", NAME, "--output", str(first), stderr=io.StringIO())
    call_command("load_protocol", str(first), stdout=io.StringIO())
    second = io.StringIO()
    call_command("dump_protocol", NAME, stdout=second)  # the latest: version 2
    assert second.getvalue() == first.read_text(encoding="utf-8")
    assert ProtocolTemplate.objects.get(name=NAME, version=2).content_hash == protocol.content_hash


def test_dump_of_an_unknown_protocol_names_the_ones_there_are(protocol):
    with pytest.raises(CommandError, match=r"There is no version 9 of “CD19.*Protocols: “CD19"):
        call_command("dump_protocol", NAME, "--version", "9")


def test_a_new_version_made_in_admin_keeps_the_hash_and_an_edit_in_admin_renews_it(client, superuser, protocol):
    copy = protocol_new_version(actor=superuser, protocol_id=protocol.id)
    assert copy.content_hash == protocol.content_hash
    client.force_login(superuser)
    steps = list(copy.step_templates.order_by("id"))
    data = {
        "name": copy.name,
        "version": copy.version,
        "description": "Our own",
        "indication": "",
        "planned_vein_to_vein_days": 28,
        "release_lead_days": 1,
        "infusion_rest_days": 2,
        "minimum_age_years": 18,
        "consents_required": '["treatment"]',
        "proximity_restriction_days": 14,
        "proximity_restriction_hours": 2,
        "driving_restriction_days": 14,
        "step_templates-TOTAL_FORMS": len(steps),
        "step_templates-INITIAL_FORMS": len(steps),
        "step_templates-MIN_NUM_FORMS": 0,
        "step_templates-MAX_NUM_FORMS": 1000,
    }
    for index, step in enumerate(steps):
        row = {
            "id": step.pk,
            "protocol": copy.pk,
            "position": step.position,
            "stage": step.stage,
            "code": step.code,
            "name": step.name,
            "anchor": step.anchor,
            "offset_days": step.offset_days,
            "window_before_days": step.window_before_days,
            "window_after_days": step.window_after_days,
            "grace_hours": step.grace_hours,
            "responsible_role": step.responsible_role,
            "milestone": step.milestone,
            "done_after": step.done_after,
            "record_fields": json.dumps(step.record_fields),
        }
        if step.required:
            row["required"] = "on"
        if step.two_person:
            row["two_person"] = "on"
        data.update({f"step_templates-{index}-{key}": value for key, value in row.items()})
    response = client.post(reverse("admin:journeys_protocoltemplate_change", args=[copy.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    copy.refresh_from_db()
    assert copy.planned_vein_to_vein_days == 28
    assert copy.content_hash == content_hash(selectors.protocol_document(copy)) != protocol.content_hash
    assert client.get(reverse("admin:journeys_protocoltemplate_change", args=[protocol.pk])).status_code == 200


def test_a_journey_starts_on_a_loaded_version(coordinator, patient, superuser):
    loaded = protocol_load(
        actor=superuser,
        text=SHIPPED_TEXT.replace("planned_vein_to_vein_days = 21", "planned_vein_to_vein_days = 28"),
        activate=True,
    )
    journey = journey_start(actor=coordinator, patient_id=patient.id, protocol_id=loaded.id, leukapheresis_date=date(2026, 3, 2))
    assert journey.day0_planned == date(2026, 3, 30) and journey.steps.count() == 54


# --- where a problem is: the line finder on hand-written forms -------------------------------------------


def test_lines_are_found_past_comments_quoted_keys_and_strings_that_look_like_tables():
    text = '''\
# a comment [[steps]]
name = "Hand-written"   # trailing comment
description = """
[[steps]]
offset_days = 99
"""
planned_vein_to_vein_days = 21

[[ steps ]]
"stage" = 1
choices = [
  ["a", "A [x]"]
]
offset_days = 1

[[steps]]
stage = 2

[[steps.record_fields]]
name = "x"

[[steps.record_fields]]
min = 3
'''
    lines = protocol_files.line_numbers(text)
    assert lines[("name",)] == 2 and lines[("planned_vein_to_vein_days",)] == 7
    assert lines[("steps", 0)] == 9 and lines[("steps", 0, "stage")] == 10 and lines[("steps", 0, "offset_days")] == 14
    assert lines[("steps", 1, "stage")] == 17
    assert lines[("steps", 1, "record_fields", 1, "min")] == 23
    assert ("steps", 2) not in lines


# --- round trips of any protocol -------------------------------------------------------------------------

text_values = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
labels = text_values.filter(lambda value: value.strip())
codes = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
record_field = st.one_of(
    st.builds(
        lambda name, label, low, span, step: {
            "name": name,
            "label": label,
            "type": "decimal",
            "unit": "mg",
            "min": low,
            "max": low + span,
            "step": step,
        },
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        labels,
        st.integers(-100, 100),
        st.integers(0, 1000),
        st.sampled_from([0.1, 0.01, 1]),
    ),
    st.builds(
        lambda name, label, choices, required: {
            "name": name,
            "label": label,
            "type": "choice",
            "choices": choices,
            "required": required,
        },
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        labels,
        st.lists(st.tuples(codes, labels).map(list), min_size=1, max_size=4, unique_by=lambda c: c[0]),
        st.booleans(),
    ),
    st.builds(
        lambda name, label, help_text: {"name": name, "label": label, "type": "text", "help": help_text},
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
        labels,
        text_values,
    ),
)
step = st.fixed_dictionaries(
    {
        "stage": st.integers(1, 5),
        "position": st.integers(0, 50),
        "name": labels.map(lambda s: s[:160]),
        "anchor": st.sampled_from(["leukapheresis", "day0"]),
        "offset_days": st.integers(-400, 6000),
        "window_before_days": st.integers(0, 30),
        "window_after_days": st.integers(0, 30),
        "grace_hours": st.integers(0, 200),
        "responsible_role": st.sampled_from(["nurse", "coordinator", "physician"]),
        "required": st.booleans(),
        "milestone": st.just(""),
        "done_after": st.just(""),
        "two_person": st.booleans(),
        "record_fields": st.lists(record_field, max_size=3, unique_by=lambda spec: spec["name"]),
    }
)
documents = st.builds(
    lambda name, description, days, lead, steps, step_codes, oldest, consents: {
        "name": name,
        "description": description,
        "indication": "",
        "planned_vein_to_vein_days": days,
        "release_lead_days": lead,
        "infusion_rest_days": 2,
        "collection": True,
        "minimum_age_years": 18,
        "maximum_age_years": oldest,
        "consents_required": consents,
        "proximity_restriction_days": 14,
        "proximity_restriction_hours": 2,
        "driving_restriction_days": 14,
        "discharge_whom_to_call": description[:500],
        "steps": sorted(
            ({**one, "code": code} for one, code in zip(steps, step_codes, strict=False)), key=protocol_files.step_order
        ),
    },
    labels.map(lambda s: s[:120]),
    text_values,
    st.integers(0, 60),
    st.integers(0, 14),
    st.lists(step, min_size=1, max_size=5),
    st.lists(codes, min_size=5, max_size=5, unique=True),
    st.one_of(st.none(), st.integers(18, 120)),
    st.lists(st.sampled_from(["treatment", "study", "samples", "data_sharing"]), unique=True),
)


CARRIAGE_RETURNS = {  # found by hypothesis: TOML readers turn CR LF inside a """…""" string into LF
    "name": "x",
    "description": "a\r\nb\nc\r",
    "indication": "",
    "planned_vein_to_vein_days": 1,
    "release_lead_days": 1,
    "infusion_rest_days": 2,
    "collection": True,
    "minimum_age_years": 18,
    "maximum_age_years": None,
    "consents_required": ["treatment"],
    "proximity_restriction_days": 14,
    "proximity_restriction_hours": 2,
    "driving_restriction_days": 14,
    "discharge_whom_to_call": "",
    "steps": [
        dict(
            stage=1,
            position=0,
            code="a",
            name="0\r\n",
            anchor="day0",
            offset_days=0,
            window_before_days=0,
            window_after_days=0,
            grace_hours=0,
            responsible_role="nurse",
            required=True,
            milestone="",
            done_after="",
            two_person=False,
            record_fields=[],
        )
    ],
}


@given(documents)
@example(CARRIAGE_RETURNS)
@settings(max_examples=60, deadline=None)
def test_any_protocol_written_reads_back_the_same(document):
    text = to_toml(document)
    parsed = parse(text).model_dump(mode="json")
    assert parsed == document
    assert to_toml(parsed) == text


@given(documents)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_protocol_loaded_dumps_as_it_was_written(db, document):
    text = to_toml(document)
    with transaction.atomic():
        loaded = protocol_load(actor=SYSTEM, text=text)
        assert to_toml(selectors.protocol_document(loaded)) == text
        assert loaded.content_hash == content_hash(selectors.protocol_document(loaded))
        transaction.set_rollback(True)
