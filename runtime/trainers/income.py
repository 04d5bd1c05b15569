"""Built-in `income` trainer (book section 6): random forest on UCI adult, alibi Anchor explanations.

Reads the raw adult.data through ctx.storage, prepares it as alibi's fetch_adult does
(runtime.adult), splits it as the book, fits the book's ColumnTransformer + RandomForestClassifier,
explains chosen test rows with alibi's AnchorTabular (optional extra, BSL 1.1), and publishes
`income.joblib` (preprocessor + forest in one Pipeline, predicting on raw label-encoded rows),
`metrics.json` and `explanations.json` to `export_uri`.

Same trees, faster: the forest is fitted on the dense transform with n_jobs threads (the sparse
input the book passes gives identical trees, an order of magnitude slower), and the explainer
queries `FastPredictor`, which gives the exact predictions of the book's sequential
`clf.predict(preprocessor.transform(x))` without sklearn's per-call validation and joblib cost.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from runtime.adult import TARGET_NAMES, Adult, parse_adult, split_book
from runtime.errors import ConfigError

log = logging.getLogger("specc.income")

MODEL_FILE = "income.joblib"
METRICS_FILE = "metrics.json"
EXPLANATIONS_FILE = "explanations.json"
DISC_PERC = (25, 50, 75)
SKIP_NOT_INSTALLED = "alibi not installed (pip install 'specc[explain]'; alibi is BSL 1.1)"
SKIP_DISABLED = "explain is false in the trainer config"
#: Batches at least this large are pushed through the trees on several threads.
_PARALLEL_ROWS = 4096


# ----------------------------------------------------------------------------- model


def build_pipeline(adult: Adult, n_estimators: int, seed: int, n_jobs: int):
    """The book's unfitted preprocessor and forest, as a two-step Pipeline."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ordinal = Pipeline(steps=[("imputer", SimpleImputer(strategy="median")), ("scaler", StandardScaler())])
    categorical = Pipeline(steps=[("imputer", SimpleImputer(strategy="median")),
                                  ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    preprocessor = ColumnTransformer(transformers=[("num", ordinal, adult.ordinal), ("cat", categorical, adult.categorical)])
    # The book calls np.random.seed(seed) and builds the forest with random_state=None, which
    # draws every tree's seed from the global RandomState; a private RandomState(seed) draws
    # the same seeds (up front, in order), so the trees match whatever n_jobs is.
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=np.random.RandomState(seed), n_jobs=n_jobs)
    return Pipeline(steps=[("preprocess", preprocessor), ("forest", forest)])


def fit_pipeline(pipeline, X_train: np.ndarray, y_train: np.ndarray) -> dict:
    """Fit the preprocessor, then the forest on its dense float32 output; returns timings."""
    pre, forest = pipeline.named_steps["preprocess"], pipeline.named_steps["forest"]
    t0 = time.perf_counter()
    encoded = pre.fit_transform(X_train)
    if hasattr(encoded, "toarray"):
        encoded = encoded.toarray()
    # Trees split dense and sparse input identically; dense is far faster to fit.
    encoded = np.ascontiguousarray(encoded, dtype=np.float32)
    t1 = time.perf_counter()
    forest.fit(encoded, y_train)
    t2 = time.perf_counter()
    return {"preprocess_s": t1 - t0, "fit_s": t2 - t1}


class FastPredictor:
    """`pipeline.predict` on raw label-encoded rows, with identical results, for many small batches.

    The transform is plain numpy (median imputation, standard scaling, one-hot lookup with
    unknown categories ignored) into the dense float32 matrix the trees read; class
    probabilities are the trees' leaf values summed in tree order and divided by the number of
    trees, exactly as RandomForestClassifier.predict_proba does with n_jobs=1 (with several
    jobs sklearn adds the trees in completion order, which can move a near-tie). Large batches
    find their leaves on `n_jobs` threads; the sum stays in tree order.
    """

    def __init__(self, pipeline, n_jobs: int = 1):
        pre, forest = pipeline.named_steps["preprocess"], pipeline.named_steps["forest"]
        blocks = {name: (trans, list(cols)) for name, trans, cols in pre.transformers_ if name != "remainder"}
        if set(blocks) != {"num", "cat"} or pre.remainder != "drop":
            raise ValueError("FastPredictor expects the income preprocessor (num + cat, remainder dropped)")
        num, num_cols = blocks["num"]
        cat, cat_cols = blocks["cat"]
        self.n_features = pre.n_features_in_
        self.num_cols = np.asarray(num_cols, dtype=np.intp)
        self.cat_cols = np.asarray(cat_cols, dtype=np.intp)
        self.num_fill = np.asarray(num.named_steps["imputer"].statistics_, dtype=np.float64)
        self.cat_fill = np.asarray(cat.named_steps["imputer"].statistics_, dtype=np.float64)
        scaler = num.named_steps["scaler"]
        self.mean = scaler.mean_ if scaler.with_mean else None
        self.scale = scaler.scale_ if scaler.with_std else None
        self.categories = [np.asarray(c, dtype=np.float64) for c in cat.named_steps["onehot"].categories_]
        offsets = np.cumsum([0] + [len(c) for c in self.categories])
        self.offsets = len(num_cols) + offsets[:-1]
        self.width = int(len(num_cols) + offsets[-1])
        self.classes = forest.classes_
        n_classes = int(forest.n_classes_)
        self.trees = [e.tree_ for e in forest.estimators_]
        # Every tree's leaf values (class fractions) in one table; tree t's node i is row offsets[t] + i.
        self.table = np.concatenate([t.value[:, 0, :n_classes] for t in self.trees])
        self.node_offsets = np.cumsum([0] + [t.node_count for t in self.trees])[:-1, None]
        from joblib import effective_n_jobs

        self.n_jobs = max(1, effective_n_jobs(n_jobs))
        self._pipeline = pipeline

    def transform(self, X) -> np.ndarray:
        """The preprocessor's output for raw rows, dense float32."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        out = np.zeros((X.shape[0], self.width), dtype=np.float32)
        num = X[:, self.num_cols]  # a copy
        gaps = np.isnan(num)
        if gaps.any():
            num[gaps] = np.broadcast_to(self.num_fill, num.shape)[gaps]
        if self.mean is not None:
            num -= self.mean
        if self.scale is not None:
            num /= self.scale
        out[:, : len(self.num_cols)] = num
        cat = X[:, self.cat_cols]
        gaps = np.isnan(cat)
        if gaps.any():
            cat[gaps] = np.broadcast_to(self.cat_fill, cat.shape)[gaps]
        rows = np.arange(X.shape[0])
        for j, cats in enumerate(self.categories):
            values = cat[:, j]
            pos = np.searchsorted(cats, values)
            known = pos < len(cats)
            known[known] = cats[pos[known]] == values[known]
            out[rows[known], self.offsets[j] + pos[known]] = 1.0
        return out

    def predict_proba(self, X) -> np.ndarray:
        encoded = self.transform(X)
        if self.n_jobs > 1 and len(encoded) >= _PARALLEL_ROWS:
            with ThreadPoolExecutor(self.n_jobs) as pool:
                leaves = np.stack(list(pool.map(lambda tree: tree.apply(encoded), self.trees)))
        else:
            leaves = np.stack([tree.apply(encoded) for tree in self.trees])
        # add.reduce over the leading axis adds tree by tree in order (a plain loop, not the
        # pairwise summation numpy uses along a contiguous axis): the same sums as sklearn.
        proba = np.add.reduce(self.table[leaves + self.node_offsets], axis=0)
        proba /= len(self.trees)
        return proba

    def predict(self, X) -> np.ndarray:
        return self.classes.take(np.argmax(self.predict_proba(X), axis=1), axis=0)

    __call__ = predict

    def matches_pipeline(self, X) -> bool:
        """Whether `transform` equals the fitted preprocessor's float32 output on rows X."""
        ref = self._pipeline.named_steps["preprocess"].transform(X)
        ref = ref.toarray() if hasattr(ref, "toarray") else np.asarray(ref)
        return bool(np.array_equal(self.transform(X), ref.astype(np.float32)))


def predictor_for(pipeline, n_jobs: int, check_rows: np.ndarray):
    """FastPredictor when its transform matches the pipeline on check_rows, else pipeline.predict."""
    fast = FastPredictor(pipeline, n_jobs)
    if fast.matches_pipeline(check_rows):
        return fast
    log.warning("fast transform differs from the fitted preprocessor; using sklearn's (slower) predict")
    pipeline.named_steps["forest"].set_params(n_jobs=1)  # tree-order sums, as the book
    return pipeline.predict


# ----------------------------------------------------------------------------- explanations


def import_anchor_tabular():
    """alibi's AnchorTabular, imported on first use (ModuleNotFoundError when alibi is absent).

    alibi's package init imports TensorFlow and torch whenever they are installed (about 20 s
    of a CPU job's start), though AnchorTabular needs neither; they are hidden from that one
    import (alibi then treats them as absent) and the import is retried plainly if that fails.
    """
    loaded = sys.modules.get("alibi.explainers")
    if loaded is not None:
        return loaded.AnchorTabular
    import scipy.stats  # noqa: F401  scipy and sklearn look torch up in sys.modules on import:
    import sklearn.base  # noqa: F401  import them before torch is hidden
    hidden = [m for m in ("tensorflow", "torch", "keras", "tf_keras") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None
    try:
        from alibi.explainers import AnchorTabular

        return AnchorTabular
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] not in hidden:
            raise
    except Exception:  # noqa: BLE001  a hidden framework was needed after all: plain import below
        pass
    finally:
        for m in hidden:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
    for m in [m for m in sys.modules if m == "alibi" or m.startswith("alibi.")]:
        del sys.modules[m]
    from alibi.explainers import AnchorTabular

    return AnchorTabular


def explain_rows(AnchorTabular, predict, adult: Adult, X_train, X_test, rows, threshold: float, seed: int, ctx=None) -> list[dict]:
    """The book's AnchorTabular explanations of X_test[rows], in order."""
    explainer = AnchorTabular(predict, list(adult.feature_names), categorical_names=adult.category_map, seed=seed)
    explainer.fit(X_train, disc_perc=list(DISC_PERC))
    out = []
    for row in rows:
        if ctx is not None:
            ctx.check_stop()
        t0 = time.perf_counter()
        e = explainer.explain(X_test[row], threshold=threshold)
        seconds = time.perf_counter() - t0
        raw = e.data["raw"]
        met = bool(raw["success"])
        entry = {
            "row": int(row),
            "prediction": TARGET_NAMES[int(np.asarray(raw["prediction"]).ravel()[0])],
            "anchor": [str(a) for a in e.anchor],
            "precision": float(e.precision),
            "coverage": float(e.coverage),
            "threshold_met": met,
            "seconds": round(seconds, 3),
        }
        if not met:
            best = " AND ".join(entry["anchor"]) or "(empty anchor)"
            entry["message"] = (f"no anchor reached precision {threshold:g}; best found: {best} "
                                f"(precision {entry['precision']:.3f}, coverage {entry['coverage']:.3f})")
        log.info("row %d: %s because %s (precision %.3f, coverage %.3f%s, %.2fs)", row, entry["prediction"],
                 " AND ".join(entry["anchor"]) or "(empty anchor)", entry["precision"], entry["coverage"],
                 "" if met else f", below {threshold:g}", seconds)
        out.append(entry)
    return out


# ----------------------------------------------------------------------------- job


@contextmanager
def _timed(timings: dict, key: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _accuracy(predict, X, y) -> float:
    return float(np.mean(predict(X) == y)) if len(y) else float("nan")


def run(cfg, ctx) -> dict:
    """Train, evaluate, explain and publish the income model; returns the metrics."""
    t = cfg.trainer
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with _timed(timings, "load_s"):
        text = ctx.storage.read_text(t.data_uri)
        adult = parse_adult(text, t.data_uri)
    n = len(adult.target)
    if t.train_rows + 1 >= n:
        raise ConfigError(f"trainer.train_rows: {t.train_rows} leaves no test rows ({t.data_uri} has {n} rows; "
                          "the book skips one row between train and test)")
    X_train, y_train, X_test, y_test = split_book(adult, t.seed, t.train_rows)
    if t.explain and t.explain_rows:
        outside = [r for r in t.explain_rows if r >= len(X_test)]
        if outside:
            raise ConfigError(f"trainer.explain_rows: {outside[0]} is not a test row (there are {len(X_test)})")
    log.info("read %s: %d rows; %d train, %d test", t.data_uri, n, len(X_train), len(X_test))
    ctx.check_stop()

    pipeline = build_pipeline(adult, t.n_estimators, t.seed, t.n_jobs)
    timings.update(fit_pipeline(pipeline, X_train, y_train))
    ctx.check_stop()
    with _timed(timings, "evaluate_s"):
        predict = predictor_for(pipeline, t.n_jobs, X_test)
        train_acc, test_acc = _accuracy(predict, X_train, y_train), _accuracy(predict, X_test, y_test)
    log.info("forest of %d trees fitted in %.2fs: train accuracy %.4f, test accuracy %.4f",
             t.n_estimators, timings["fit_s"], train_acc, test_acc)
    ctx.check_stop()

    explanations: dict = {"threshold": t.anchor_threshold, "anchor_seed": t.anchor_seed, "disc_perc": list(DISC_PERC)}
    reason = None if t.explain else SKIP_DISABLED
    if reason is None:
        try:
            with _timed(timings, "explain_import_s"):
                AnchorTabular = import_anchor_tabular()
        except ModuleNotFoundError as exc:
            reason = SKIP_NOT_INSTALLED if (exc.name or "alibi").split(".")[0] == "alibi" else \
                f"alibi cannot be imported: module {exc.name} is missing"
    if reason is None:
        with _timed(timings, "explain_s"):
            rows = explain_rows(AnchorTabular, predict, adult, X_train, X_test, t.explain_rows,
                                t.anchor_threshold, t.anchor_seed, ctx)
        explanations.update(status="ok", rows=rows)
    else:
        log.warning("explanations skipped: %s", reason)
        explanations.update(status="skipped", reason=reason, rows=[])

    import joblib
    import sklearn

    out_dir = Path(ctx.work_dir) / "income-export"
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline.named_steps["forest"].set_params(n_jobs=t.n_jobs)
    with _timed(timings, "export_s"):
        joblib.dump(pipeline, out_dir / MODEL_FILE)
    timings["total_s"] = time.perf_counter() - start
    metrics = {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "train_rows": int(len(X_train)),
        "test_rows": int(len(X_test)),
        "features": len(adult.feature_names),
        "encoded_features": int(pipeline.named_steps["preprocess"].transform(X_test[:1]).shape[1]),
        "n_estimators": t.n_estimators,
        "n_jobs": t.n_jobs,
        "cores": joblib.effective_n_jobs(t.n_jobs),
        "seed": t.seed,
        "explanations": explanations["status"],
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "sizes": {"data_bytes": len(text.encode("utf-8")), "model_bytes": (out_dir / MODEL_FILE).stat().st_size},
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__},
    }
    (out_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (out_dir / EXPLANATIONS_FILE).write_text(json.dumps(explanations, indent=2) + "\n", encoding="utf-8")
    # Deterministic output for the same data and config: a retried pod republishes in place.
    uri = ctx.storage.publish_dir(out_dir, t.export_uri, overwrite=True)
    log.info("published %s, %s, %s to %s", MODEL_FILE, METRICS_FILE, EXPLANATIONS_FILE, uri)
    return metrics
