"""Built-in `recommender` trainer: the book's deep collaborative filtering (chapter 7, section 1).

Pipeline (as the book's notebook, vectorised):
1. read `transactions.csv` (`customerId,products`, products joined by `|`) through ctx.storage;
2. count purchases per (customer, product) -> 133,585 rows on the book's data;
3. min-max scale each product's counts. The book does this on a customers x products pivot, where a
   product whose max == min gives 0/0 = NaN and its rows vanish in `dropna`; here such rows get 0.0
   (scikit-learn's MinMaxScaler convention) so no purchase is silently lost. The book's data has no
   such product, so both give the same 133,585 rows, sorted by productId then customerId;
4. split: seeded shuffle (default) or the book's unshuffled tail (`split: tail`);
5. DeepCollaborativeFiltering (two embeddings -> concat -> dropout -> dense -> relu -> dropout ->
   dense(1)), adam + mean squared logarithmic error, with the spec's hyper-parameters, starting
   from the weights the book's model gets under Keras 3 with the same seed (keras_initial_weights).
   Alone: a whole epoch per XLA call (XlaAdamTrainer), with dropout masks drawn in numpy from
   (seed, epoch) and the validation MSLE computed in numpy; under MultiWorkerMirroredStrategy:
   Keras fit with Keras' Adam. Each epoch visits the training rows in a permutation seeded by
   (seed, epoch);
6. export a SavedModel with the default serving signature (users, products: int64[None]) ->
   predictions: float32[None], plus metrics.json and ids.json, published atomically to
   `<model_root>/<directory>/<version>/`.

Faults: with `checkpoint_uri` (a PVC path or s3:// prefix) the chief saves weights, optimizer state
and the per-epoch history after every epoch (runtime.checkpoint: `ckpt-<epoch>/` folders, a `latest`
pointer written last, the newest 2 kept); every replica resumes from the newest one and trains only
the remaining epochs, and metrics.json records `resumed_from_epoch`, `attempt` and the history of
all attempts. A checkpoint written for other data or hyper-parameters (except `epochs`) is refused.
On SIGTERM (ctx.stop_requested) training stops at the next XLA call boundary - the epoch's end on
the book's data (~1-2 s epochs; at most 2048 steps per call), the epoch's end under MWMS, where the
workers all-reduce their stop flags so that all stop after the same epoch - and the trainer raises
Terminated (exit 143) after the checkpoint of the last finished epoch; an unfinished epoch is
discarded and redone by the next attempt. A peer lost under MWMS is a Rendezvous error (exit 140).

Id mapping: embeddings are indexed by a compact mapping (row i = the i-th smallest id seen in the
transactions) instead of the book's `max id + 1` rows, so sparse or huge ids cost no memory. The
mapping is exported twice: inside the SavedModel (the signature takes raw ids from the data) and as
ids.json. A pair whose customer or product id never occurs in the transactions is rated with the
training mean (the "mean predictor"), which ids.json records as `unknown_fallback`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.config import RecommenderConfig, RuntimeConfig
from runtime.errors import ConfigError, DataError, Rendezvous, Terminated

log = logging.getLogger("specc.recommender")

HEADER = ("customerId", "products")
_DIRECTORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_ID_RE = r"\d{1,18}"
_PRODUCTS_RE = rf"{_ID_RE}(?:\|{_ID_RE})*"
#: Batch size used only to evaluate the validation set (does not change training).
_EVAL_BATCH = 65536
#: At most this many optimizer steps per XLA call on a single worker (a whole epoch on the book's
#: data; every call has the same shape, so XLA compiles once).
_MAX_CHUNK_STEPS = 2048
#: At most this many bytes of dropout masks per XLA call (see max_chunk_steps).
_MAX_MASK_BYTES = 64 << 20
#: Optimizer steps per tf.function call under MultiWorkerMirroredStrategy.
_DIST_STEPS_PER_EXECUTION = 32


@dataclass
class Ratings:
    """Preprocessed training rows plus the id vocabularies (sorted unique raw ids)."""

    customer_ids: np.ndarray  # int64 raw ids, one per row
    product_ids: np.ndarray  # int64 raw ids
    ratings: np.ndarray  # float32 in [0, 1]
    customers: np.ndarray  # sorted unique customer ids (embedding row i <-> customers[i])
    products: np.ndarray  # sorted unique product ids

    @property
    def customer_index(self) -> np.ndarray:
        return np.searchsorted(self.customers, self.customer_ids).astype(np.int32)

    @property
    def product_index(self) -> np.ndarray:
        return np.searchsorted(self.products, self.product_ids).astype(np.int32)

    def __len__(self) -> int:
        return len(self.ratings)


# ---------------------------------------------------------------- parsing and preprocessing


def _decode(data: bytes, source: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(source, "not UTF-8 text", line=data[: exc.start].count(b"\n") + 1) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r") for ln in lines]


def _check_header(lines: list[str], source: str, expected: tuple[str, ...]) -> None:
    want = ",".join(expected)
    if not lines or not lines[0].strip():
        raise DataError(source, f"empty file: expected the header '{want}'", line=1)
    if tuple(h.strip() for h in lines[0].split(",")) != expected:
        raise DataError(source, f"header must be '{want}', found {lines[0][:80]!r}", line=1)


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(~mask)
    return int(bad[0]) if len(bad) else None


_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[[*b"0123456789,|\n"]] = True


def _parse_clean_transactions(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """The fast path of parse_transactions for a file that is exactly the header plus well-formed
    `id,id|id...` lines (no blank lines, spaces or other characters; CRLF allowed): numpy checks
    the structure and parses the numbers. Returns None for anything else (the careful path then
    finds and reports the first problem)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    header, _, body = data.partition(b"\n")
    if header != ",".join(HEADER).encode() or not body:
        return None
    if not body.endswith(b"\n"):
        body += b"\n"
    raw = np.frombuffer(body, dtype=np.uint8)
    if not _ALLOWED[raw].all():
        return None
    where = np.flatnonzero((raw == 44) | (raw == 124) | (raw == 10))  # ',' '|' '\n'
    seps = raw[where]
    # every value has 1..18 digits; ',' only right after a line start, '|' and '\n' only after a value
    # that followed ',' or '|'
    lengths = np.diff(np.r_[-1, where]) - 1
    prev = np.r_[10, seps[:-1]]
    if lengths.min() < 1 or lengths.max() > 18 or not np.array_equal(seps == 44, prev == 10):
        return None
    values = np.fromstring(body.translate(bytes.maketrans(b",|\n", b"   ")), dtype=np.int64, sep=" ")
    if len(values) != len(seps):
        return None
    starts_line = prev == 10  # a value that starts a line is a customer id
    owner = np.maximum.accumulate(np.where(starts_line, np.arange(len(values)), 0))
    products = ~starts_line
    return values[owner[products]], values[products]


def parse_transactions(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse `customerId,products` CSV bytes into one (customer, product) int64 pair per purchase.

    Blank lines are skipped; anything else malformed raises DataError naming `source` and the
    1-based line.
    """
    import pandas as pd

    fast = _parse_clean_transactions(data)
    if fast is not None:
        return fast
    lines = _decode(data, source)
    _check_header(lines, source, HEADER)
    body = pd.Series(lines[1:], dtype=object)
    lineno = np.arange(2, len(lines) + 1)
    keep = (body.str.strip() != "").to_numpy()
    body, lineno = body[keep], lineno[keep]
    if body.empty:
        raise DataError(source, "no transactions after the header", line=len(lines) + 1)

    ncols = body.str.count(",").to_numpy() + 1
    i = _first_bad(ncols == 2)
    if i is not None:
        raise DataError(source, f"expected 2 columns (customerId,products), found {ncols[i]}", line=int(lineno[i]))
    parts = body.str.split(",", n=1, expand=True)
    cust = parts[0].str.strip()
    prods = parts[1].str.replace(r"\s+", "", regex=True)
    i = _first_bad(cust.str.fullmatch(_ID_RE).to_numpy(dtype=bool))
    if i is not None:
        raise DataError(source, f"customerId must be a non-negative integer, found {cust.iloc[i][:40]!r}", line=int(lineno[i]))
    i = _first_bad(prods.str.fullmatch(_PRODUCTS_RE).to_numpy(dtype=bool))
    if i is not None:
        raise DataError(source, f"products must be non-negative integer ids joined by '|', found {prods.iloc[i][:40]!r}",
                        line=int(lineno[i]))

    per_row = prods.str.count(r"\|").to_numpy() + 1
    product = np.array("|".join(prods.tolist()).split("|"), dtype=np.int64)
    customer = np.repeat(cust.to_numpy().astype(np.int64), per_row)
    return customer, product


def purchase_counts(customer: np.ndarray, product: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count purchases per distinct (customer, product); rows sorted by product then customer."""
    order = np.lexsort((customer, product))
    c, p = customer[order], product[order]
    starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (p[1:] != p[:-1])])
    counts = np.diff(np.r_[starts, len(c)])
    return c[starts], p[starts], counts.astype(np.int64)


def scale_per_product(product: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Min-max scale counts within each product (rows grouped by product); max == min -> 0.0."""
    starts = np.flatnonzero(np.r_[True, product[1:] != product[:-1]])
    sizes = np.diff(np.r_[starts, len(product)])
    lo = np.repeat(np.minimum.reduceat(counts, starts), sizes).astype(np.float64)
    hi = np.repeat(np.maximum.reduceat(counts, starts), sizes).astype(np.float64)
    span = hi - lo
    out = np.zeros(len(counts), dtype=np.float64)
    np.divide(counts - lo, span, out=out, where=span > 0)
    return out.astype(np.float32)


def preprocess(data: bytes, source: str) -> Ratings:
    """Transactions CSV bytes -> scaled purchase frequencies per (customer, product), book order."""
    customer, product = parse_transactions(data, source)
    c, p, counts = purchase_counts(customer, product)
    return Ratings(customer_ids=c, product_ids=p, ratings=scale_per_product(p, counts),
                   customers=np.unique(c), products=np.unique(p))


def parse_users(data: bytes, source: str) -> np.ndarray:
    """Parse users.csv (one column `customerId`) into int64 ids."""
    lines = [ln for ln in _decode(data, source)]
    _check_header(lines, source, ("customerId",))
    ids = []
    for n, ln in enumerate(lines[1:], start=2):
        s = ln.strip()
        if not s:
            continue
        if not re.fullmatch(_ID_RE, s):
            raise DataError(source, f"customerId must be a non-negative integer, found {s[:40]!r}", line=n)
        ids.append(int(s))
    return np.array(ids, dtype=np.int64)


# ---------------------------------------------------------------- split, model, export


def split_indices(n: int, validation_split: float, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation row indices: Keras' cut (first int(n * (1 - split)) rows train) after an
    optional seeded permutation (numpy default_rng(seed)); `tail` keeps the book's order."""
    n_train = int(n * (1.0 - validation_split))
    order = np.random.default_rng(seed).permutation(n) if kind == "shuffle" else np.arange(n)
    if n_train < 1 or n_train >= n:
        raise DataError("transactions", f"{n} rows cannot be split with validation_split {validation_split}")
    return order[:n_train], order[n_train:]


def msle(y_true: np.ndarray, y_pred) -> float:
    """Mean squared logarithmic error as Keras computes it (predictions clipped at 0)."""
    y_pred = np.maximum(np.asarray(y_pred, dtype=np.float64), 0.0)
    return float(np.mean((np.log1p(np.asarray(y_true, dtype=np.float64)) - np.log1p(y_pred)) ** 2))


def build_model(keras, n_customers: int, n_products: int, n_factors: int, p_dropout: float):
    """The book's DeepCollaborativeFiltering as a Keras functional model ([user, product] -> rating)."""
    layers = keras.layers
    x1 = keras.Input(shape=(1,), dtype="int32", name="user")
    P = layers.Embedding(n_customers, n_factors, name="customer_embedding")(x1)
    P = layers.Reshape((n_factors,))(P)
    x2 = keras.Input(shape=(1,), dtype="int32", name="product")
    Q = layers.Embedding(n_products, n_factors, name="product_embedding")(x2)
    Q = layers.Reshape((n_factors,))(Q)
    x = layers.Concatenate(axis=1)([P, Q])
    x = layers.Dropout(p_dropout)(x)
    x = layers.Dense(n_factors, name="hidden")(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(p_dropout)(x)
    out = layers.Dense(1, name="rating")(x)
    return keras.Model([x1, x2], out, name="DeepCollaborativeFiltering")


#: Largest book-sized embedding table (max id + 1 rows, times factors) keras_initial_weights draws.
_MAX_BOOK_TABLE = 1 << 25


class WeightSet:
    """The model's six weights as plain tf.Variables (the single-worker path trains these with
    XlaAdamTrainer and exports them, so it needs no Keras model): get_weights / set_weights /
    weights as on the Keras model from build_model, in the same order."""

    NAMES = ("customer_embedding", "product_embedding", "hidden_kernel", "hidden_bias", "rating_kernel", "rating_bias")

    def __init__(self, tf, weights: list):
        self.variables = [tf.Variable(w, name=n) for w, n in zip(weights, self.NAMES)]

    @property
    def weights(self) -> list:
        return self.variables

    def get_weights(self) -> list:
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights: list) -> None:
        if [tuple(w.shape) for w in weights] != [tuple(v.shape) for v in self.variables]:
            raise ValueError("weights do not fit this model")
        for v, w in zip(self.variables, weights):
            v.assign(w)


def keras_initial_weights(tf, seed: int, customers: np.ndarray, products: np.ndarray, factors: int) -> list:
    """The book's model's initial weights under Keras 3 after keras.utils.set_random_seed(seed)
    (what the reference notebook runs): Keras' default initializers (embeddings uniform in
    +-0.05, dense kernels glorot_uniform, zero biases), each drawn by tf.random.stateless_uniform
    with the seed that Keras 3 takes from Python's random module (random.Random(seed).randint(1,
    10**9), in layer order; each Dropout layer takes one too). The book's embedding tables have
    max id + 1 rows indexed by raw id; row i here (the i-th smallest id) gets that table's row for
    its id, so every customer and product starts from the book's vector. A book-sized table over
    _MAX_BOOK_TABLE values (huge sparse ids) is drawn at the compact size instead. Returns
    numpy arrays in model.get_weights() order."""
    import math
    import random

    draw = random.Random(seed)
    s_cust, s_prod, _, s_hidden, _, s_rating = (draw.randint(1, int(1e9)) for _ in range(6))

    def uniform(shape, limit, s):
        return tf.random.stateless_uniform(shape, seed=tf.constant([s, 0], tf.int32), minval=-limit, maxval=limit,
                                           dtype=tf.float32).numpy()

    def table(ids, s):
        rows = int(ids.max()) + 1
        if rows * factors > _MAX_BOOK_TABLE:
            return uniform((len(ids), factors), 0.05, s)
        return uniform((rows, factors), 0.05, s)[ids]

    def glorot(fan_in, fan_out, s):
        return uniform((fan_in, fan_out), math.sqrt(3.0 / max(1.0, (fan_in + fan_out) / 2.0)), s)

    return [table(customers, s_cust), table(products, s_prod), glorot(2 * factors, factors, s_hidden),
            np.zeros(factors, np.float32), glorot(factors, 1, s_rating), np.zeros(1, np.float32)]


#: Optimizer steps between the folds of the embedding tables' moment scales into the moments
#: (b1^256 ~ 2e-12: far from float32's limits either way).
_FOLD_EVERY = 256
#: Keras' Adam defaults (the book compiles with optimizer="adam").
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7


class XlaAdamTrainer:
    """Trains the model on chunks of K batches per call: one XLA computation runs a loop with one
    ordinary Adam step per batch that holds real rows (x of shape (K, B, 1), per-row weights, 0
    marks padding). Each batch's loss is the mean MSLE over its real rows; `train_chunk` returns
    the sums needed for the epoch loss Keras reports (batch losses weighted by row counts).

    `params` are the model's six variables in model.get_weights() order (WeightSet.variables, or
    a Keras model's trainable_variables). The forward pass is the Keras model's training path in
    TensorFlow ops (embedding lookups, concat, dropout, dense + relu, dropout, dense), with the
    dropout keep masks passed in (`keep`, bool (K, B, 3 * factors): the concat's 2 * factors
    units, then the hidden layer's factors), drawn by `dropout_keep` from the seed and the epoch,
    so a run resumed from a checkpoint repeats the uninterrupted run's masks. Kept units are
    scaled by 1 / (1 - rate), as tf.nn.dropout does.

    The optimizer is Adam with Keras' defaults (b1 0.9, b2 0.999, eps 1e-7, bias correction as
    tf-keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)), applied here rather than through
    `keras.optimizers.Adam.apply_gradients`, whose per-step bookkeeping cost more than the
    model's own step. Dense variables get the textbook update. For the embedding tables
    (sparse gradients) every row's moments decay each step (also rows not in the batch), so
    each table keeps its moments scaled by the running decay, m = c1 * M and v = c2 * V
    (c1 = b1^k, c2 = b2^k): a step multiplies two scalars, adds the batch's gradient to the
    batch's rows of M and V (over c1, c2), and moves every row by alpha * c1*M /
    (sqrt(c2*V) + eps), one fused pass over the table. Duplicate rows in a batch sum before
    squaring, as with a dense gradient. Every _FOLD_EVERY steps (an outer loop, so that XLA
    does not turn a per-step condition into two more passes over each table) and at the end of
    every call the scales are folded back into M and V, so nothing over- or underflows and a
    checkpoint holds the plain moments (scales 1).

    `variables` (step, then m, v and the scales) are the optimizer state checkpoints save."""

    def __init__(self, tf, params: list, learning_rate: float, dropout: float):
        self.tf = tf
        self.lr = learning_rate
        self.rate = float(dropout)
        self.params = list(params)
        self.factors = int(self.params[2].shape[1])
        self.sparse = [True, True, False, False, False, False]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="adam_step")
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name="adam_m") for v in self.params]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name="adam_v") for v in self.params]
        self.scale = [tf.Variable([1.0, 1.0], trainable=False, name="adam_scale") for _ in self.params]
        self.variables = [self.step, *self.m, *self.v, *self.scale]
        self.train_chunk = tf.function(self._train_chunk, jit_compile=True, autograph=False)

    def blank_inputs(self, k: int, batch: int) -> tuple:
        """train_chunk inputs of k batches of `batch` rows that are all padding (no step runs)."""
        keep = (k, batch, 3 * self.factors) if self.rate > 0 else (k, 1, 1)
        ids = np.zeros((k, batch, 1), np.int32)
        return ids, ids, np.zeros((k, batch, 1), np.float32), np.zeros((k, batch, 1), np.float32), np.zeros(keep, bool)

    def _forward(self, users, products, keep):
        """The model's output for one batch in training mode (users, products: (B, 1) rows)."""
        tf = self.tf
        emb_c, emb_p, k1, b1, k2, b2 = self.params
        x = tf.concat([tf.gather(emb_c, users[:, 0]), tf.gather(emb_p, products[:, 0])], axis=1)
        f2 = 2 * self.factors
        if self.rate > 0:
            scale = tf.constant(1.0 / (1.0 - self.rate), tf.float32)
            x = tf.where(keep[:, :f2], x * scale, tf.zeros_like(x))
        h = tf.nn.relu(tf.matmul(x, k1) + b1)
        if self.rate > 0:
            h = tf.where(keep[:, f2:], h * scale, tf.zeros_like(h))
        return tf.matmul(h, k2) + b2

    def _apply(self, grads) -> None:
        tf = self.tf
        t = tf.cast(self.step + 1, tf.float32)
        b1, b2, eps = tf.constant(_BETA_1), tf.constant(_BETA_2), tf.constant(_EPSILON)
        alpha = self.lr * tf.sqrt(1 - tf.pow(b2, t)) / (1 - tf.pow(b1, t))
        for var, g, m, v, scale, sparse in zip(self.params, grads, self.m, self.v, self.scale, self.sparse):
            if not sparse:
                g = tf.convert_to_tensor(g)
                m.assign_add((g - m) * (1 - b1))
                v.assign_add((tf.square(g) - v) * (1 - b2))
                var.assign_sub(m * alpha / (tf.sqrt(v) + eps))
                continue
            c = scale * tf.stack([b1, b2])
            scale.assign(c)
            idx = tf.reshape(g.indices, [-1])
            values = tf.reshape(g.values, [tf.shape(idx)[0], -1])
            same = tf.cast(tf.equal(idx[:, None], idx[None, :]), values.dtype)
            gsum = tf.matmul(same, values)  # each position: the sum over its row's duplicates
            rows = idx[:, None]
            m.scatter_nd_update(rows, tf.gather(m, idx) + gsum * ((1 - b1) / c[0]))
            v.scatter_nd_update(rows, tf.gather(v, idx) + tf.square(gsum) * ((1 - b2) / c[1]))
            var.assign_sub(m * (alpha * c[0]) / (tf.sqrt(v * c[1]) + eps))
        self.step.assign_add(1)

    def _fold(self) -> None:
        """m = c1 * M, v = c2 * V: move the embedding tables' scales into their moments."""
        for m, v, scale, sparse in zip(self.m, self.v, self.scale, self.sparse):
            if sparse:
                c = scale.read_value()
                m.assign(m * c[0])
                v.assign(v * c[1])
                scale.assign(self.tf.ones_like(c))

    def _train_chunk(self, users, products, y, w, keep):
        tf = self.tf
        eps = tf.constant(_EPSILON)
        n_steps = tf.reduce_sum(tf.cast(tf.reduce_sum(w, axis=[1, 2]) > 0, tf.int32))

        def step(k, loss_sum, count_sum):
            wb = w[k][:, 0]
            with tf.GradientTape() as tape:
                pred = self._forward(users[k], products[k], keep[k])
                count = tf.reduce_sum(wb)
                # Keras' mean_squared_logarithmic_error (one output per row)
                msle = tf.square(tf.math.log(tf.maximum(pred, eps) + 1.0) - tf.math.log(tf.maximum(y[k], eps) + 1.0))
                loss = tf.reduce_sum(msle[:, 0] * wb) / count
            self._apply(tape.gradient(loss, self.params))
            return k + 1, loss_sum + loss * count, count_sum + count

        def block(k, loss_sum, count_sum):
            end = tf.minimum(k + _FOLD_EVERY, n_steps)
            k, loss_sum, count_sum = tf.while_loop(lambda k, *_: k < end, step, (k, loss_sum, count_sum))
            self._fold()
            return k, loss_sum, count_sum

        _, loss_sum, count_sum = tf.while_loop(lambda k, *_: k < n_steps, block,
                                               (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))
        return loss_sum, count_sum


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order the training rows are visited in `epoch`: a permutation seeded by (seed, epoch),
    so a run resumed from a checkpoint sees the same data order as an uninterrupted one. Every
    epoch gets a new order, as `shuffle=True` promises (Keras 3's fit on numpy input after
    keras.utils.set_random_seed, as the book's notebook runs, repeats its first order in every
    epoch; bench/recommender_quality.py shows it and what it costs the final epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def chunked_epoch(u, p, y, batch_size: int, max_chunk: int, order: np.ndarray):
    """One epoch of training data in equal chunks of at most `max_chunk` batches: the rows in
    `order` cut into batches of batch_size (as Keras batches shuffled numpy input), the last batch
    padded with zero-weight rows and the last chunk with empty batches. Returns arrays
    (users, products, y, weights), each of shape (chunks, K, B, 1)."""
    n = len(order)
    steps = -(-n // batch_size)
    chunks = -(-steps // max_chunk)
    k = -(-steps // chunks)
    pad = chunks * k * batch_size - n
    idx = np.r_[order, np.zeros(pad, order.dtype)].reshape(chunks, k, batch_size, 1)
    w = np.r_[np.ones(n, np.float32), np.zeros(pad, np.float32)].reshape(chunks, k, batch_size, 1)
    return u[idx], p[idx], y[idx], w


def max_chunk_steps(batch_size: int, factors: int) -> int:
    """Optimizer steps per XLA call at most: _MAX_CHUNK_STEPS, fewer where one call's dropout
    masks (batch_size * 3 * factors bytes a step) would pass _MAX_MASK_BYTES."""
    return max(1, min(_MAX_CHUNK_STEPS, _MAX_MASK_BYTES // (batch_size * 3 * factors)))


def dropout_keep(seed: int, epoch: int, chunk: int, shape: tuple, rate: float) -> np.ndarray:
    """Dropout keep masks for one XLA call (bool, True with probability 1 - rate): float32
    uniforms from numpy's default_rng([seed, epoch, chunk, 1]) >= rate, as tf.nn.dropout keeps.
    With rate 0 nothing is dropped and a (K, 1, 1) placeholder stands in."""
    if rate <= 0:
        return np.ones((shape[0], 1, 1), bool)
    return np.random.default_rng([seed, epoch, chunk, 1]).random(shape, dtype=np.float32) >= np.float32(rate)


def predict(weights: list, users: np.ndarray, products: np.ndarray) -> np.ndarray:
    """The model's inference output (dropout off) for embedding row indices, in numpy float32;
    `weights` as model.get_weights()."""
    emb_c, emb_p, k1, b1, k2, b2 = weights
    h = np.concatenate([emb_c[users], emb_p[products]], axis=1) @ k1 + b1
    return (np.maximum(h, 0, out=h) @ k2 + b2)[:, 0]


def keras_msle(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared logarithmic error computed as Keras does (float32, both clipped at 1e-7)."""
    eps = np.float32(1e-7)
    d = np.log(np.maximum(y_pred, eps) + np.float32(1)) - np.log(np.maximum(y_true, eps) + np.float32(1))
    return float(np.mean(np.square(d, dtype=np.float32), dtype=np.float32))


def make_serving_module(tf, weights, customers: np.ndarray, products: np.ndarray, fallback: float):
    """A tf.Module whose `serve(users, products)` maps raw ids to embedding rows and rates pairs.

    `weights` are the trained model's get_weights() (customer embedding, product embedding,
    dense kernel and bias, output kernel and bias); the forward pass is the model's inference
    path (dropout off) in plain TensorFlow ops, so the SavedModel needs no Keras to load.
    Ids not in the vocabularies get `fallback` (the training mean)."""

    class Recommender(tf.Module):
        def __init__(self):
            super().__init__(name="recommender")
            names = ("customer_embedding", "product_embedding", "dense_kernel", "dense_bias",
                     "output_kernel", "output_bias")
            self.weights = [tf.Variable(w, trainable=False, name=n) for w, n in zip(weights, names)]
            self.customer_ids = tf.Variable(np.asarray(customers, np.int64), trainable=False, name="customer_ids")
            self.product_ids = tf.Variable(np.asarray(products, np.int64), trainable=False, name="product_ids")
            self.fallback = tf.Variable(np.float32(fallback), trainable=False, name="unknown_fallback")

        @staticmethod
        def _lookup(vocab, ids):
            n = tf.shape(vocab, out_type=tf.int64)[0]
            pos = tf.searchsorted(vocab, ids, out_type=tf.int64)
            safe = tf.minimum(pos, n - 1)
            known = tf.logical_and(pos < n, tf.gather(vocab, safe) == ids)
            return tf.where(known, safe, 0), known

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="users"),
                                      tf.TensorSpec([None], tf.int64, name="products")])
        def serve(self, users, products):
            ui, uk = self._lookup(self.customer_ids, users)
            pi, pk = self._lookup(self.product_ids, products)
            emb_c, emb_p, k1, b1, k2, b2 = self.weights
            x = tf.concat([tf.gather(emb_c, ui), tf.gather(emb_p, pi)], axis=1)
            x = tf.nn.relu(tf.matmul(x, k1) + b1)
            pred = (tf.matmul(x, k2) + b2)[:, 0]
            return {"predictions": tf.where(tf.logical_and(uk, pk), pred, self.fallback)}

    return Recommender()


class _Ahead:
    """Iterates a generator one item ahead on a helper thread: the next XLA call's numpy inputs
    (permutation, batches, dropout masks) are made while the current call runs, which holds no GIL."""

    def __init__(self, gen):
        from concurrent.futures import ThreadPoolExecutor

        self.gen = gen
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="recommender-feed")
        self.pending = self.pool.submit(next, gen, None)

    def __next__(self):
        item = self.pending.result()
        self.pending = self.pool.submit(next, self.gen, None)
        return item

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _ExportPrep:
    """Builds the serving module and traces its signature on a background thread (started while
    XLA compiles the training step, which leaves the GIL free), so that the export after training
    only copies the final weights in and writes the SavedModel. The thread also writes a
    throwaway SavedModel of the placeholder weights under `work_dir` (deleted at once): the first
    tf.saved_model.save in a process pays one-time costs (~0.1 s) that the real export then skips.
    Without start() the module is built when asked for."""

    def __init__(self, tf, model, customers, products, fallback: float, work_dir: Path | None = None):
        import threading

        self.tf = tf
        self.work_dir = work_dir
        # placeholders of the weights' shapes: the thread never reads variables that training updates
        self.zeros = [np.zeros(w.shape, w.dtype.as_numpy_dtype) for w in model.weights]
        self.args = (customers, products, fallback)
        self.module = self.error = None
        self.thread = threading.Thread(target=self._build, args=(True,), name="recommender-export-prep", daemon=True)
        self.started = False

    def _build(self, warm: bool = False) -> None:
        try:
            self.module = make_serving_module(self.tf, self.zeros, *self.args)
            self.module.serve.get_concrete_function()
        except Exception as exc:  # noqa: BLE001 - re-raised on the main thread by module_with
            self.error = exc
            return
        if warm:
            try:
                for var, z in zip(self.module.weights, self.zeros):
                    var.assign(z)
                with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="recommender-warmup-") as tmp:
                    self.tf.saved_model.save(self.module, tmp, signatures={"serving_default": self.module.serve})
            except Exception as exc:  # noqa: BLE001 - only a warm-up: the real export reports its own errors
                log.debug("SavedModel warm-up failed: %s", exc)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.thread.start()

    def module_with(self, weights):
        """The serving module holding `weights` (the trained model's get_weights())."""
        if self.started:
            self.thread.join()
        else:
            self._build()
        if self.error is not None:
            raise self.error
        for var, w in zip(self.module.weights, weights):
            var.assign(w)
        return self.module


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts]) + "/"


def export_directory(cfg: RecommenderConfig, storage) -> str:
    """The export folder name: cfg.export_directory, else the stripped text of directory_uri."""
    if cfg.export_directory:
        return cfg.export_directory
    uri = cfg.directory_uri
    try:
        name = storage.read_text(uri).strip()
    except UnicodeDecodeError:
        raise DataError(uri, "directory name is not UTF-8 text") from None
    if not _DIRECTORY_RE.match(name) or name in (".", ".."):
        raise DataError(uri, f"directory name must be one safe path segment ([A-Za-z0-9._-], "
                             f"starting with a letter or digit, at most 128 characters), found {name[:60]!r}",
                        line=1)
    return name


# ---------------------------------------------------------------- checkpoints


def chunked_steps(n: int, batch_size: int, max_chunk: int) -> int:
    """Optimizer steps per XLA call for n training rows (see chunked_dataset)."""
    steps = -(-n // batch_size)
    return -(-steps // -(-steps // max_chunk))


def run_fingerprint(tc: RecommenderConfig, data: Ratings, distributed: bool) -> dict:
    """What a checkpoint must match to be resumed: the data, every setting except `epochs`, and
    the optimizer state's layout (keras Adam under MWMS, XlaAdamTrainer alone)."""
    h = hashlib.sha256()
    for a in (data.customer_ids, data.product_ids, data.ratings):
        h.update(np.ascontiguousarray(a).tobytes())
    keep = ("batch_size", "validation_split", "factors", "dropout", "learning_rate", "split", "seed")
    return {"data_sha256": h.hexdigest(), "optimizer_state": "keras-adam" if distributed else "xla-adam-scaled",
            **{k: getattr(tc, k) for k in keep}}


@dataclass
class TrainingState:
    """Epochs done and the per-epoch history across attempts; saved with the weights after every
    epoch (runtime.checkpoint layout: `<checkpoint_uri>/ckpt-<epoch>/{weights.npz,state.json}`).

    The split and each epoch's data order are functions of the seed (split_indices, epoch_order),
    so epoch + seed is the whole data state; alone, so are the dropout masks (dropout_keep), and a
    resumed run repeats the uninterrupted one. Under MWMS, Keras' dropout masks after a resume come
    from a freshly seeded stream (TF's stateful random kernels cannot be checkpointed):
    statistically the same, not bit-identical to an uninterrupted run."""

    epoch: int = 0
    loss: list = None
    val_loss: list = None
    epoch_s: list = None
    epoch_cpu_s: list = None
    attempt: int = 1
    store: object = None
    fingerprint: dict = None
    work_dir: Path | None = None
    chief: bool = True

    @classmethod
    def fresh(cls) -> "TrainingState":
        return cls(loss=[], val_loss=[], epoch_s=[], epoch_cpu_s=[])

    @classmethod
    def open(cls, tc: RecommenderConfig, ctx, data: Ratings) -> "TrainingState":
        """A state bound to the checkpoint store at tc.checkpoint_uri (nothing loaded yet)."""
        from runtime.checkpoint import CheckpointStore

        state = cls.fresh()
        state.store = CheckpointStore(tc.checkpoint_uri, ctx.storage, keep=2, work_dir=ctx.work_dir)
        state.fingerprint = run_fingerprint(tc, data, ctx.task.distributed)
        state.work_dir = Path(ctx.work_dir)
        state.chief = ctx.task.is_chief
        return state

    def record(self, loss: float, val_loss: float, seconds: float, cpu_seconds: float) -> None:
        """Append one finished epoch."""
        self.epoch += 1
        self.loss.append(loss)
        self.val_loss.append(val_loss)
        self.epoch_s.append(seconds)
        self.epoch_cpu_s.append(cpu_seconds)

    def restore(self, model, opt_vars: list) -> "TrainingState":
        """Load the newest checkpoint (if any) into the model and the optimizer variables."""
        found = self.store.latest()
        if found is None:
            log.info("no checkpoint under %s: training from epoch 0", self.store.uri)
            return self
        where = f"{self.store.uri} ({found.name})"
        try:
            doc = json.loads((found / "state.json").read_text(encoding="utf-8"))
            with np.load(found / "weights.npz") as z:
                weights = [z[f"w{i}"] for i in range(doc["n_weights"])]
                opt = [z[f"o{i}"] for i in range(doc["n_optimizer"])]
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(where, f"checkpoint is unreadable: {exc}") from None
        if doc.get("fingerprint") != self.fingerprint:
            raise ConfigError(f"checkpoint {where} was written for other data or hyper-parameters; "
                              "delete it or set another checkpoint_uri")
        if len(opt_vars) != len(opt) or any(tuple(v.shape) != o.shape for v, o in zip(opt_vars, opt)):
            raise DataError(where, "checkpoint's optimizer state does not fit this model")
        model.set_weights(weights)
        for var, value in zip(opt_vars, opt):
            var.assign(value)
        self.epoch = int(doc["epoch"])
        for key in ("loss", "val_loss", "epoch_s", "epoch_cpu_s"):
            setattr(self, key, [float(v) for v in doc[key]])
        self.attempt = int(doc.get("attempt", 1)) + 1
        log.info("resuming from checkpoint %s: %d epoch(s) done, attempt %d", where, self.epoch, self.attempt)
        self.store.cleanup()
        return self

    def save(self, model, opt_vars: list) -> None:
        """Write weights + optimizer state + history as checkpoint `epoch` (the chief only)."""
        if not self.chief:
            return
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="recommender-ckpt-") as tmp:
            d = Path(tmp)
            weights, opt = model.get_weights(), [v.numpy() for v in opt_vars]
            np.savez(d / "weights.npz", **{f"w{i}": w for i, w in enumerate(weights)},
                     **{f"o{i}": o for i, o in enumerate(opt)})
            doc = {"epoch": self.epoch, "attempt": self.attempt, "n_weights": len(weights), "n_optimizer": len(opt),
                   "loss": self.loss, "val_loss": self.val_loss, "epoch_s": self.epoch_s,
                   "epoch_cpu_s": self.epoch_cpu_s, "fingerprint": self.fingerprint}
            (d / "state.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            uri = self.store.save(d, self.epoch)
        log.info("checkpoint %s saved (%.2f s)", uri, time.perf_counter() - t)


# ---------------------------------------------------------------- run


def run(cfg: RuntimeConfig, ctx) -> dict:
    """Train the recommender and (chief only) publish SavedModel + metrics.json + ids.json."""
    t_start, c_start = time.perf_counter(), time.process_time()
    tc: RecommenderConfig = cfg.trainer
    task = ctx.task
    from runtime.trainers._keras import load_tf, peer_errors, strategy_for

    # Importing TensorFlow on a second thread while this one preprocesses gained nothing (both
    # hold the GIL most of the time), so: import, create the strategy, then read.
    tf, keras = load_tf()
    strategy = strategy_for(tf, task)  # before any other TF op (MWMS requirement)
    t_import = time.perf_counter()
    storage = ctx.storage
    directory = export_directory(tc, storage) if task.is_chief else None
    users = parse_users(storage.read_bytes(tc.users_uri), tc.users_uri)
    raw = storage.read_bytes(tc.transactions_uri)
    t_read = time.perf_counter()
    data = preprocess(raw, tc.transactions_uri)
    del raw
    train_idx, val_idx = split_indices(len(data), tc.validation_split, tc.split, tc.seed)
    u_all, p_all, y_all = data.customer_index, data.product_index, data.ratings
    u_tr, p_tr, y_tr = u_all[train_idx], p_all[train_idx], y_all[train_idx]
    u_va, p_va, y_va = u_all[val_idx], p_all[val_idx], y_all[val_idx]
    train_mean = float(y_tr.mean())
    mean_msle = msle(y_va, np.full(len(y_va), train_mean))
    t_prep = time.perf_counter()
    log.info("%d ratings: %d customers x %d products; %s split: %d train, %d validation (read %.2f s, preprocess %.2f s, "
             "after %.2f s importing TensorFlow)", len(data), len(data.customers), len(data.products),
             tc.split, len(y_tr), len(y_va), t_read - t_import, t_prep - t_read, t_import - t_start)

    state = TrainingState.open(tc, ctx, data) if tc.checkpoint_uri else TrainingState.fresh()
    ctx.check_stop()

    tf.random.set_seed(tc.seed)
    distributed = task.distributed
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    initial = keras_initial_weights(tf, tc.seed, data.customers, data.products, tc.factors)
    with strategy.scope():
        if distributed:
            keras.utils.set_random_seed(tc.seed)
            model = build_model(keras, len(data.customers), len(data.products), tc.factors, tc.dropout)
            model.set_weights(initial)
            # MWMS all-reduces every step; collectives are not XLA-compiled on CPU.
            optimizer = keras.optimizers.Adam(learning_rate=tc.learning_rate)
            model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredLogarithmicError(),
                          steps_per_execution=_DIST_STEPS_PER_EXECUTION)
            optimizer.build(model.trainable_variables)
            opt_vars = optimizer.variables
        else:  # alone the model is its six variables (a Keras model costs ~0.1 s to build)
            model = WeightSet(tf, initial)
            trainer = XlaAdamTrainer(tf, model.variables, tc.learning_rate, tc.dropout)
            opt_vars = trainer.variables
        if state.store is not None:
            state.restore(model, opt_vars)

    max_steps = max_chunk_steps(tc.batch_size, tc.factors)
    chunk = _DIST_STEPS_PER_EXECUTION if distributed else chunked_steps(len(y_tr), tc.batch_size, max_steps)
    if distributed:
        val_ds = (tf.data.Dataset.from_tensor_slices(((u_va[:, None], p_va[:, None]), y_va[:, None]))
                  .batch(_EVAL_BATCH).cache().with_options(opts))

    def train_epoch(epoch: int) -> dict:
        """One epoch in its seeded order; returns Keras-style logs. On SIGTERM it stops at the next
        chunk boundary (each XLA call alone; under MWMS at the epoch end, so that the workers'
        collectives stay in step) and raises Terminated: the unfinished epoch is discarded."""
        if distributed:
            order = epoch_order(len(y_tr), tc.seed, epoch)
            ds = (tf.data.Dataset.from_tensor_slices(((u_tr[order][:, None], p_tr[order][:, None]), y_tr[order][:, None]))
                  .batch(tc.batch_size).prefetch(tf.data.AUTOTUNE).with_options(opts))
            # Keras evaluates the (sharded) validation set itself.
            try:
                hist = model.fit(ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
            except peer_errors(tf) as exc:
                reason = " ".join(str(getattr(exc, "message", exc)).split())[:200]
                raise Rendezvous(f"lost a peer worker in epoch {epoch + 1}/{tc.epochs} "
                                 f"(resumes from the checkpoint of epoch {state.epoch}): {reason}") from None
            return {k: float(v[-1]) for k, v in hist.history.items()}
        loss_sum = count = 0.0
        for i in range(n_chunks):
            if i and ctx.stop_requested:
                raise Terminated(f"terminated by SIGTERM in epoch {epoch + 1}/{tc.epochs} "
                                 f"(resumes from the checkpoint of epoch {state.epoch})")
            ls, n = trainer.train_chunk(*(tf.constant(a) for a in next(feed)))
            loss_sum, count = loss_sum + float(ls), count + float(n)
        # validation in inference mode, in numpy (a graph for one pass per epoch costs more to build)
        return {"loss": loss_sum / count, "val_loss": keras_msle(y_va, predict(model.get_weights(), u_va, p_va))}

    def any_worker_stopping() -> bool:
        """All-reduce the workers' stop flags at an epoch end, so that they stop together (SIGTERM
        reaches pods at different moments; one stopping alone would strand the others' collectives)."""
        flag = tf.constant(1.0 if ctx.stop_requested else 0.0)
        votes = strategy.run(lambda: tf.identity(flag))
        return float(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)) > 0

    def call_inputs(first_epoch: int):
        """The numpy inputs of every XLA call from first_epoch on, in order (users, products, y,
        weights, dropout keep masks)."""
        for epoch in range(first_epoch, tc.epochs):
            chunks = chunked_epoch(u_tr, p_tr, y_tr, tc.batch_size, max_steps, epoch_order(len(y_tr), tc.seed, epoch))
            for i in range(n_chunks):
                keep = dropout_keep(tc.seed, epoch, i, (chunk, tc.batch_size, 3 * tc.factors), tc.dropout)
                yield (*(a[i] for a in chunks), keep)

    export = _ExportPrep(tf, model, data.customers, data.products, train_mean, ctx.work_dir) if task.is_chief else None
    start_epoch = state.epoch
    n_chunks = -(-(-(-len(y_tr) // tc.batch_size)) // max_steps)  # XLA calls per epoch (as chunked_epoch cuts)
    feed = None
    t_compile = time.perf_counter()
    try:
        if not distributed and start_epoch < tc.epochs:
            # Trace (Python), then start the helper threads and XLA-compile with an all-padding input
            # (no step runs): the compile holds no GIL, so the first call's inputs and the serving
            # module are made meanwhile.
            blank = trainer.blank_inputs(chunk, tc.batch_size)
            trainer.train_chunk.get_concrete_function(*(tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in blank))
            feed = _Ahead(call_inputs(start_epoch))
            if export is not None:
                export.start()
            trainer.train_chunk(*(tf.constant(a) for a in blank))
        t_fit, c_fit = time.perf_counter(), time.process_time()
        for epoch in range(start_epoch, tc.epochs):
            t, c = time.perf_counter(), time.process_time()
            logs = train_epoch(epoch)
            dt = time.perf_counter() - t
            state.record(logs["loss"], logs["val_loss"], dt, time.process_time() - c)
            log.info("epoch %d/%d: loss %.5f val_loss %.5f (%.1f s, %.0f samples/s)", epoch + 1, tc.epochs,
                     logs["loss"], logs["val_loss"], dt, len(y_tr) / dt)
            if state.store is not None:
                state.save(model, opt_vars)
            if not distributed:
                ctx.check_stop()
            elif any_worker_stopping():  # a SIGTERM after the vote counts at the next epoch's end
                raise Terminated(f"terminated by SIGTERM (this or another worker) after epoch {epoch + 1}/{tc.epochs}")
    finally:
        if feed is not None:
            feed.close()
    t_trained = time.perf_counter()
    epoch_s = state.epoch_s[-(tc.epochs - start_epoch):] if tc.epochs > start_epoch else []

    metrics = {
        "trainer": "recommender",
        "rows": len(data),
        "customers": int(len(data.customers)),
        "products": int(len(data.products)),
        "users_csv": {"users": int(len(users)), "known": int(np.isin(users, data.customers).sum())},
        "split": {"kind": tc.split, "seed": tc.seed if tc.split == "shuffle" else None,
                  "validation_split": tc.validation_split, "train": int(len(y_tr)), "validation": int(len(y_va))},
        "hyperparameters": {"batch_size": tc.batch_size, "epochs": tc.epochs, "factors": tc.factors,
                            "dropout": tc.dropout, "learning_rate": tc.learning_rate,
                            "optimizer": "adam", "loss": "mean_squared_logarithmic_error"},
        "loss": list(state.loss),
        "val_loss": list(state.val_loss),
        "val_msle_mean_predictor": mean_msle,
        "train_mean": train_mean,
        "workers": task.world_size,
        "timings_s": {"import": t_import - t_start, "read": t_read - t_import, "preprocess": t_prep - t_read,
                      "build": t_compile - t_prep, "compile": t_fit - t_compile, "epochs": epoch_s, "epochs_cpu": state.epoch_cpu_s[-len(epoch_s):] if epoch_s else [],
                      "epochs_all_attempts": list(state.epoch_s),
                      "train": t_trained - t_fit,
                      "cpu_before_fit": c_fit - c_start, "cpu_before_export": time.process_time() - c_start},
        "samples_per_s": len(y_tr) / float(np.median(state.epoch_s)) if state.epoch_s else None,
        "resumed_from_epoch": start_epoch,
        "attempt": state.attempt,
        "checkpoint_uri": tc.checkpoint_uri,
        "steps_per_call": chunk,
        "jit_compile": not distributed,
    }
    metrics["best_val_loss"] = min(metrics["val_loss"])

    if not task.is_chief:
        log.info("worker %s done; the chief exports", task.name)
        return metrics

    uri = _join(tc.model_root, directory, str(tc.version))
    ids_doc = {
        "mapping": "embedding row i <-> the i-th smallest id in the transactions",
        "customers": data.customers.tolist(),
        "products": data.products.tolist(),
        "unknown_fallback": train_mean,
        "unknown_fallback_meaning": "prediction for a pair whose customer or product id is not listed here "
                                    "(the training mean rating)",
    }
    with tempfile.TemporaryDirectory(dir=ctx.work_dir, prefix="recommender-export-") as tmp:
        local = Path(tmp) / "model"
        module = export.module_with(model.get_weights())
        tf.saved_model.save(module, str(local), signatures={"serving_default": module.serve})
        (local / "ids.json").write_text(json.dumps(ids_doc, separators=(",", ":")) + "\n", encoding="utf-8")
        t_saved = time.perf_counter()
        metrics["timings_s"]["save"] = t_saved - t_trained
        metrics["timings_s"]["total_before_publish"] = t_saved - t_start
        metrics["timings_s"]["cpu_before_publish"] = time.process_time() - c_start
        metrics["export_uri"] = uri
        (local / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        # A resumed attempt may follow one that published and was killed before it exited.
        storage.publish_dir(local, uri, overwrite=start_epoch > 0)
    log.info("exported SavedModel, ids.json and metrics.json to %s (%.1f s total)", uri, time.perf_counter() - t_start)
    return metrics

