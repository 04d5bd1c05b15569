"""The built-in `income` trainer (book section 6) on the real UCI adult data.

Preprocessing is checked against alibi's own fetch_adult (fed the file offline, as an oracle),
the forest against the book's accuracies, the explanations against the book's rows 0 and 6,
and the whole job end to end through `python -m runtime` and `specc run --local` against the
moto S3 server. Budget: about 2 minutes on 2 cores (one forest fit in-process, a few
subprocess runs; the alibi import costs a few seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import DATA, REPO, put_bytes, put_file

from runtime.adult import FEATURE_NAMES, parse_adult, split_book
from runtime.config import IncomeConfig, JobInfo, RuntimeConfig, dump_runtime_config
from runtime.context import Task
from runtime.errors import ConfigError, DataError, ExitCode

ADULT = DATA / "adult" / "adult.data"
BOOK_TRAIN_ACC, BOOK_TEST_ACC = 0.9655, 0.8559
TOLERANCE = 0.003


def _fetch_adult_oracle(text: str):
    """alibi's fetch_adult fed `text` instead of the network (test oracle only)."""
    from runtime.trainers.income import import_anchor_tabular

    import_anchor_tabular()  # imports alibi without TensorFlow/torch: seconds, not tens of seconds
    from alibi.datasets import fetch_adult

    resp = mock.Mock(text=text)
    resp.raise_for_status = lambda: None
    with mock.patch("requests.get", return_value=resp):
        return fetch_adult()


@pytest.fixture(scope="module")
def adult_text() -> str:
    return ADULT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def adult(adult_text):
    return parse_adult(adult_text, str(ADULT))


@pytest.fixture(scope="module")
def book(adult):
    """The book's split and fitted pipeline (fitted once for the module)."""
    from runtime.trainers.income import build_pipeline, fit_pipeline

    X_train, y_train, X_test, y_test = split_book(adult, 0, 30_000)
    pipeline = build_pipeline(adult, 50, 0, -1)
    fit_pipeline(pipeline, X_train, y_train)
    return pipeline, X_train, y_train, X_test, y_test


# ----------------------------------------------------------------------------- data


def test_preparation_equals_fetch_adult(adult, adult_text):
    ref = _fetch_adult_oracle(adult_text)
    assert adult.data.dtype == ref.data.dtype and adult.target.dtype == ref.target.dtype
    np.testing.assert_array_equal(adult.data, ref.data)
    np.testing.assert_array_equal(adult.target, ref.target)
    assert list(adult.feature_names) == list(ref.feature_names) == list(FEATURE_NAMES)
    assert adult.category_map == ref.category_map
    assert adult.data.shape == (32_561, 12) and int(adult.target.sum()) == 7_841
    assert adult.ordinal == [0, 8, 9, 10] and adult.categorical == [1, 2, 3, 4, 5, 6, 7, 11]


def test_preparation_equals_fetch_adult_on_edge_cases(adult_text):
    """Blank lines, CRLF endings, empty and NA-like cells (pandas reads them as missing: '?')."""
    lines = adult_text.split("\n")[:300]
    cells = lines[3].split(", ")
    cells[1] = ""  # empty Workclass
    lines[3] = ", ".join(cells)
    cells = lines[7].split(", ")
    cells[13] = "NA"  # Country read as NaN by pandas
    lines[7] = ", ".join(cells)
    lines[10] += "\r"
    lines.insert(20, "")
    text = "\n".join(lines) + "\n\n"
    ref = _fetch_adult_oracle(text)
    ours = parse_adult(text, "edge.data")
    np.testing.assert_array_equal(ours.data, ref.data)
    np.testing.assert_array_equal(ours.target, ref.target)
    assert ours.category_map == ref.category_map
    assert "?" in ours.category_map[1] and "?" in ours.category_map[11]


@pytest.mark.parametrize(
    "line, message",
    [
        ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, <=50K",
         "expected 15 fields separated by ', ', found 14"),
        ("abc, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K",
         "Age: expected an integer, got 'abc'"),
        ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 4.5, United-States, <=50K",
         "Hours per week: expected an integer, got '4.5'"),
        ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K.",
         "Target: expected one of <=50K, >50K, got '<=50K.'"),
        ("39,State-gov,77516,Bachelors,13,Never-married,Adm-clerical,Not-in-family,White,Male,2174,0,40,United-States,<=50K",
         "expected 15 fields separated by ', ', found 1"),
        ("99999999999999999999, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K",
         "Age: integer out of range"),
    ],
    ids=["missing-field", "non-numeric-age", "float-hours", "test-file-label", "wrong-separator", "overflow"],
)
def test_corrupt_line_is_located(adult_text, line, message):
    lines = adult_text.split("\n")[:5]
    lines.insert(3, line)
    with pytest.raises(DataError) as err:
        parse_adult("\n".join(lines), "s3://data/income/bad.data")
    assert str(err.value) == f"s3://data/income/bad.data:4: {message}"
    assert err.value.line == 4 and err.value.code == ExitCode.FAILED


def test_empty_file_is_a_data_error():
    with pytest.raises(DataError, match=r"^empty\.data: no data rows$"):
        parse_adult("\n \n", "empty.data")


def test_non_utf8_file_is_located(tmp_path):
    from runtime.trainers.income import run

    bad = tmp_path / "adult.data"
    lines = ADULT.read_bytes().split(b"\n")[:10]
    lines[6] = lines[6][:20] + b"\xe4" + lines[6][20:]  # a Latin-1 byte on line 7
    bad.write_bytes(b"\n".join(lines))
    cfg, ctx = _context(tmp_path, _config(tmp_path, data_uri=str(bad), export_uri=str(tmp_path / "m")))
    with pytest.raises(DataError, match=rf"^{bad}:7: not UTF-8 text"):
        run(cfg, ctx)


def test_split_is_the_books(adult):
    X_train, y_train, X_test, y_test = split_book(adult, 0, 30_000)
    np.random.seed(0)
    perm = np.random.permutation(np.c_[adult.data, adult.target])
    np.testing.assert_array_equal(X_train, perm[:30_000, :-1])
    np.testing.assert_array_equal(y_test, perm[30_001:, -1])
    assert len(X_train) == 30_000 and len(X_test) == 2_560  # one row skipped, as the book


# ----------------------------------------------------------------------------- model


def test_accuracies_match_the_book(book):
    from runtime.trainers.income import FastPredictor

    pipeline, X_train, y_train, X_test, y_test = book
    fast = FastPredictor(pipeline, n_jobs=-1)
    train_acc = float(np.mean(fast.predict(X_train) == y_train))
    test_acc = float(np.mean(fast.predict(X_test) == y_test))
    assert abs(train_acc - BOOK_TRAIN_ACC) <= TOLERANCE, train_acc
    assert abs(test_acc - BOOK_TEST_ACC) <= TOLERANCE, test_acc


def test_forest_is_the_books_sparse_sequential_forest(adult, book):
    """Dense, threaded fitting grows the very trees the book's np.random.seed(0) fit on the
    sparse transform grows (checked on 3,000 rows to stay quick)."""
    from sklearn.ensemble import RandomForestClassifier

    from runtime.trainers.income import build_pipeline, fit_pipeline

    _, X_train, y_train, *_ = book
    X, y = X_train[:3000], y_train[:3000]
    ours = build_pipeline(adult, 4, 0, 2)
    fit_pipeline(ours, X, y)
    np.random.seed(0)
    ref = RandomForestClassifier(n_estimators=4).fit(ours.named_steps["preprocess"].transform(X), y)
    for a, b in zip(ref.estimators_, ours.named_steps["forest"].estimators_, strict=True):
        for field in ("feature", "threshold", "children_left", "children_right", "value"):
            np.testing.assert_array_equal(getattr(a.tree_, field), getattr(b.tree_, field))


def test_fast_predictor_equals_sklearn(book):
    from runtime.trainers.income import FastPredictor

    pipeline, X_train, _, X_test, _ = book
    fast = FastPredictor(pipeline, n_jobs=1)
    rng = np.random.default_rng(7)
    odd = X_test[:400].astype(np.float64)
    odd[:100, 1] = 99  # unknown Workclass: ignored by the one-hot encoder
    odd[100:200, 0] = rng.integers(-50, 500, 100)  # ages outside the training range
    odd[200:300, 8] = np.nan  # missing Capital Gain: median imputed
    odd[300:, 11] = np.nan  # missing Country: median imputed
    sequential = pipeline.named_steps["forest"].set_params(n_jobs=1)
    try:
        for X in (X_test, odd, X_train[:5000]):
            encoded = pipeline.named_steps["preprocess"].transform(X).toarray().astype(np.float32)
            np.testing.assert_array_equal(fast.transform(X), encoded)
            np.testing.assert_array_equal(fast.predict_proba(X), sequential.predict_proba(encoded))
            np.testing.assert_array_equal(fast.predict(X), pipeline.predict(X))
        assert fast.matches_pipeline(X_test)
    finally:
        sequential.set_params(n_jobs=-1)


def test_reduce_over_leading_axis_adds_in_order():
    """FastPredictor relies on np.add.reduce(axis=0) adding slice by slice, as sklearn's loop does."""
    rng = np.random.default_rng(0)
    parts = rng.random((50, 500, 2)) * 10.0 ** rng.integers(-8, 8, (50, 500, 2))
    looped = np.zeros((500, 2))
    for part in parts:
        looped += part
    np.testing.assert_array_equal(np.add.reduce(parts, axis=0), looped)


def test_explanations_rows_0_and_6(adult, book):
    from runtime.trainers.income import FastPredictor, explain_rows, import_anchor_tabular

    pipeline, X_train, _, X_test, _ = book
    rows = explain_rows(import_anchor_tabular(), FastPredictor(pipeline), adult, X_train, X_test, [0, 6], 0.95, 1)
    first, sixth = rows
    assert first["row"] == 0 and first["prediction"] == "<=50K"
    assert "Marital Status = Separated" in first["anchor"] and first["precision"] >= 0.95
    assert first["threshold_met"] is True and "message" not in first
    assert sixth["row"] == 6 and sixth["prediction"] == ">50K"
    assert sixth["threshold_met"] is False and sixth["precision"] < 0.95 and sixth["anchor"]
    assert sixth["message"].startswith("no anchor reached precision 0.95; best found: " + " AND ".join(sixth["anchor"]))


# ----------------------------------------------------------------------------- the job


def _config(tmp_path: Path, **trainer) -> Path:
    cfg = RuntimeConfig(job=JobInfo(name="income", framework="sklearn"), trainer=IncomeConfig(**trainer))
    path = tmp_path / "config.json"
    path.write_text(dump_runtime_config(cfg), encoding="utf-8")
    return path


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG"))}
    env.update(PYTHONUNBUFFERED="1", SPECC_STORAGE_RETRIES="1", SPECC_STORAGE_BACKOFF="0.05")
    env.update(extra or {})
    return env


def _runtime(args: list[str], env: dict[str, str], *, prelude: str | None = None, timeout: float = 240):
    code = ["-m", "runtime"] if prelude is None else ["-c", f"{prelude}\nfrom runtime.__main__ import main\nmain()"]
    return subprocess.run([sys.executable, *code, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _context(tmp_path: Path, cfg_path: Path):
    from runtime.__main__ import Context
    from runtime.config import load_runtime_config

    cfg = load_runtime_config(cfg_path.read_text())
    return cfg, Context(task=Task(), config=cfg, work_dir=tmp_path / "work")


def test_end_to_end_on_s3_then_serve_in_a_fresh_process(s3, tmp_path, book):
    put_file(s3, "data", "income/adult.data", ADULT)
    s3.client().make_bucket("models")
    cfg = _config(tmp_path, explain_rows=[0])
    p = _runtime(["--config", str(cfg)], _env(s3.env()))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "train accuracy 0.9655, test accuracy 0.8559" in p.stderr
    client = s3.client()
    names = sorted(o.object_name for o in client.list_objects("models", prefix="income/1/", recursive=True))
    assert names == ["income/1/explanations.json", "income/1/income.joblib", "income/1/metrics.json"]
    metrics = json.loads(client.get_object("models", "income/1/metrics.json").read())
    assert abs(metrics["train_accuracy"] - BOOK_TRAIN_ACC) <= TOLERANCE
    assert abs(metrics["test_accuracy"] - BOOK_TEST_ACC) <= TOLERANCE
    assert metrics["sizes"]["model_bytes"] > 0 and metrics["versions"]["sklearn"]
    assert metrics["explanations"] == "ok" and metrics["timings"]["fit_s"] > 0
    print(json.dumps(metrics["timings"]))
    expl = json.loads(client.get_object("models", "income/1/explanations.json").read())
    assert expl["status"] == "ok" and [r["row"] for r in expl["rows"]] == [0]
    assert "Marital Status = Separated" in expl["rows"][0]["anchor"] and expl["rows"][0]["threshold_met"]

    model = tmp_path / "income.joblib"
    client.fget_object("models", "income/1/income.joblib", str(model))
    pipeline, _, _, X_test, _ = book
    rows = X_test[:25]
    script = textwrap.dedent(f"""
        import json, sys, joblib, numpy as np
        model = joblib.load({str(model)!r})
        rows = np.array(json.loads(sys.stdin.read()))
        print(json.dumps(model.predict(rows).tolist()), type(model).__name__, sorted(model.named_steps), sep="\\n")
    """)
    p = subprocess.run([sys.executable, "-c", script], input=json.dumps(rows.tolist()), capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=_env())
    assert p.returncode == 0, p.stderr[-2000:]
    served, kind, steps = p.stdout.strip().split("\n")
    assert kind == "Pipeline" and steps == "['forest', 'preprocess']"
    assert json.loads(served) == pipeline.predict(rows).tolist()


def test_corrupt_data_exits_1_with_the_line(s3, tmp_path):
    lines = ADULT.read_text(encoding="utf-8").split("\n")[:50]
    lines[41] = lines[41].replace("<=50K", "maybe").replace(">50K", "maybe")
    put_bytes(s3, "data", "income/adult.data", "\n".join(lines).encode())
    p = _runtime(["--config", str(_config(tmp_path))], _env(s3.env()))
    assert p.returncode == ExitCode.FAILED == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("specc-runtime:")]
    assert errors == ["specc-runtime: error: s3://data/income/adult.data:42: Target: expected one of <=50K, >50K, got 'maybe'"]
    assert "Traceback" not in p.stderr


def test_alibi_missing_trains_exports_and_records_the_skip(tmp_path):
    out = tmp_path / "model"
    cfg = _config(tmp_path, data_uri=str(ADULT), export_uri=str(out), n_estimators=5, train_rows=8000)
    p = _runtime(["--config", str(cfg)], _env(), prelude="import sys; sys.modules['alibi'] = None")
    assert p.returncode == 0, p.stderr[-3000:]
    assert ("explanations skipped: alibi not installed (pip install 'specc[explain]'; alibi is BSL 1.1)") in p.stderr
    expl = json.loads((out / "explanations.json").read_text())
    assert expl["status"] == "skipped" and expl["rows"] == []
    assert expl["reason"] == "alibi not installed (pip install 'specc[explain]'; alibi is BSL 1.1)"
    assert json.loads((out / "metrics.json").read_text())["explanations"] == "skipped"
    assert (out / "income.joblib").stat().st_size > 0


def test_explain_false_skips_in_process(tmp_path):
    from runtime.trainers.income import SKIP_DISABLED, run

    out = tmp_path / "model"
    cfg, ctx = _context(tmp_path, _config(tmp_path, data_uri=str(ADULT), export_uri=str(out), n_estimators=3,
                                          train_rows=5000, explain=False))
    metrics = run(cfg, ctx)
    assert metrics["explanations"] == "skipped" and metrics["train_rows"] == 5000
    assert metrics["test_rows"] == 32_561 - 5001
    expl = json.loads((out / "explanations.json").read_text())
    assert expl == {"threshold": 0.95, "anchor_seed": 1, "disc_perc": [25, 50, 75], "status": "skipped",
                    "reason": SKIP_DISABLED, "rows": []}


@pytest.mark.parametrize(
    "trainer, message",
    [
        ({"train_rows": 32_560}, "trainer.train_rows: 32560 leaves no test rows"),
        ({"explain_rows": [0, 2560]}, "trainer.explain_rows: 2560 is not a test row (there are 2560)"),
    ],
    ids=["train-rows", "explain-rows"],
)
def test_config_that_does_not_fit_the_data(tmp_path, trainer, message):
    from runtime.trainers.income import run

    cfg, ctx = _context(tmp_path, _config(tmp_path, data_uri=str(ADULT), export_uri=str(tmp_path / "m"), **trainer))
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        run(cfg, ctx)
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(shutil.which("specc", path=str(Path(sys.executable).parent)) is None, reason="specc not installed")
def test_specc_run_local_income_spec(s3, tmp_path):
    """The committed spec, rendered and run as its batch Job would run, against the S3 server."""
    put_file(s3, "data", "income/adult.data", ADULT)
    s3.client().make_bucket("models")
    specc = shutil.which("specc", path=str(Path(sys.executable).parent))
    p = subprocess.run([specc, "run", "specs/income.yaml", "--local", "--work-dir", str(tmp_path / "run")],
                       cwd=REPO, env=_env(s3.env()), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    client = s3.client()
    expl = json.loads(client.get_object("models", "income/1/explanations.json").read())
    assert [(r["row"], r["threshold_met"]) for r in expl["rows"]] == [(0, True), (6, False)]
    metrics = json.loads(client.get_object("models", "income/1/metrics.json").read())
    assert abs(metrics["test_accuracy"] - BOOK_TEST_ACC) <= TOLERANCE
