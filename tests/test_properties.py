"""Hypothesis properties of the compiler.

- every accepted spec renders schema-valid output, twice to the same bytes;
- names stay DNS-safe and pods fit 63 characters;
- no string value (newlines, `---`, `: `, `#`, `{{ }}`, YAML tags, anchors, unicode line
  separators...) can add, remove or reshape a key: the emitted YAML parses back (YAML 1.1 and
  1.2 parsers) to exactly the compiled objects;
- near-miss mutations of valid specs are rejected with located errors;
- any input text either loads and validates or gets located diagnostics, never a crash.

CI runs a few hundred examples; `-m slow` runs thousands (SPECC_FUZZ_EXAMPLES overrides).
"""

from __future__ import annotations

import io
import json
import os
import re

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from compiler.compile import compile_job
from compiler.diagnostics import SpecError
from compiler.emit import dump
from compiler.loader import load_text
from compiler.render import render_files, render_stream
from compiler.validate import validate
from k8s_schemas import validate_object

FAST = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "60"))
SLOW = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "3000"))
COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Text that tries to break out of a YAML scalar.
NASTY = [
    "\n---\nkind: Secret\n", "a: b", "# comment", "{{ .Values.x }}", "{% raw %}", "!!python/object:os.system",
    "&anchor", "*alias", "key: value\n  nested: true", "\u2028next", "\u2029", "\x85", "- item", "? complex",
    "'single'", '"double"', "|", ">", "@at", "`tick`", "%TAG", "yes", "NO", "null", "~", "0x1F", "1e3", "0o17",
    ".inf", "2024-01-01", "   leading", "trailing   ", "\ttab", "line1\nline2\n", "\ufeffbom",
    "日本語", "emoji 🙂", "",
]
_core_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(exclude_categories=("Cs",), codec="utf-8",
                          exclude_characters=[chr(c) for c in range(0, 32) if c not in (9, 10)] + ["\x7f"]), max_size=40),
)
# Leading and trailing whitespace and line breaks of every kind YAML 1.1 or 1.2 knows.
# (Spec text refuses control characters but tabs and line feeds, so "\r" only reaches the writer.)
EDGES = ["", " ", "  ", "\t", "\n", "\n\n", " \n", "\n ", "\x85", "\u2028", "\u2029", "\u00a0", "\ufeff"]
text = st.one_of(_core_text, st.builds(lambda a, t, b: a + t + b, st.sampled_from(EDGES), _core_text, st.sampled_from(EDGES)))
# Any string at all (control characters included): what the YAML writer must carry for keys and values.
_edge = st.sampled_from(EDGES + ["\r", "\r\n", "\x00", "\x1b", "\x7f"])
any_text = st.one_of(text, st.text(max_size=12), st.builds(lambda a, t, b: a + t + b, _edge, st.text(max_size=8), _edge))
dns = st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True)
quantity = st.sampled_from(["100m", "1", "2", "1.5", "512Mi", "4Gi"])


@st.composite
def specs(draw) -> dict:
    """Valid spec documents across frameworks, with hostile strings wherever strings go."""
    framework = draw(st.sampled_from(["tensorflow", "pytorch", "xgboost", "jax", "paddle", "sklearn", "python"]))
    builtin = framework in ("tensorflow", "pytorch", "sklearn") and draw(st.booleans())
    spec: dict = {"framework": framework}
    if builtin:
        if framework == "sklearn":
            spec["trainer"] = {"name": "income", "data_uri": "/data/adult.data", "export_uri": "/models/income/1/",
                               "n_estimators": draw(st.integers(1, 500))}
        else:
            spec["trainer"] = {"name": "mnist", "data_dir": "/data/mnist/", "export_uri": "/models/m/1/",
                               "learning_rate": draw(st.floats(1e-5, 1.0)), "batch_size": draw(st.integers(1, 512))}
    else:
        spec["container"] = {"image": draw(st.sampled_from(["busybox:1.36", "registry.io/team/img:v1", "python:3.11.7-slim"])),
                             "command": draw(st.lists(text, max_size=3)), "args": draw(st.lists(text, max_size=3))}
    if framework == "tensorflow":
        types = draw(st.sets(st.sampled_from(["Chief", "PS", "Worker", "Evaluator"]), min_size=1))
    elif framework == "pytorch" and not builtin and draw(st.booleans()):
        spec["elasticPolicy"] = {"minReplicas": 1, "maxReplicas": draw(st.integers(1, 8)), "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                         "averageUtilization": draw(st.integers(1, 100))}}}]}
        types = draw(st.sampled_from([{"Worker"}, {"Master", "Worker"}]))
    elif framework in ("pytorch", "xgboost"):
        types = {"Master", "Worker"}
    elif framework == "paddle":
        types = draw(st.sampled_from([{"Worker"}, {"Master", "Worker"}]))
    else:
        types = {"Worker"}
    replicas = {}
    for t in sorted(types):
        count = 1 if t in ("Chief", "Master") or framework in ("sklearn", "python") else draw(st.integers(1, 4))
        policies = ["OnFailure", "ExitCode", "Never"] + ([] if framework in ("sklearn", "python") else ["Always"])
        rep = {"count": count, "restartPolicy": draw(st.sampled_from(policies)),
               "env": {f"VAR_{i}": v for i, v in enumerate(draw(st.lists(text, max_size=2)))},
               "args": draw(st.lists(text, max_size=2))}
        if draw(st.booleans()):
            rep["resources"] = {"cpu": draw(quantity), "memory": draw(quantity), "gpus": draw(st.integers(0, 2))}
        replicas[t] = rep
    spec["replicas"] = replicas
    spec["runPolicy"] = {"backoffLimit": draw(st.integers(0, 10))}
    if framework != "sklearn" and framework != "python":
        spec["runPolicy"]["cleanPodPolicy"] = draw(st.sampled_from(["All", "Running", "None"]))
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "mountPath": "/data", "persistentVolumeClaim": draw(dns)}]
    spec["naming"] = draw(st.sampled_from(["hashed", "fixed"]))
    if draw(st.booleans()):
        spec["scheduling"] = {"queue": draw(dns), "nodeSelector": {"pool": draw(dns)}}
    name = draw(dns)
    return {
        "apiVersion": "specc.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": draw(dns),
                     "annotations": {"note": draw(text)}, "labels": {"team": draw(dns)}},
        "spec": spec,
    }


_RAW_NOT_YAML = re.compile("[\x7f-\x9f\ufeff\ufffe\uffff]")


def as_yaml_text(doc: dict) -> str:
    """JSON (a YAML 1.2 subset) with the characters YAML forbids raw escaped as \\uXXXX."""
    return _RAW_NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(doc, ensure_ascii=False))


def compile_doc(doc: dict, path: str = "specs/x.yaml"):
    loaded = load_text(as_yaml_text(doc), path)
    return compile_job(validate(loaded), source=path)


def parse_back_all(text_: str) -> tuple[list, list]:
    y11 = list(yaml.safe_load_all(text_))
    y12 = list(YAML(typ="safe", pure=True).load_all(io.StringIO(text_)))
    return y11, y12


@settings(max_examples=FAST, **COMMON)
@given(specs())
def test_accepted_specs_render_valid_stable_output(doc):
    cj = compile_doc(doc)
    first = render_stream([cj])
    assert render_stream([compile_doc(doc)]) == first
    for obj in cj.objects:
        assert validate_object(obj) == [], obj
    # Injection: what we emit parses back to exactly what we compiled, with both YAML versions.
    y11, y12 = parse_back_all(first)
    assert y11 == list(cj.objects)
    assert y12 == list(cj.objects)
    # Names: DNS-safe, pods fit 63 characters.
    wl = cj.workload
    assert DNS1035.match(wl["metadata"]["name"]) and len(wl["metadata"]["name"]) <= 63
    for key in ("tfReplicaSpecs", "pytorchReplicaSpecs", "xgbReplicaSpecs", "jaxReplicaSpecs", "paddleReplicaSpecs"):
        for rtype, rs in wl["spec"].get(key, {}).items():
            assert len(f"{wl['metadata']['name']}-{rtype.lower()}-{rs['replicas'] - 1}") <= 63
    # Folder names cannot escape the output folder.
    for rel in render_files([cj]):
        assert not rel.startswith("/") and ".." not in rel.split("/")


@settings(max_examples=FAST * 3, **COMMON)
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)),
    max_leaves=20,
), any_text)
def test_emitter_round_trips_any_data(value, key):
    """Any JSON-like data, keys and values with leading and trailing whitespace, line breaks and
    control characters at every level, round-trips through our YAML writer (YAML 1.1 and 1.2)."""
    doc = {"data": value, key: [value, {key: key}]}
    out = dump(doc)
    y11, y12 = parse_back_all(out)
    assert y11 == [doc] and y12 == [doc]


MUTATIONS = ["rename_key", "bad_enum", "int_as_string", "negative", "unknown_key", "bad_name"]


def mutate(doc: dict, how: str, rnd) -> dict:
    doc = json.loads(json.dumps(doc))
    spec = doc["spec"]
    rtype = sorted(spec["replicas"])[0]
    rep = spec["replicas"][rtype]
    if how == "rename_key":
        rep["cuont"] = rep.pop("count")
    elif how == "bad_enum":
        rep["restartPolicy"] = rep["restartPolicy"].lower()
    elif how == "int_as_string":
        rep["count"] = str(rep["count"])
    elif how == "negative":
        spec["runPolicy"]["backoffLimit"] = -1 - rnd.randint(0, 5)
    elif how == "unknown_key":
        spec["replicaz"] = {}
    elif how == "bad_name":
        doc["metadata"]["name"] = doc["metadata"]["name"].upper() + "_"
    return doc


@settings(max_examples=FAST, **COMMON)
@given(specs(), st.sampled_from(MUTATIONS), st.randoms(use_true_random=False))
def test_near_miss_mutations_are_rejected(doc, how, rnd):
    bad = mutate(doc, how, rnd)
    with pytest.raises(SpecError) as info:
        compile_doc(bad, "specs/bad.yaml")
    for d in info.value.diagnostics:
        assert d.path == "specs/bad.yaml" and d.line >= 1 and d.col >= 1 and d.message


def _never_crashes(text_: str) -> None:
    try:
        validate(load_text(text_, "fuzz.yaml"))
    except SpecError as exc:
        assert exc.diagnostics and all(d.line >= 1 and d.col >= 1 for d in exc.diagnostics)


@settings(max_examples=FAST * 3, **COMMON)
@given(specs(), st.data())
def test_mutated_text_gets_located_errors_or_renders(doc, data):
    """Byte-level mutations of a valid spec's YAML text: either valid or located errors."""
    text_ = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    pos = data.draw(st.integers(0, max(len(text_) - 1, 0)))
    cut = data.draw(st.integers(0, 5))
    insert = data.draw(st.sampled_from(["", ":", "-", " ", "\t", "\n", "{", "[", "&a", "*a", "!!str", "'", '"', "#", "\x00", "\u2028"]))
    _never_crashes(text_[:pos] + insert + text_[pos + cut:])


@pytest.mark.slow
@settings(max_examples=SLOW, **COMMON)
@given(specs(), st.data())
def test_fuzz_many(doc, data):
    """The same properties with thousands of cases (marked slow)."""
    test_accepted_specs_render_valid_stable_output.hypothesis.inner_test(doc)
    text_ = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    pos = data.draw(st.integers(0, max(len(text_) - 1, 0)))
    _never_crashes(text_[:pos] + data.draw(st.text(max_size=4)) + text_[pos + data.draw(st.integers(0, 8)):])


@settings(max_examples=FAST, **COMMON)
@given(specs())
def test_job_name_ignores_the_file_a_spec_lives_in(doc):
    """Moving a spec file keeps its job (same name, same objects but for the source annotation);
    the name is metadata.name plus the hash of the objects compiled under metadata.name."""
    from compiler.compile import objects
    from compiler.naming import Names, content_hash

    job = validate(load_text(as_yaml_text(doc), "specs/x.yaml"))
    a, b = compile_job(job, "specs/x.yaml"), compile_job(job, "elsewhere/y.yml")
    assert a.job_name == b.job_name
    strip = lambda objs: [json.loads(json.dumps(o).replace("elsewhere/y.yml", "specs/x.yaml")) for o in objs]
    assert list(a.objects) == strip(b.objects)
    if job.spec.naming == "hashed":
        assert a.job_name == f"{job.metadata.name}-{content_hash(objects(job, Names.for_job(job.metadata.name), None))}"
    else:
        assert a.job_name == job.metadata.name
