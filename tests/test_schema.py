"""`specc schema` agrees with the validator: what one accepts the other accepts, at type level.

Editors validate specs with the schema (yaml-language-server), so a disagreement is a false
error in the editor or a silent one. Checked on every spec in specs/, the goldens and
tests/fixtures/valid (accepted by both), tests/fixtures/type-errors (refused by both), and on
generated documents and mutations of them.
"""

from __future__ import annotations

import copy
import functools
import json

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import validator
from compiler.cli import main
from compiler.loader import load_file
from conftest import REPO
from test_properties import specs

FIXTURES = REPO / "tests" / "fixtures"
VALID = sorted((REPO / "specs").glob("*.yaml")) + sorted((REPO / "tests" / "golden").glob("*/spec.yaml")) \
    + sorted((FIXTURES / "valid").glob("*.yaml"))
TYPE_ERRORS = sorted((FIXTURES / "type-errors").glob("*.yaml"))


@functools.cache
def schema_validator() -> jsonschema.Draft202012Validator:
    from compiler.schema import json_schema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_accepts(data) -> bool:
    return schema_validator().is_valid(data)


def validator_accepts(data) -> bool:
    try:
        validator.validate(data)
    except validator.validation_error():
        return False
    return True


def test_schema_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(schema_validator().schema))
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.relative_to(REPO).as_posix())
def test_valid_specs_pass_the_schema(path):
    data = load_file(path).data
    assert validator_accepts(data)
    errors = [e.message for e in schema_validator().iter_errors(data)]
    assert errors == []


@pytest.mark.parametrize("path", TYPE_ERRORS, ids=lambda p: p.name)
def test_type_errors_fail_the_schema(path):
    data = load_file(path).data
    assert not validator_accepts(data), "the fixture must hold a type-level error"
    assert not schema_accepts(data)


def test_there_are_fixtures_of_every_kind():
    assert len(TYPE_ERRORS) >= 20 and len(VALID) >= 15


# Type-level mutations: (where, value). Each is refused by the validator.
_BAD_VALUES = st.sampled_from([
    2.5, "2", True, None, [], {}, -1, 0, float("nan"), float("inf"), "x" * 5000, "a\nb", " lead", "trail ",
])


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


@settings(max_examples=int(__import__("os").environ.get("SPECC_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs(), st.data())
def test_schema_and_validator_agree_on_mutations(doc, data):
    """Replace any value, or add any key, anywhere: the schema accepts exactly when the validator does."""
    doc = copy.deepcopy(doc)
    assert validator_accepts(doc) and schema_accepts(doc)
    paths = list(_paths(doc))
    where = data.draw(st.sampled_from(paths))
    parent = doc
    for part in where[:-1]:
        parent = parent[part]
    if data.draw(st.booleans()):
        parent[where[-1]] = data.draw(_BAD_VALUES)
    elif isinstance(parent, dict):
        parent[data.draw(st.sampled_from(["bogus", "Worker", "worker", "a b", "x\n", "env", "count"]))] = data.draw(_BAD_VALUES)
    assert validator_accepts(doc) == schema_accepts(doc), (where, doc)


def test_every_field_has_a_description():
    """Editors show descriptions; the field reference needs them (and examples) for every field."""
    schema = schema_validator().schema
    missing = [f"{name}.{field}" for name, d in schema["$defs"].items() for field, fs in d.get("properties", {}).items()
               if "description" not in fs and name != "PodTemplate"]
    missing += [f"{name} (model)" for name, d in schema["$defs"].items() if "description" not in d]
    assert missing == []


def test_the_field_reference_is_current():
    """docs/spec-reference.md is what `python -m compiler.reference` writes today."""
    from compiler import reference

    text, missing = reference.build()
    assert missing == [], missing
    assert reference.REFERENCE.read_text(encoding="utf-8") == text, "run: python -m compiler.reference"
    assert "| `spec.podTemplate.spec` |" in text and "| `spec.replicas.<Type>.count` |" in text
