"""Hardening II: the compiler's promises hold for every input (issue 11), by class of input.

1 file names are data; 3 literal credentials; 4 values the API server refuses; 5 path-like
fields; 6 files that are not regular files; 7 output size; 8 one-line messages that say what to
do; 9 every problem in one pass. (2, line breaks in keys and values, is in test_properties.py;
10, the JSON Schema, in test_schema.py.) Generated inputs where the space is large.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compiler import pipeline
from compiler.diagnostics import SpecError
from compiler.loader import load_text
from compiler.render import render_stream
from compiler.validate import validate
from conftest import REPO

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "60"))

BASE = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: demo
  namespace: ml
spec:
  framework: tensorflow
  container:
    image: registry.example.com/train:1.0
    command: [python, train.py]
  replicas:
    Worker: {count: 2, resources: {cpu: "1", memory: 1Gi}}
"""


def specc(*args, cwd=REPO, timeout=60):
    return subprocess.run([sys.executable, "-m", "compiler", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "SPECC_NO_CACHE": "1"})


def problems(text: str, path: str = "specs/x.yaml") -> list:
    """The diagnostics of a spec text (empty when it validates)."""
    try:
        validate(load_text(text, path))
    except SpecError as exc:
        return exc.diagnostics
    return []


def one_line(diags) -> None:
    for d in diags:
        s = str(d)
        assert "\n" not in s and "\r" not in s and s.isprintable(), repr(s)
        assert "[key]" not in s and "String should match pattern" not in s, s


# ------------------------------------------------------------------------------ 1. file names

@settings(max_examples=EXAMPLES, **COMMON)
@given(st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)), min_size=1, max_size=24))
def test_any_file_name_is_refused_or_rendered_as_data(tmp_path_factory, stem):
    """A spec file named anything: refused with one located line per problem, or rendered with
    its name inert (a one-line header comment, the exact objects parsed back)."""
    assume(stem not in (".", "..") and not stem.startswith("."))
    folder = tmp_path_factory.mktemp("specs")
    try:
        (folder / f"{stem}.yaml").write_text(BASE)
    except OSError:
        assume(False)
    units, diags = pipeline.run([str(folder)], cache=False)
    if diags:
        assert not units
        one_line(diags)
        assert all(d.line == 1 and d.col == 1 for d in diags)
        return
    (cj,) = [u.compiled for u in units]
    text = render_stream([cj])
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert len(comments) == len(cj.objects)
    assert list(yaml.safe_load_all(text)) == list(cj.objects)


@pytest.mark.parametrize("name", ["x\n---\nkind: Secret\n.yaml", "a\u2028b.yaml", "a\x85b.yaml", "tab\there.yaml",
                                  "zero\u200bwidth.yaml", "bidi\u202egnp.yaml", "colon:x.yaml", "hash#x.yaml"])
def test_hostile_file_names_are_refused_and_nothing_is_written(tmp_path, name):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / name).write_text(BASE)
    out = tmp_path / "out"
    r = specc("render", str(specs), "-o", str(out))
    assert r.returncode == 2 and not out.exists()
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and "spec file names may hold" in lines[0] and lines[1] == "specc: 1 error", r.stderr
    r = specc("render", str(specs / name))
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 2


def test_safe_names_render_and_build_with_kustomize(tmp_path):
    specs = tmp_path / "my specs" / "équipe"
    specs.mkdir(parents=True)
    (specs / "train job+v2@x.yaml").write_text(BASE)
    out = tmp_path / "out"
    assert specc("render", str(tmp_path / "my specs"), "-o", str(out)).returncode == 0
    r = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert specc("render", str(tmp_path / "my specs"), "-o", str(out), "--check").returncode == 0


# ------------------------------------------------------------------------------ 3. credentials

_SECRETS = ["hunter22", "p4ss-w0rd!", "correcthorsebatterystaple"]
_PREFIXES = ["", "DB_", "MINIO_", "my_", "APP-", "HF_", "svc.", "x_"]
_WORDS = ["PASSWORD", "PASS", "PASSWD", "PWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "ACCESS_KEY", "PRIVATE_KEY",
          "CLIENT_SECRET", "CREDENTIALS", "Password", "Token", "DBPASSWORD", "AUTH_TOKEN"]
_SUFFIXES = ["", "_1", "_VALUE", "_PROD"]


def _env_spec(name: str, value: str) -> str:
    return BASE + f"  env:\n    {json.dumps(name)}: {json.dumps(value)}\n"


@settings(max_examples=EXAMPLES, **COMMON)
@given(st.sampled_from(_PREFIXES), st.sampled_from(_WORDS), st.sampled_from(_SUFFIXES), st.sampled_from(_SECRETS))
def test_env_named_like_a_credential_is_refused_without_echo(prefix, word, suffix, secret):
    name = prefix + word + suffix
    diags = problems(_env_spec(name, secret))
    assert [d.rule for d in diags] == ["literal-credential"], diags
    assert diags[0].field == f"spec.env.{name}" or diags[0].field.endswith(json.dumps(name) + "]")
    one_line(diags)
    assert secret not in str(diags[0])


@pytest.mark.parametrize("name", ["MAX_TOKENS", "TOKENIZER_PATH", "NUM_PASSES", "COMPASS_URL", "KEYBOARD", "SECRETARY_NAME",
                                  "PASSAGE_LEN", "LOG_LEVEL"])
def test_names_that_merely_contain_a_word_are_not_credentials(name):
    assert problems(_env_spec(name, "12")) == []


@pytest.mark.parametrize("where, snippet", [
    ("annotation", ("  namespace: ml\n", "  namespace: ml\n  annotations: {db-password: hunter22}\n")),
    ("annotation value", ("  namespace: ml\n", "  namespace: ml\n  annotations: {note: 'password=hunter22'}\n")),
    ("two args", ("command: [python, train.py]", "command: [python, train.py]\n    args: [--password, hunter22]")),
    ("flag=value", ("command: [python, train.py]", "command: [python, train.py]\n    args: [--api-key=hunter22]")),
    ("url userinfo", ("command: [python, train.py]", "command: [python, train.py]\n    args: ['--db=postgres://u:hunter22@db/x']")),
    ("bearer in command", ("command: [python, train.py]", "command: [curl, -H, 'Authorization: Bearer abc123xyz9', http://x]")),
    ("api key prefix", ("  replicas:", "  env: {OPENAI: sk-proj-abcdefghijklmnopqrstuvwx}\n  replicas:")),
    ("github token", ("  replicas:", "  env: {GH: ghp_abcdefghijklmnopqrstuvwxyz0123456789}\n  replicas:")),
    ("endpoint userinfo", ("  replicas:", "  storage: {endpoint: 'http://admin:hunter22@minio:9000'}\n  replicas:")),
    ("replica env", ("Worker: {count: 2,", "Worker: {env: {MINIO_PASS: hunter22}, count: 2,")),
])
def test_literal_credentials_in_every_place(where, snippet):
    diags = problems(BASE.replace(*snippet))
    found = [d for d in diags if d.rule == "literal-credential"]
    assert found, (where, diags)
    one_line(diags)
    for d in diags:
        assert "hunter22" not in str(d) and "abc123xyz9" not in str(d) and "ghp_abc" not in str(d), str(d)


def test_references_and_expansions_are_not_credentials():
    text = BASE.replace("command: [python, train.py]",
                        "command: [python, train.py]\n    args: [--password, $(DB_PASSWORD), --token-file, /var/run/secrets/t]") \
        + "  env:\n    DB_PASSWORD: {secretKeyRef: {name: db, key: password}}\n    DB_URL: 'postgres://u:$(DB_PASSWORD)@db/x'\n"
    assert problems(text) == []


def test_a_false_positive_is_accepted_at_one_field_only():
    text = _env_spec("SIGNING_SALT_KEY", "a8Fz3kQ9mP2xW7vL5nR1")
    (d,) = problems(text)
    assert d.rule == "literal-credential" and d.field == "spec.env.SIGNING_SALT_KEY"
    allowed = text.replace("  framework:", "  lint:\n    allow:\n      - {rule: literal-credential, at: spec.env.SIGNING_SALT_KEY, "
                                            "reason: public salt}\n  framework:")
    assert problems(allowed) == []
    elsewhere = allowed + "    OTHER_TOKEN: hunter22\n"
    assert [d.field for d in problems(elsewhere)] == ["spec.env.OTHER_TOKEN"]


def test_unused_allow_entries_are_reported_by_lint(tmp_path):
    from compiler.lint import lint_paths

    p = tmp_path / "x.yaml"
    p.write_text(BASE.replace("  framework:", "  lint:\n    allow:\n      - {rule: literal-credential, at: spec.env.NOPE}\n"
                                               "      - {rule: no-such-rule, at: spec}\n  framework:"))
    got = {(d.rule, d.field) for d in lint_paths([str(p)])}
    assert got == {("unused-allow", "spec.lint.allow[0].at"), ("unknown-rule", "spec.lint.allow[1].rule")}


def test_messages_never_echo_a_credential():
    text = BASE.replace("  replicas:", "  storage: {endpoint: 'http://admin:hunter22@minio:99999'}\n  replicas:")
    text = text.replace("image: registry.example.com/train:1.0", "image: 'https://u:hunter22@registry/x'")
    diags = problems(text)
    assert len(diags) >= 3
    assert all("hunter22" not in str(d) for d in diags), [str(d) for d in diags]


def test_runtime_masks_endpoint_credentials():
    from runtime.errors import ConfigError
    from runtime.storage import Storage

    with pytest.raises(ConfigError) as info:
        Storage("http://admin:hunter22@minio:9000")
    assert "hunter22" not in str(info.value) and "admin:***@minio" in str(info.value)


# ------------------------------------------------------------------------------ 4. API server rules

@settings(max_examples=EXAMPLES * 2, **COMMON)
@given(st.sampled_from([None, "", "nvidia.com/gpu", "dedicated"]), st.sampled_from([None, "Exists", "Equal"]),
       st.sampled_from([None, "", "true"]), st.sampled_from([None, "NoSchedule", "PreferNoSchedule", "NoExecute"]),
       st.sampled_from([None, 0, 300, -5]))
def test_tolerations_are_refused_exactly_when_kubernetes_refuses_them(key, operator, value, effect, seconds):
    tol = {k: v for k, v in dict(key=key, operator=operator, value=value, effect=effect, tolerationSeconds=seconds).items()
           if v is not None}
    op = operator or "Equal"
    k8s_refuses = (not key and op != "Exists") or (op == "Exists" and bool(value)) or (seconds is not None and effect != "NoExecute")
    assume(not (key == "" and "key" in tol and False))
    diags = problems(BASE + f"  scheduling: {{tolerations: [{json.dumps(tol)}]}}\n")
    assert bool(diags) == k8s_refuses, (tol, diags)
    one_line(diags)


@settings(max_examples=EXAMPLES, **COMMON)
@given(st.sampled_from(["cpu", "memory"]), st.sampled_from(["100m", "1", "1.5", "2", "500Mi", "1Gi", "1024Mi", "3G"]),
       st.sampled_from(["100m", "1", "1.5", "2", "500Mi", "1Gi", "1024Mi", "3G"]))
def test_limits_below_requests_are_refused(what, request, limit):
    from compiler.quantity import parse_quantity

    text = BASE.replace('resources: {cpu: "1", memory: 1Gi}', f"resources: {{{what}: '{request}', {what}Limit: '{limit}'}}")
    diags = problems(text)
    assert bool(diags) == (parse_quantity(request) > parse_quantity(limit)), diags


_QUANTITIES = {"cpu": ["100m", "1", "1.5", "2", 1, 2, 0.5, 1.5, 1e-05], "memory": ["500Mi", "1Gi", "1024Mi", "3G", 1073741824],
               "ephemeralStorage": ["1Gi", "10Gi", "5G", 2000000000]}


@settings(max_examples=EXAMPLES, **COMMON)
@given(st.sampled_from(sorted(_QUANTITIES)), st.data())
def test_merged_requests_within_limits_exactly_when_kubernetes_accepts_the_pod(what, data):
    """Requests and limits at the spec's and a replica's level, as numbers or strings: the spec is
    refused exactly when a rendered container would have a limit below its request, with one
    located line, never a traceback."""
    from compiler.compile import compile_job
    from compiler.quantity import parse_quantity

    values = _QUANTITIES[what]
    pick = st.one_of(st.none(), st.sampled_from(values))
    levels = {level: {k: data.draw(pick, label=f"{level}.{k}") for k in (what, what + "Limit")} for level in ("spec", "Worker")}
    merged = {k: levels["Worker"][k] if levels["Worker"][k] is not None else levels["spec"][k] for k in (what, what + "Limit")}
    req, lim = merged[what], merged[what + "Limit"]
    refused = req is not None and lim is not None and parse_quantity(str(req)) > parse_quantity(str(lim))

    def block(fields):
        return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items() if v is not None) + "}"

    text = BASE.replace('resources: {cpu: "1", memory: 1Gi}', f"resources: {block(levels['Worker'])}") + \
        f"  resources: {block(levels['spec'])}\n"
    diags = problems(text)
    assert bool(diags) == refused, (levels, [str(d) for d in diags])
    one_line(diags)
    if diags:
        assert len(diags) == 1 and "is below the" in diags[0].message
        return
    cj = compile_job(validate(load_text(text, "specs/x.yaml")), "specs/x.yaml")
    name = {"cpu": "cpu", "memory": "memory", "ephemeralStorage": "ephemeral-storage"}[what]
    for rtype, spec in cj.objects[-1]["spec"]["tfReplicaSpecs"].items():
        for c in spec["template"]["spec"]["containers"]:
            res = c.get("resources") or {}
            r, l = (res.get("requests") or {}).get(name), (res.get("limits") or {}).get(name)
            assert r is None or l is None or parse_quantity(r) <= parse_quantity(l), (rtype, res)


def test_a_limit_below_its_request_is_reported_once_with_a_pod_template():
    text = BASE + '  resources: {cpu: "4", cpuLimit: "2"}\n  podTemplate: {spec: {containers: [{name: tensorflow, env: [{name: A, value: b}]}]}}\n'
    text = text.replace('resources: {cpu: "1", memory: 1Gi}', "resources: {memory: 1Gi}")
    assert [str(d) for d in problems(text)] == [
        "specs/x.yaml:13:35: spec.resources.cpuLimit: cpuLimit 2 is below the cpu request 4; a limit must be at least the request"]


@pytest.mark.parametrize("field, value", [
    ("runPolicy: {ttlSecondsAfterFinished: %d}", 2**31), ("runPolicy: {backoffLimit: %d}", 2**31),
    ("runPolicy: {activeDeadlineSeconds: %d}", 2**63), ("runPolicy: {schedulingPolicy: {minAvailable: %d}}", 2**31),
    ("scheduling: {tolerations: [{key: a, effect: NoExecute, tolerationSeconds: %d}]}", 2**63),
])
def test_integers_beyond_the_crd_formats_are_refused(field, value):
    diags = problems(BASE + "  " + (field % value) + "\n")
    assert diags and all("less than or equal to" in d.message for d in diags)
    assert problems(BASE + "  " + (field % (value - 1)) + "\n") == [] or "backoffLimit" in field


# ------------------------------------------------------------------------------ 5. paths

_TRAVERSAL = ["/a/../b", "/..", "/a/..", "s3://bucket/../x", "file:///a/../b", "/a\n", "/a\x07b", "relative/x",
              "s3://bucket/x\r", "/a/\x1b[31m"]


@pytest.mark.parametrize("field", ["data_dir", "export_uri", "log_dir", "checkpoint_uri"])
@pytest.mark.parametrize("value", _TRAVERSAL)
def test_every_path_like_field_refuses_traversal_and_control_characters(field, value):
    text = BASE.replace("  container:\n    image: registry.example.com/train:1.0\n    command: [python, train.py]\n",
                        f"  trainer: {{name: mnist, {field}: {json.dumps(value)}}}\n")
    diags = problems(text)
    assert [d.field for d in diags] == [f"spec.trainer.{field}"], diags
    one_line(diags)


@pytest.mark.parametrize("value", ["/a/../b", "/a:b", "/a\nb", "relative"])
def test_mount_paths_refuse_traversal(value):
    diags = problems(BASE + f"  volumes: [{{name: v, mountPath: {json.dumps(value)}, emptyDir: {{}}}}]\n")
    assert [d.field for d in diags] == ["spec.volumes[0].mountPath"]


@pytest.mark.parametrize("endpoint", ["http://a:b:c:d", "http://a:9000:1", "http://a:0", "http://a:65536", "ftp://a",
                                      "http://a/path", "http://a b", "http://u@a"])
def test_endpoints_are_one_host_and_port(endpoint):
    diags = problems(BASE + f"  storage: {{endpoint: {json.dumps(endpoint)}}}\n")
    assert diags and all(d.field == "spec.storage.endpoint" for d in diags)


# ------------------------------------------------------------------------------ 6. not regular files

def test_a_fifo_is_refused_without_blocking(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "good.yaml").write_text(BASE)
    fifo = specs / "pipe.yaml"
    os.mkfifo(fifo)
    for target in (specs, fifo):
        r = specc("render", str(target), timeout=30)
        assert r.returncode == 2, r.stderr
        assert "named pipe (FIFO), not a spec file" in r.stderr and r.stdout == ""
    # A dangling symbolic link is reported, not skipped either.
    fifo.unlink()
    (specs / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    r = specc("render", str(specs), timeout=30)
    assert r.returncode == 2 and "gone.yaml" in r.stderr


def test_device_files_are_refused(tmp_path):
    r = specc("validate", "/dev/null", timeout=30)
    assert r.returncode == 2 and "character device" in r.stderr


# ------------------------------------------------------------------------------ 7. output size

def test_alias_expansion_is_bounded_by_characters(tmp_path):
    """A small file whose aliases would expand to megabytes is refused before it is built."""
    big = "x" * 60_000
    text = BASE.replace("command: [python, train.py]", f"command: [&a '{big}', *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]")
    f = tmp_path / "bomb.yaml"
    f.write_text(text)
    assert f.stat().st_size < 70_000
    r = specc("render", str(f))
    assert r.returncode == 2 and "characters of text after expanding aliases" in r.stderr


def test_an_object_too_large_to_apply_is_refused_where_it_is_named(tmp_path):
    args = ", ".join(f"'{'y' * 4000}{i}'" for i in range(70))
    f = tmp_path / "big.yaml"
    f.write_text(BASE.replace("command: [python, train.py]", f"command: [python, train.py]\n    args: [{args}]"))
    r = specc("render", str(f), "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and not (tmp_path / "out").exists()
    assert f"{f}:4:9: metadata.name: the rendered TFJob is too large to apply" in r.stderr
    assert "262,144" in r.stderr


def test_compiled_objects_stay_within_the_annotation_bound():
    from compiler.compile import MAX_ANNOTATION_BYTES, applied_size

    units, diags = pipeline.run([str(REPO / "specs")], cache=False)
    assert not diags
    assert all(applied_size(o) < MAX_ANNOTATION_BYTES for u in units for o in u.compiled.objects)


# ------------------------------------------------------------------------------ 8. messages

@settings(max_examples=EXAMPLES, **COMMON)
@given(st.text(min_size=1, max_size=10), st.sampled_from(["labels", "annotations", "env", "nodeSelector", "replicas"]))
def test_every_message_is_one_line_whatever_the_key(key, where):
    """Hostile keys (line breaks, controls, look-alikes) in every user map: one line per problem."""
    doc = yaml.safe_load(BASE)
    target = {"labels": doc["metadata"].setdefault("labels", {}), "annotations": doc["metadata"].setdefault("annotations", {}),
              "env": doc["spec"].setdefault("env", {}), "nodeSelector": doc["spec"].setdefault("scheduling", {}).setdefault("nodeSelector", {}),
              "replicas": doc["spec"]["replicas"]}[where]
    target[key] = "v" if where != "replicas" else 1
    text = json.dumps(doc)
    try:
        diags = problems(text)
    except Exception as exc:  # noqa: BLE001 - the test is that nothing else escapes
        pytest.fail(f"{type(exc).__name__}: {exc}")
    one_line(diags)


def test_look_alike_characters_are_pointed_at():
    (d,) = problems(BASE.replace("name: demo", "name: dеmo"))  # a Cyrillic е
    assert "U+0435 CYRILLIC SMALL LETTER IE" in d.message and "at character 2" in d.message
    assert (d.line, d.col) == (4, 10)


@pytest.mark.parametrize("text, words", [
    (BASE + "  env: {'1BAD': x}\n", "must be an environment variable name"),
    (BASE.replace("  namespace: ml\n", "  namespace: ml\n  labels: {'a b': x}\n"), "must be a Kubernetes name like app"),
    (BASE.replace("  namespace: ml\n", "  namespace: ml\n  labels: {a: 'b c'}\n"), "must be a label value"),
    (BASE.replace("cpu: \"1\"", "cpu: lots"), "must be a Kubernetes quantity like 500m"),
])
def test_patterns_are_explained_in_words(text, words):
    (d,) = problems(text)
    assert words in d.message and "^" not in d.message, d.message


# ------------------------------------------------------------------------------ 9. every problem at once

def test_type_errors_credentials_and_cross_field_rules_in_one_pass():
    text = BASE.replace("framework: tensorflow", "framework: pytorch").replace(
        "Worker: {count: 2, resources: {cpu: \"1\", memory: 1Gi}}",
        "Worker: {count: two}\n  env: {DB_PASSWORD: hunter22}\n  runPolicy: {backoffLimit: -1}\n"
        "  scheduling: {tolerations: [{operator: Equal, value: x}]}")
    diags = problems(text)
    fields = {d.field for d in diags}
    assert "spec.replicas.Worker.count" in fields  # type error
    assert "spec.runPolicy.backoffLimit" in fields  # range error
    assert "spec.env.DB_PASSWORD" in fields  # credential, from the raw document
    assert "spec.scheduling.tolerations[0].operator" in fields  # cross-field, with the invalid parts left out
    assert not any("needs a Master" in d.message for d in diags)  # about the part left out: not claimed


def test_cross_field_rules_run_when_unrelated_fields_are_invalid():
    text = BASE.replace("framework: tensorflow", "framework: pytorch").replace("  namespace: ml\n", "  namespace: ML_BAD\n")
    msgs = [d.message for d in problems(text)]
    assert any("DNS-1123" in m for m in msgs) and any("needs a Master" in m for m in msgs), msgs


@settings(max_examples=EXAMPLES, **COMMON)
@given(st.sampled_from(["v1", "trainjob"]),
       st.lists(st.sampled_from(["TF_CONFIG", "MASTER_ADDR", "WORLD_SIZE", "PET_NNODES", "SPECC_CONFIG", "RANK",
                                 "JOB_COMPLETION_INDEX", "OK_NAME"]), min_size=1, max_size=5, unique=True))
def test_each_reserved_env_name_is_reported_once(target, names):
    """A variable specc, the operator or Trainer sets: one located line per name, whichever rule
    knows it (the kind's own, or the shared one)."""
    text = ("apiVersion: specc.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: demo}\nspec:\n"
            f"  framework: pytorch\n  target: {target}\n  container: {{image: 'registry.example.com/train:1.0'}}\n"
            "  env: {" + ", ".join(f"{n}: x" for n in names) + "}\n")
    diags = problems(text)
    one_line(diags)
    fields = [d.field for d in diags]
    assert len(fields) == len(set(fields)), [str(d) for d in diags]
    assert all(d.field.startswith("spec.env.") and d.field[len("spec.env."):] in names for d in diags), [str(d) for d in diags]


@pytest.mark.parametrize("key, credential", [
    ("tokenizer_path", False), ("max_tokens", False), ("secretKey", True), ("apiToken", True), ("db_password", True)])
def test_an_unknown_key_is_a_credential_only_by_the_one_credential_name_rule(key, credential):
    from runtime.credentials import secret_name

    (d,) = problems(BASE + f"  {key}: some-value\n")
    assert secret_name(key) == credential
    assert ("literal credentials are not allowed" in d.message) == credential, str(d)
    assert credential or d.message.startswith(f"unknown field '{key}'"), str(d)
