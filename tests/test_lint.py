"""`specc lint`: every rule fires at the right place, can be silenced per spec, and sets the exit
status (2 on errors, 0 on warnings unless --strict). All in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.lint import RULES, VALIDATION_RULES, lint_paths
from runtime.credentials import credential_in

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
apiVersion: specc.dev/v1alpha1
kind: TrainingJob
metadata:
  name: {name}
  namespace: kubeflow
spec:
  framework: {framework}
  container:
    image: {image}
    command: [python, /app/train.py]
    args: {args}
  replicas:
{replicas}
  resources: {resources}
  env: {env}
  runPolicy: {run_policy}
  scheduling: {scheduling}
"""

DEFAULTS = dict(
    name="demo", framework="tensorflow", image="registry.example.com/ml/train:1.4.2", args="[]",
    replicas="    Worker: 2", resources='{cpu: "2", memory: 4Gi}', env="{}", run_policy="{}", scheduling="{}",
)


def spec_text(**kw) -> str:
    return BASE.format(**{**DEFAULTS, **kw})


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def with_ignore(text: str, rules: list[str]) -> str:
    return text.replace("  framework:", f"  lint:\n    ignore: [{', '.join(rules)}]\n  framework:", 1)


def with_allow(text: str, rule: str, at: str) -> str:
    return text.replace("  framework:", f"  lint:\n    allow:\n      - {{rule: {rule}, at: '{at}'}}\n  framework:", 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def findings(path: Path) -> list:
    return lint_paths([str(path)])


def test_clean_spec_and_example_specs_have_no_findings(tmp_path, capsys):
    assert findings(write(tmp_path, spec_text())) == []
    assert main(["lint", str(ROOT / "specs")]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 errors, 0 warnings" in err


CASES = [
    # (rule, spec overrides, text on the reported line)
    ("literal-credential", dict(env="{DATABASE_URL: 'postgres://trainer:hunter22@db.internal:5432/ml'}"), "DATABASE_URL"),
    ("literal-credential", dict(env="{WANDB_KEY: 9f8e7d6c5b4a39281706f5e4d3c2b1a0a1b2c3d4}"), "WANDB_KEY"),
    ("literal-credential", dict(env="{HUB: hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789}"), "HUB"),
    ("literal-credential", dict(args="[--hub-token-file, /t, --password, 'hunter22']"), "args:"),
    ("literal-credential", dict(args="['--header=Authorization: Bearer abcdefghijklmnop0123456789']"), "args:"),
    ("literal-credential", dict(args="[curl, -H, 'Authorization: Bearer 9f8e7d6c5b']"), "args:"),
    ("literal-credential", dict(env="{OPENAI_KEY: sk-abcdefghijklmnopqrstuvwxyz012345}"), "OPENAI_KEY"),
    ("literal-credential", dict(env="{MINIO_PASS: minio123}"), "MINIO_PASS"),
    ("literal-credential", dict(env="{dbPassword: x}"), "dbPassword"),
    ("literal-credential", dict(env="{S3_URL: 'http://admin:secret@minio:9000'}"), "S3_URL"),
    ("image-tag", dict(image="kubeflow/tf-dist-mnist-test"), "image:"),
    ("image-tag", dict(image="kubeflow/tf-dist-mnist-test:latest"), "image:"),
    ("image-tag", dict(image="registry.local:5000/ml/train"), "image:"),
    ("gpu-limits", dict(scheduling="{tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]}"), "scheduling:"),
    ("gpu-limits", dict(scheduling="{nodeSelector: {cloud.google.com/gke-accelerator: nvidia-tesla-t4}}"), "scheduling:"),
    ("gpu-limits", dict(args="[--num_gpus=1]"), "args:"),
    ("gpu-limits", dict(framework="pytorch", replicas="    Master: 1\n    Worker: 1"), "nprocPerNode"),
    ("resource-requests", dict(resources="{cpu: '2'}"), "resources:"),
    ("resource-requests", dict(resources="{gpus: 0}"), "resources:"),
    ("ttl-after-finished", dict(run_policy="{ttlSecondsAfterFinished: 600}"), "runPolicy:"),
    ("name-length", dict(name="a" * 44), "name: aaaa"),
    ("kueue-v1", dict(scheduling="{queue: team-a}"), "scheduling:"),
]


@pytest.mark.parametrize("rule, overrides, where", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fires_and_can_be_silenced(tmp_path, capsys, rule, overrides, where):
    text = spec_text(**overrides)
    if where == "nprocPerNode":
        text = text.replace("  replicas:", "  nprocPerNode: gpu\n  replicas:")
    path = write(tmp_path, text)
    got = findings(path)
    assert [d.rule for d in got] == [rule], got
    d = got[0]
    assert d.severity == RULES[rule].severity
    assert d.path == str(path) and d.line == line_of(text, where)

    # Text output: file:line:col: field: message [rule]; exit 2 for errors, 0 for warnings.
    rc = main(["lint", str(path)])
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:{d.line}:{d.col}: {d.field}: ") and out.rstrip().endswith(f"[{rule}]")
    assert rc == (2 if RULES[rule].severity == "error" else 0)
    assert main(["lint", "--strict", str(path)]) == 2
    capsys.readouterr()

    # Accepted at this one field; a lint rule also for the whole spec, or for the run. Validation
    # rules cannot be ignored wholesale.
    assert findings(write(tmp_path, with_allow(text, rule, d.field), "allowed.yaml")) == []
    if rule in VALIDATION_RULES:
        assert main(["lint", "--disable", rule, str(path)]) == 2
        assert [x.rule for x in findings(write(tmp_path, with_ignore(text, [rule]), "quiet.yaml"))] == [rule]
    else:
        assert findings(write(tmp_path, with_ignore(text, [rule]), "quiet.yaml")) == []
        assert main(["lint", "--disable", rule, str(path)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("framework, replicas, kind", [
    ("tensorflow", "    Worker: 2", "TFJob"),
    ("pytorch", "    Master: 1\n    Worker: 1", "PyTorchJob"),
    ("xgboost", "    Master: 1\n    Worker: 1", "XGBoostJob"),
    ("jax", "    Worker: 2", "JAXJob"),
    ("paddle", "    Worker: 2", "PaddleJob"),
    ("python", "    Worker: 1", None),
    ("sklearn", "    Worker: 1", None),
])
def test_kueue_queue_warns_on_every_v1_kind_only(tmp_path, framework, replicas, kind):
    """Kueue v0.19+ leaves the training-operator v1 kinds alone by default; it manages batch/v1 Jobs."""
    got = findings(write(tmp_path, spec_text(framework=framework, replicas=replicas, scheduling="{queue: team-a}")))
    if kind is None:
        assert got == []
    else:
        assert [(d.rule, d.severity, d.field) for d in got] == [("kueue-v1", "warning", "spec.scheduling.queue")]
        assert got[0].message.startswith(f"Kueue v0.19+ does not manage {kind} unless its integration is enabled")
        assert "spec.target: trainjob" in got[0].message


def test_no_false_positives_for_references_and_pinned_images(tmp_path):
    text = spec_text(
        image="registry.local:5000/ml/train@sha256:" + "a" * 64,
        env="{DATABASE_URL: 'postgres://trainer:$(DB_PASSWORD)@db:5432/ml', API_KEY_FILE_SOURCE: {secretKeyRef: {name: s, key: k}},"
            " RUN_ID: run-2024-05-01, CACHE_KEY: epoch-checkpoints}",
        args="[--password, $(DB_PASSWORD), --num_gpus=0, --log_dir=/train/logs]",
        scheduling="{nodeSelector: {kubernetes.io/arch: amd64}}",
        name="a" * 30,
    )
    assert findings(write(tmp_path, text)) == []


def test_gpu_spec_with_gpus_passes(tmp_path):
    text = spec_text(resources='{cpu: "2", memory: 4Gi, gpus: 1}', args="[--num_gpus=1]",
                     scheduling="{tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]}")
    assert findings(write(tmp_path, text)) == []


@pytest.mark.parametrize("value, what", [
    ("https://user:pa55w0rd@example.com/x", "a URL with user:password@"),
    ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
    ("ghp_" + "a1B2" * 9, "a GitHub token"),
    ("glpat-abcdefghij0123456789", "a GitLab token"),
    ("xoxb-1234567890-abcdefghij", "a Slack token"),
    ("sk-proj-abcdefghijklmnopqrstuvwx", "an OpenAI-style API key"),
    ("AIza" + "B" * 35, "a Google API key"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "a JSON Web Token"),
    ("-----BEGIN RSA PRIVATE KEY-----", "a private key"),
    ("--db=password=hunter22", "a password/token assignment"),
    ("s3://models/mnist/1/", None),
    ("http://minio-service.kubeflow:9000", None),
    ("password=${DB_PASSWORD}", None),
    ("--token-file=/var/run/secrets/token", None),
    ("rotate the secret: monthly", None),
    ("https://minio/?access_key=Q3VyaW9zaXR5", "a password/token assignment"),
])
def test_credential_patterns(value, what):
    assert credential_in(value) == what


def test_unknown_rule_in_ignore_is_reported_with_a_hint(tmp_path):
    text = with_ignore(spec_text(), ["gpu-limit"])
    got = findings(write(tmp_path, text))
    assert [(d.rule, d.severity) for d in got] == [("unknown-rule", "warning")]
    assert "did you mean 'gpu-limits'?" in got[0].message
    assert got[0].line == line_of(text, "ignore:")


def test_json_format_and_exit_codes(tmp_path, capsys):
    p = write(tmp_path, spec_text(image="train:latest", run_policy="{ttlSecondsAfterFinished: 60}"))
    assert main(["lint", "--format", "json", str(p)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == 1
    assert sorted((d["rule"], d["severity"]) for d in doc["diagnostics"]) == [
        ("image-tag", "error"), ("ttl-after-finished", "warning")]
    assert all({"path", "line", "col", "field", "message"} <= set(d) for d in doc["diagnostics"])
    text = with_ignore(spec_text(image="train:latest", run_policy="{ttlSecondsAfterFinished: 60}"), ["image-tag"])
    q = write(tmp_path, text, "warn-only.yaml")
    assert main(["lint", str(q)]) == 0
    out, err = capsys.readouterr()
    assert ": warning: " in out and "0 errors, 1 warning" in err
    assert main(["lint", "--strict", str(q)]) == 2


def test_invalid_spec_reports_validation_errors(tmp_path, capsys):
    p = write(tmp_path, spec_text(name="Demo"))
    assert main(["lint", str(p)]) == 2
    out = capsys.readouterr().out
    assert f"{p}:4:9: metadata.name: " in out


def test_explain_and_list(capsys):
    assert main(["lint", "--list-rules"]) == 0
    listing = capsys.readouterr().out
    assert [line.split()[0] for line in listing.splitlines()] == list(RULES)
    for name, rule in RULES.items():
        assert main(["lint", "--explain", name]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{name} ({rule.severity}): ") and f"- {{rule: {name}, at: " in out
        assert (f"ignore: [{name}]" in out) == (name not in VALIDATION_RULES)
        assert len(rule.explanation) > 100
    assert main(["lint", "--explain", "image-tags"]) == 2
    assert "did you mean 'image-tag'?" in capsys.readouterr().err
    assert main(["lint", "--disable", "nope", "x.yaml"]) == 2
    assert main(["lint"]) == 2
    capsys.readouterr()


def test_spec_schema_accepts_lint_ignore(tmp_path):
    bad = write(tmp_path, with_ignore(spec_text(), ["Not A Rule"]))
    got = findings(bad)
    assert got and got[0].field == "spec.lint.ignore[0]" and got[0].rule is None
