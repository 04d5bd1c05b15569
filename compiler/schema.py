"""`specc schema`: the spec's JSON Schema (Draft 2020-12) for editors (yaml-language-server).

pydantic writes it from the models; these adjustments make it refuse what the validator refuses
at type level, as JSON Schema tools read it:
- keys with a pattern (`patternProperties` to pydantic) become `propertyNames`, so other keys
  are refused instead of allowed;
- `$` in a pattern ends the text only: in Python's `re` (used by the `jsonschema` package) it
  also matches before a final line break, so `$(?!\\n)` is written;
- JSON has no NaN, but a YAML `.nan` reaches a validator as one and passes every numeric
  bound; `not: {exclusiveMinimum: 0, exclusiveMaximum: 0}` refuses exactly NaN;
- a podTemplate's `spec` is the pinned Kubernetes PodSpec schema (compiler/podtemplate.py) that
  specc checks it against, so editors complete and check it too.
"""

from __future__ import annotations

SCHEMA_ID = "https://specc.dev/schemas/trainingjob-v1alpha1.json"


def json_schema() -> dict:
    """The TrainingJob JSON Schema."""
    from compiler.spec import TrainingJob

    from compiler.podtemplate import fragment_schema

    schema = TrainingJob.model_json_schema()
    _adjust(schema)
    pod_spec = fragment_schema()["properties"]["spec"]
    field = schema["$defs"]["PodTemplate"]["properties"]["spec"]
    for option in field.get("anyOf", []):
        if option.get("type") == "object":
            option.clear()
            option.update(pod_spec)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return schema


def _adjust(node) -> None:
    if isinstance(node, list):
        for v in node:
            _adjust(v)
        return
    if not isinstance(node, dict):
        return
    for v in node.values():
        _adjust(v)
    if isinstance(node.get("pattern"), str):
        node["pattern"] = _end_of_text(node["pattern"])
    props = node.pop("patternProperties", None)
    if props:
        (pattern, value), = props.items()
        node["propertyNames"] = {"pattern": _end_of_text(pattern)}
        node["additionalProperties"] = value
    if node.get("type") == "number":
        node["not"] = {"exclusiveMinimum": 0, "exclusiveMaximum": 0}


def _end_of_text(pattern: str) -> str:
    if pattern.endswith("$") and not pattern.endswith("\\$") and not pattern.endswith("(?!\\n)"):
        return pattern + "(?!\\n)"
    return pattern
