"""The built-in `recommender` trainer: book-faithful preprocessing, bad data, the model and its
engine against Keras, export and serving.

The run through `python -m runtime` against the moto S3 server trains 1 epoch on the book's data;
the 2-worker MultiWorkerMirroredStrategy run trains 1 epoch on a 4,000-line sample (the chief alone
writes its checkpoint); `specc run specs/recommender.yaml --local` trains the spec's 3 epochs. The
`slow` test compares with the book's pandas pipeline on the full data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import DATA, REPO, free_port, put_bytes, put_file

from runtime.config import JobInfo, RecommenderConfig, RuntimeConfig, StorageConfig, dump_runtime_config
from runtime.errors import DataError
from runtime.trainers import recommender as rec

TRX = DATA / "recommender" / "trx_data.csv"
USERS = DATA / "recommender" / "recommend_1.csv"


def book_preprocess(csv: Path | str) -> pd.DataFrame:
    """The book notebook's pandas pipeline, verbatim (apply/melt/groupby/pivot/min-max/melt/dropna)."""
    transactions = pd.read_csv(csv)
    transactions["products"] = transactions["products"].apply(lambda x: [int(i) for i in x.split("|")])
    data = (pd.melt(transactions.set_index("customerId")["products"].apply(pd.Series).reset_index(),
                    id_vars=["customerId"], value_name="products")
            .dropna().drop(["variable"], axis=1)
            .groupby(["customerId", "products"]).agg({"products": "count"})
            .rename(columns={"products": "purchase_count"}).reset_index()
            .rename(columns={"products": "productId"}))
    data["productId"] = data["productId"].astype(np.int64)
    df_matrix = pd.pivot_table(data, values="purchase_count", index="customerId", columns="productId")
    df_matrix_norm = (df_matrix - df_matrix.min()) / (df_matrix.max() - df_matrix.min())
    d = df_matrix_norm.reset_index()
    d.index.names = ["scaled_purchase_freq"]
    return pd.melt(d, id_vars=["customerId"], value_name="scaled_purchase_freq").dropna()


# ---------------------------------------------------------------- preprocessing


def test_book_counts_on_full_data():
    r = rec.preprocess(TRX.read_bytes(), str(TRX))
    assert len(r) == 133_585
    assert (len(r.customers), len(r.products)) == (24_429, 300)
    assert int(r.customers.max()) + 1 == 28_606  # the book's n_customers (we use the compact 24,429)
    # sorted by productId, then customerId, like the book's melt of the pivot
    order = np.lexsort((r.customer_ids, r.product_ids))
    assert (order == np.arange(len(r))).all()
    assert r.ratings.dtype == np.float32 and r.ratings.min() == 0.0 and r.ratings.max() == 1.0
    assert (r.customers[r.customer_index] == r.customer_ids).all()
    assert (r.products[r.product_index] == r.product_ids).all()


def test_matches_book_pandas_on_a_sample(tmp_path):
    sample = tmp_path / "trx.csv"
    sample.write_text("".join(TRX.read_text().splitlines(keepends=True)[:3001]))
    want = book_preprocess(sample)
    got = rec.preprocess(sample.read_bytes(), str(sample))
    # The book's pivot turns products whose counts are all equal (max == min) into NaN and drops
    # them; we keep those rows at 0.0. Every other row matches the book exactly, in its order.
    _, p, counts = rec.purchase_counts(*rec.parse_transactions(sample.read_bytes(), "s"))
    constant = {int(q) for q in np.unique(p) if counts[p == q].min() == counts[p == q].max()}
    assert constant and not constant & set(want.productId.tolist())
    dropped = np.isin(got.product_ids, list(constant))
    assert (got.ratings[dropped] == 0.0).all()
    assert (~dropped).sum() == len(want) > 5000
    np.testing.assert_array_equal(got.customer_ids[~dropped], want.customerId.to_numpy(np.int64))
    np.testing.assert_array_equal(got.product_ids[~dropped], want.productId.to_numpy(np.int64))
    np.testing.assert_array_equal(got.ratings[~dropped], want.scaled_purchase_freq.to_numpy(np.float32))


@pytest.mark.slow
def test_matches_book_pandas_on_full_data():
    """The book's data has no constant product: the output is the book's, row for row."""
    want = book_preprocess(TRX)
    got = rec.preprocess(TRX.read_bytes(), str(TRX))
    np.testing.assert_array_equal(got.customer_ids, want.customerId.to_numpy(np.int64))
    np.testing.assert_array_equal(got.product_ids, want.productId.to_numpy(np.int64))
    np.testing.assert_array_equal(got.ratings, want.scaled_purchase_freq.to_numpy(np.float32))


def test_counts_and_scaling_by_hand():
    data = b"customerId,products\n7,1|2|2\n3,2\n\n7,2|5\n3,5|5\n"
    r = rec.preprocess(data, "t.csv")
    # pairs sorted by product then customer: (7,1)x1 (3,2)x1 (7,2)x3 (3,5)x2 (7,5)x1
    assert r.product_ids.tolist() == [1, 2, 2, 5, 5]
    assert r.customer_ids.tolist() == [7, 3, 7, 3, 7]
    # product 1 has a single count (max == min): kept as 0.0 where the book's pivot gives NaN
    assert r.ratings.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert r.customers.tolist() == [3, 7] and r.products.tolist() == [1, 2, 5]


@pytest.mark.parametrize("body, line, message", [
    (b"", 1, "empty file"),
    (b"customerId,products\n", 2, "no transactions"),
    (b"customer,products\n1,2\n", 1, "header must be 'customerId,products'"),
    (b"customerId,products\n1,2\n2x,3|4\n", 3, "customerId must be a non-negative integer, found '2x'"),
    (b"customerId,products\n1,2\n-4,3\n", 3, "customerId must be a non-negative integer"),
    (b"customerId,products\n1,2\n\n5\n", 4, "expected 2 columns (customerId,products), found 1"),
    (b"customerId,products\n1,2,3\n", 2, "expected 2 columns (customerId,products), found 3"),
    (b"customerId,products\n1,2\n2,\n", 3, "products must be non-negative integer ids joined by '|', found ''"),
    (b"customerId,products\n1,2|x|3\n", 2, "products must be non-negative integer ids joined by '|'"),
    (b"customerId,products\n1,2\n2,3\xff\n", 3, "not UTF-8"),
])
def test_malformed_transactions_name_file_and_line(body, line, message):
    uri = "s3://data/recommender/transactions.csv"
    with pytest.raises(DataError) as err:
        rec.preprocess(body, uri)
    assert str(err.value).startswith(f"{uri}:{line}: ")
    assert message in str(err.value)
    assert err.value.line == line and err.value.source == uri


def test_users_file_parsed_and_checked():
    assert rec.parse_users(USERS.read_bytes(), "u.csv").shape == (1000,)
    with pytest.raises(DataError, match=r"^u.csv:3: customerId must be"):
        rec.parse_users(b"customerId\n1\nabc\n", "u.csv")


def test_split_shuffle_is_seeded_and_tail_is_the_book_cut():
    tr, va = rec.split_indices(133_585, 0.25, "shuffle", 0)
    assert (len(tr), len(va)) == (100_188, 33_397)  # "Train on 100188 samples, validate on 33397"
    np.testing.assert_array_equal(np.r_[tr, va], np.random.default_rng(0).permutation(133_585))
    tr, va = rec.split_indices(10, 0.25, "tail", 0)
    assert tr.tolist() == list(range(7)) and va.tolist() == [7, 8, 9]


@pytest.mark.parametrize("text, ok", [("recommender\n", True), ("  mymodel-2.1 \n", True),
                                      ("../etc", False), ("a/b", False), ("", False), (".hidden", False)])
def test_directory_name_from_file_is_one_safe_segment(tmp_path, text, ok):
    from runtime.storage import Storage

    f = tmp_path / "directory.txt"
    f.write_text(text)
    cfg = RecommenderConfig(directory_uri=str(f))
    storage = Storage.from_config(StorageConfig(), env={})
    if ok:
        assert rec.export_directory(cfg, storage) == text.strip()
    else:
        with pytest.raises(DataError, match=rf"^{f}:1: directory name must be one safe path segment"):
            rec.export_directory(cfg, storage)
    assert rec.export_directory(RecommenderConfig(export_directory="given", directory_uri=str(f)), storage) == "given"


# ---------------------------------------------------------------- end to end


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPECC_", "TF_CONFIG"))}
    base.update(PYTHONUNBUFFERED="1", SPECC_STORAGE_RETRIES="2", SPECC_STORAGE_BACKOFF="0.05")
    base.update(extra)
    return base


def _write_config(path: Path, trainer: RecommenderConfig) -> Path:
    path.write_text(dump_runtime_config(RuntimeConfig(job=JobInfo(name="recommenderjob", framework="tensorflow"),
                                                      trainer=trainer)))
    return path


def _book_bucket(s3) -> None:
    """Example 7-1: bucket `data`, recommender/{users,transactions}.csv and directory.txt."""
    put_file(s3, "data", "recommender/users.csv", USERS)
    put_file(s3, "data", "recommender/transactions.csv", TRX)
    put_bytes(s3, "data", "recommender/directory.txt", b"recommender\n")
    s3.client().make_bucket("models")


def _download(s3, bucket: str, prefix: str, dest: Path) -> list[str]:
    c = s3.client()
    names = []
    for o in c.list_objects(bucket, prefix=prefix, recursive=True):
        rel = o.object_name[len(prefix):]
        c.fget_object(bucket, o.object_name, str(dest / rel))
        names.append(rel)
    return sorted(names)


def _serve(model_dir: Path, users, products) -> np.ndarray:
    """Load the SavedModel in a fresh interpreter and call its default signature."""
    code = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "a = json.loads(sys.argv[2])\n"
        "out = f(users=tf.constant(a[0], tf.int64), products=tf.constant(a[1], tf.int64))\n"
        "print(json.dumps({k: [v.dtype.name, v.numpy().tolist()] for k, v in out.items()}))\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(model_dir), json.dumps([list(users), list(products)])],
                       env=_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert list(out) == ["predictions"] and out["predictions"][0] == "float32"
    return np.array(out["predictions"][1])


def test_end_to_end_on_book_data_in_s3(s3, tmp_path):
    _book_bucket(s3)
    cfg = _write_config(tmp_path / "cfg.json", RecommenderConfig(epochs=1))
    p = subprocess.run([sys.executable, "-m", "runtime", "--config", str(cfg)], cwd=REPO, env=_env(**s3.env()),
                       capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "epoch 1/1: loss" in p.stderr  # progress is visible
    model = tmp_path / "model"
    files = _download(s3, "models", "recommender/1/", model)
    assert {"saved_model.pb", "ids.json", "metrics.json"} <= set(files)
    assert any(f.startswith("variables/") for f in files)
    assert not [o for o in s3.client().list_objects("models", recursive=True)
                if not o.object_name.startswith("recommender/1/")]  # no staging leftovers

    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["rows"] == 133_585 and metrics["split"]["train"] == 100_188
    assert metrics["split"]["kind"] == "shuffle" and metrics["hyperparameters"]["batch_size"] == 64
    assert len(metrics["loss"]) == len(metrics["val_loss"]) == 1 and metrics["samples_per_s"] > 0
    # one epoch already beats predicting the training mean on the shuffled split (0.0136)
    assert metrics["val_loss"][0] < metrics["val_msle_mean_predictor"] - 0.001
    ids = json.loads((model / "ids.json").read_text())
    assert len(ids["customers"]) == 24_429 and len(ids["products"]) == 300

    # rate pairs from the data, plus an unknown customer and an unknown product
    sample = rec.preprocess(TRX.read_bytes(), "trx")
    users = [int(x) for x in sample.customer_ids[:5]] + [999_999, int(sample.customer_ids[0])]
    products = [int(x) for x in sample.product_ids[:5]] + [int(sample.product_ids[0]), 12_345]
    pred = _serve(model, users, products)
    assert pred.shape == (7,) and np.isfinite(pred).all()
    assert pred[5] == pred[6] == np.float32(ids["unknown_fallback"])
    assert abs(ids["unknown_fallback"] - metrics["train_mean"]) < 1e-9
    assert len(set(pred[:5].round(6))) > 1  # known pairs are rated by the network, not the fallback


def test_two_workers_train_together_and_only_the_chief_exports(tmp_path):
    sample = tmp_path / "trx.csv"
    sample.write_text("".join(TRX.read_text().splitlines(keepends=True)[:4001]))
    root = tmp_path / "models"
    cfg = _write_config(tmp_path / "cfg.json", RecommenderConfig(
        users_uri=str(USERS), transactions_uri=str(sample), export_directory="rec", model_root=str(root), epochs=1,
        checkpoint_uri=str(tmp_path / "ckpt")))
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        work = tmp_path / f"work{i}"
        procs.append(subprocess.Popen([sys.executable, "-m", "runtime", "--config", str(cfg), "--work-dir", str(work)],
                                      cwd=REPO, env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=300)[1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, err in zip(procs, outs):
        assert proc.returncode == 0, err[-3000:]
    assert "rank 0 of 2" in outs[0] and "rank 1 of 2" in outs[1]
    assert "exported SavedModel" in outs[0] and "exported" not in outs[1]
    assert sorted(p.name for p in root.iterdir()) == ["rec"]
    assert sorted(p.name for p in (root / "rec").iterdir()) == ["1"]
    metrics = json.loads((root / "rec" / "1" / "metrics.json").read_text())
    assert metrics["workers"] == 2 and len(metrics["val_loss"]) == 1
    assert metrics["hyperparameters"]["batch_size"] == 64  # global batch, split across the workers
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["ckpt-1", "latest"]
    assert outs[0].count("/ckpt-1/ saved") == 1 and " saved (" not in outs[1]
    state = json.loads((tmp_path / "ckpt" / "ckpt-1" / "state.json").read_text())
    assert state["epoch"] == 1 and state["fingerprint"]["optimizer_state"] == rec.OPTIMIZER_STATE


def test_specc_run_local_book_spec(s3, tmp_path):
    specc = Path(sys.executable).with_name("specc")
    if not specc.exists():
        pytest.fail("specc is not installed in the virtualenv")
    _book_bucket(s3)
    env = _env(**s3.env())
    p = subprocess.run([str(specc), "run", "specs/recommender.yaml", "--local", "--work-dir", str(tmp_path / "run")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    model = tmp_path / "model"
    files = _download(s3, "models", "recommender/1/", model)
    assert "saved_model.pb" in files
    metrics = json.loads((model / "metrics.json").read_text())
    assert len(metrics["val_loss"]) == 3 and metrics["rows"] == 133_585
    assert min(metrics["val_loss"]) < metrics["val_msle_mean_predictor"]
    assert _serve(model, [int(rec.parse_users(USERS.read_bytes(), "u")[0])], [20]).shape == (1,)


def keras_model(keras, n_customers: int, n_products: int, n_factors: int, p_dropout: float):
    """The book's DeepCollaborativeFiltering in Keras layers, as the notebook builds it: the oracle
    the trainer's own model (rec.embed, rec.head) and engine are checked against."""
    layers = keras.layers
    x1 = keras.Input(shape=(1,), dtype="int32")
    P = layers.Reshape((n_factors,))(layers.Embedding(n_customers, n_factors)(x1))
    x2 = keras.Input(shape=(1,), dtype="int32")
    Q = layers.Reshape((n_factors,))(layers.Embedding(n_products, n_factors)(x2))
    x = layers.Dropout(p_dropout)(layers.Concatenate(axis=1)([P, Q]))
    x = layers.Dropout(p_dropout)(layers.Activation("relu")(layers.Dense(n_factors)(x)))
    return keras.Model([x1, x2], layers.Dense(1)(x))


def test_serving_graph_matches_the_keras_model():
    """The exported signature's plain-TF forward pass equals Keras inference; unknown ids fall back."""
    from runtime.trainers._keras import load_tf

    tf, keras = load_tf()
    keras.utils.set_random_seed(3)
    model = keras_model(keras, 5, 4, 8, 0.2)
    model.set_weights([w + np.random.default_rng(i).normal(0, 0.3, w.shape).astype(np.float32)
                       for i, w in enumerate(model.get_weights())])
    customers, products = np.array([3, 10, 11, 40, 99]), np.array([0, 2, 7, 8])
    module = rec.make_serving_module(tf, model.get_weights(), customers, products, 0.25)
    users = tf.constant([3, 10, 11, 40, 99, 99, 5, 3], tf.int64)
    prods = tf.constant([0, 2, 7, 8, 0, 1, 0, 9], tf.int64)
    got = module.serve(users, prods)["predictions"].numpy()
    want = model([np.array([[0], [1], [2], [3], [4]]), np.array([[0], [1], [2], [3], [0]])], training=False).numpy()[:, 0]
    np.testing.assert_allclose(got[:5], want, rtol=1e-6, atol=1e-6)
    assert got.dtype == np.float32 and (got[5:] == np.float32(0.25)).all()


def _careful(data: bytes):
    """parse_transactions through its careful (pandas) path: a trailing blank line skips the fast one."""
    try:
        c, p = rec.parse_transactions(data + b"\n\n", "t.csv")
        return c.tolist(), p.tolist()
    except DataError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789,|\n \r", max_size=12), min_size=1, max_size=8),
       st.sampled_from([b"\n", b"\r\n"]))
def test_fast_parse_agrees_with_the_careful_path(lines, eol):
    """The numpy fast path accepts only what the careful path accepts, with the same pairs."""
    data = b"customerId,products" + eol + eol.join(ln.encode() for ln in lines)
    fast = rec._parse_clean_transactions(data)
    if fast is not None:
        assert (fast[0].tolist(), fast[1].tolist()) == _careful(data)


def test_fast_parse_takes_the_book_file():
    fast = rec._parse_clean_transactions(TRX.read_bytes())
    assert fast is not None
    want = rec.parse_transactions(TRX.read_bytes() + b"\n\n", "trx")
    np.testing.assert_array_equal(fast[0], want[0])
    np.testing.assert_array_equal(fast[1], want[1])


def test_engine_adam_is_keras_adam(monkeypatch):
    """The engine's steps equal Keras' Adam on dense gradients (the textbook update), including
    repeated rows in a batch, padding rows, and the folding of the scaled moments (made frequent)."""
    from runtime.trainers._keras import load_tf

    tf, keras = load_tf()
    monkeypatch.setattr(rec, "_FOLD_EVERY", 16)  # fold every 16 steps instead of 256
    rng = np.random.default_rng(5)
    k, b = 150, 8
    users = rng.integers(0, 12, size=(k, b)).astype(np.int32)  # many repeats per batch
    products = rng.integers(0, 3, size=(k, b)).astype(np.int32)
    y = rng.random(size=(k, b)).astype(np.float32)
    w = np.ones((k, b), np.float32)
    w[-3, 5:] = 0.0  # the last batch with rows is padded
    w[-2:] = 0.0  # the call is padded with two empty batches (no step runs for them)

    keras.utils.set_random_seed(1)
    ref = keras_model(keras, 12, 3, 4, 0.0)
    engine = rec.Engine(tf, ref.get_weights(), 0.01, 0.0)
    keep = rec.dropout_keep(0, 0, 0, (k, b, 12), 0.0)
    loss_sum, count = engine.train_chunk(*(tf.constant(a) for a in (users, products, y, w, keep)))

    opt = keras.optimizers.Adam(0.01)
    losses, counts = [], []
    for i in range(k - 2):  # the batches with rows
        m = w[i]
        with tf.GradientTape() as tape:
            pred = ref((users[i][:, None], products[i][:, None]), training=True)
            loss = tf.reduce_sum(keras.losses.mean_squared_logarithmic_error(y[i][:, None], pred) * m) / m.sum()
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, ref.trainable_variables)]
        opt.apply_gradients(zip(grads, ref.trainable_variables))
        losses.append(float(loss) * m.sum())
        counts.append(m.sum())
    assert int(engine.step.numpy()) == k - 2 and float(count) == sum(counts)
    np.testing.assert_allclose(float(loss_sum), sum(losses), rtol=1e-4)
    for got, want in zip(engine.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
    # a call ends folded: the checkpointed moments are Keras' own
    assert all(s.numpy().tolist() == [1.0, 1.0] for s in engine.scale)
    moments = opt.variables[1:]  # m and v of each variable in turn
    for i, (m, v) in enumerate(zip(engine.m, engine.v)):
        np.testing.assert_allclose(m.numpy(), moments[2 * i].numpy(), rtol=2e-4, atol=1e-7)
        np.testing.assert_allclose(v.numpy(), moments[2 * i + 1].numpy(), rtol=2e-4, atol=1e-9)


def test_the_model_is_the_keras_model_with_the_given_dropout_masks():
    """embed + head is the Keras model in training mode with the given dropout masks (masked units
    zeroed, kept ones scaled by 1 / (1 - rate)) and, without masks, Keras inference; msle is Keras'."""
    from runtime.trainers._keras import load_tf

    tf, keras = load_tf()
    keras.utils.set_random_seed(2)
    model = keras_model(keras, 6, 4, 3, 0.25)
    weights = model.get_weights()
    users, products = np.array([0, 5, 2, 2], np.int32), np.array([3, 0, 1, 1], np.int32)
    keep = rec.dropout_keep(7, 1, 0, (1, 4, 9), 0.25)[0]
    ec, ep, k1, b1, k2, b2 = weights
    x = np.concatenate([ec[users], ep[products]], axis=1) * keep[:, :6] / 0.75
    h = np.maximum(x @ k1 + b1, 0) * keep[:, 6:] / 0.75
    got = rec.head(tf, weights, rec.embed(tf, weights, users, products), keep, 0.25).numpy()
    np.testing.assert_allclose(got, (h @ k2 + b2)[:, 0], rtol=1e-5, atol=1e-6)
    pred = rec.predict(tf, weights, users, products).numpy()
    np.testing.assert_allclose(pred, model([users[:, None], products[:, None]], training=False).numpy()[:, 0],
                               rtol=1e-6, atol=1e-7)
    y = np.array([0.0, 0.5, 1.0, 0.25], np.float32)
    want = keras.losses.mean_squared_logarithmic_error(y[:, None], pred[:, None]).numpy()
    np.testing.assert_allclose(rec.msle(tf, y, pred).numpy(), want, rtol=1e-6)


def test_dropout_masks_are_seeded_per_epoch_and_call():
    a = rec.dropout_keep(3, 2, 0, (50, 64, 150), 0.2)
    assert a.dtype == bool and a.shape == (50, 64, 150)
    assert np.array_equal(a, rec.dropout_keep(3, 2, 0, (50, 64, 150), 0.2))  # a resumed run draws the same
    assert not np.array_equal(a, rec.dropout_keep(3, 3, 0, (50, 64, 150), 0.2))
    assert not np.array_equal(a, rec.dropout_keep(3, 2, 1, (50, 64, 150), 0.2))
    assert abs(a.mean() - 0.8) < 0.005
    assert rec.dropout_keep(3, 2, 0, (50, 64, 150), 0.0).shape == (50, 1, 1)


def test_every_epoch_visits_the_rows_in_a_new_seeded_order():
    orders = [rec.epoch_order(1000, 7, e) for e in range(3)]
    for o in orders:
        assert sorted(o.tolist()) == list(range(1000))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert np.array_equal(orders[1], rec.epoch_order(1000, 7, 1))  # a resumed run sees the same order
    assert not np.array_equal(orders[0], rec.epoch_order(1000, 8, 0))


def test_initial_weights_are_keras_3s_for_the_book_model(tmp_path):
    """keras_initial_weights equals the reference notebook's model under Keras 3 after
    keras.utils.set_random_seed(seed) (max id + 1 rows indexed by raw id), row for row."""
    from runtime.trainers._keras import load_tf

    tf, _ = load_tf()
    customers, products, factors, seed = np.array([0, 3, 4, 9]), np.array([2, 5]), 6, 11
    code = (
        "import sys, numpy as np, keras\n"
        "from keras import layers\n"
        "nc, npr, nf, seed = (int(a) for a in sys.argv[1:5])\n"
        "keras.utils.set_random_seed(seed)\n"
        "x1 = keras.Input(shape=(1,)); x2 = keras.Input(shape=(1,))\n"
        "P = layers.Reshape((nf,))(layers.Embedding(nc, nf)(x1))\n"
        "Q = layers.Reshape((nf,))(layers.Embedding(npr, nf)(x2))\n"
        "x = layers.concatenate([P, Q], axis=1)\n"
        "x = layers.Dropout(0.2)(x)\n"  # layers made in the notebook's order: each draws a seed
        "x = layers.Dense(nf)(x)\n"
        "x = layers.Activation('relu')(x)\n"
        "x = layers.Dropout(0.2)(x)\n"
        "m = keras.Model([x1, x2], layers.Dense(1)(x))\n"
        "np.savez(sys.argv[5], *m.get_weights())\n"
    )
    out = tmp_path / "k3.npz"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    p = subprocess.run([sys.executable, "-c", code, "10", "6", str(factors), str(seed), str(out)],
                       env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    with np.load(out) as z:
        want = [z[f"arr_{i}"] for i in range(6)]
    want[0], want[1] = want[0][customers], want[1][products]
    got = rec.keras_initial_weights(tf, seed, customers, products, factors)
    assert [g.shape for g in got] == [w.shape for w in want]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
