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
   dense(1); `embed` and `head`), adam + mean squared logarithmic error, with the spec's
   hyper-parameters, starting from the weights the book's model gets under Keras 3 with the same
   seed (keras_initial_weights). One engine (Engine: XLA-compiled steps, Adam, one optimizer state
   and checkpoint layout) trains it alone and under MultiWorkerMirroredStrategy (MWMS); each epoch
   visits the training rows in a permutation seeded by (seed, epoch), with dropout masks drawn in
   numpy from (seed, epoch), and ends with the validation MSLE;
6. export a SavedModel with the default serving signature (users, products: int64[None]) ->
   predictions: float32[None], plus metrics.json and ids.json, published atomically to
   `<model_root>/<directory>/<version>/`.

Faults: with `checkpoint_uri` (a PVC path or s3:// prefix) the chief saves weights, optimizer state
and the per-epoch history after every epoch (runtime.checkpoint: `ckpt-<epoch>/` folders, a `latest`
pointer written last, the newest 2 kept); every replica resumes from the newest one and trains only
the remaining epochs, and metrics.json records `resumed_from_epoch`, `attempt` and the history of
all attempts. A checkpoint written for other data or settings (except `epochs`) is refused, naming
what differs; one written by any number of workers resumes with any other.
On SIGTERM (ctx.stop_requested) a lone worker stops at the next engine call (at most
_MAX_CHUNK_STEPS steps; the epoch's end on the book's data); workers under MWMS stop at the epoch's
end, after all-reducing their stop flags so that all stop after the same epoch. The trainer then
raises Terminated (exit 143) after the checkpoint of the last finished epoch; an unfinished epoch
is discarded and redone by the next attempt. A peer lost under MWMS is a Rendezvous error (exit 140).

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.config import RecommenderConfig, RuntimeConfig
from runtime.errors import ConfigError, DataError, Rendezvous, Terminated

log = logging.getLogger("specc.recommender")

HEADER = ("customerId", "products")
_DIRECTORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_ID_RE = r"\d{1,18}"
_PRODUCTS_RE = rf"{_ID_RE}(?:\|{_ID_RE})*"
#: At most this many optimizer steps per engine call (a whole epoch on the book's data; every
#: call has the same shape, so XLA compiles once).
_MAX_CHUNK_STEPS = 2048
#: At most this many bytes of dropout masks per engine call (see max_chunk_steps).
_MAX_MASK_BYTES = 64 << 20


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


# ---------------------------------------------------------------- split and data order


def split_indices(n: int, validation_split: float, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation row indices: Keras' cut (first int(n * (1 - split)) rows train) after an
    optional seeded permutation (numpy default_rng(seed)); `tail` keeps the book's order."""
    n_train = int(n * (1.0 - validation_split))
    order = np.random.default_rng(seed).permutation(n) if kind == "shuffle" else np.arange(n)
    if n_train < 1 or n_train >= n:
        raise DataError("transactions", f"{n} rows cannot be split with validation_split {validation_split}")
    return order[:n_train], order[n_train:]


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order the training rows are visited in `epoch`: a permutation seeded by (seed, epoch),
    so a run resumed from a checkpoint sees the same data order as an uninterrupted one. Every
    epoch gets a new order, as `shuffle=True` promises (Keras 3's fit on numpy input after
    keras.utils.set_random_seed, as the book's notebook runs, repeats its first order in every
    epoch; bench/recommender_quality.py shows it and what it costs the final epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def chunk_shape(n: int, batch_size: int, max_steps: int) -> tuple[int, int]:
    """How an epoch of n rows is cut into engine calls: (calls, steps per call), the epoch's
    batches spread over as few equal calls of at most max_steps steps as possible."""
    steps = -(-n // batch_size)
    calls = -(-steps // max_steps)
    return calls, -(-steps // calls)


def chunked_epoch(u, p, y, batch_size: int, max_steps: int, order: np.ndarray, rows: int):
    """One epoch of training data cut as chunk_shape says: the rows in `order` in batches of
    batch_size (as Keras batches shuffled numpy input), every batch padded to `rows` rows, the last
    batch and the last call filled up, all padding with weight 0. Returns arrays (users, products,
    y, weights), each of shape (calls, steps, rows)."""
    n = len(order)
    calls, steps = chunk_shape(n, batch_size, max_steps)
    pad = calls * steps * batch_size - n
    idx = np.r_[order, np.zeros(pad, order.dtype)].reshape(calls, steps, batch_size)
    w = np.r_[np.ones(n, np.float32), np.zeros(pad, np.float32)].reshape(calls, steps, batch_size)
    if rows > batch_size:
        wider = ((0, 0), (0, 0), (0, rows - batch_size))
        idx, w = np.pad(idx, wider), np.pad(w, wider)
    return u[idx], p[idx], y[idx], w


def max_chunk_steps(batch_size: int, factors: int) -> int:
    """Optimizer steps per engine call at most: _MAX_CHUNK_STEPS, fewer where one call's dropout
    masks (batch_size * 3 * factors bytes a step) would pass _MAX_MASK_BYTES."""
    return max(1, min(_MAX_CHUNK_STEPS, _MAX_MASK_BYTES // (batch_size * 3 * factors)))


def dropout_keep(seed: int, epoch: int, chunk: int, shape: tuple, rate: float) -> np.ndarray:
    """Dropout keep masks for one engine call (bool, True with probability 1 - rate): float32
    uniforms from numpy's default_rng([seed, epoch, chunk, 1]) >= rate, as tf.nn.dropout keeps.
    With rate 0 nothing is dropped and a (steps, 1, 1) placeholder stands in."""
    if rate <= 0:
        return np.ones((shape[0], 1, 1), bool)
    return np.random.default_rng([seed, epoch, chunk, 1]).random(shape, dtype=np.float32) >= np.float32(rate)


# ---------------------------------------------------------------- model

#: The model's weights, in the order of the book's Keras model's get_weights().
WEIGHT_NAMES = ("customer_embedding", "product_embedding", "hidden_kernel", "hidden_bias", "rating_kernel", "rating_bias")
#: Largest book-sized embedding table (max id + 1 rows, times factors) keras_initial_weights draws.
_MAX_BOOK_TABLE = 1 << 25


def keras_initial_weights(tf, seed: int, customers: np.ndarray, products: np.ndarray, factors: int) -> list:
    """The book's model's initial weights under Keras 3 after keras.utils.set_random_seed(seed)
    (what the reference notebook runs): Keras' default initializers (embeddings uniform in
    +-0.05, dense kernels glorot_uniform, zero biases), each drawn by tf.random.stateless_uniform
    with the seed that Keras 3 takes from Python's random module (random.Random(seed).randint(1,
    10**9), in layer order; each Dropout layer takes one too). The book's embedding tables have
    max id + 1 rows indexed by raw id; row i here (the i-th smallest id) gets that table's row for
    its id, so every customer and product starts from the book's vector. A book-sized table over
    _MAX_BOOK_TABLE values (huge sparse ids) is drawn at the compact size instead. Returns
    numpy arrays in WEIGHT_NAMES order."""
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


def embed(tf, weights, users, products):
    """The model's first layers: each pair's customer and product embedding rows, concatenated
    (B, 2 * factors); `users` and `products` are embedding row indices, `weights` in WEIGHT_NAMES order."""
    return tf.concat([tf.gather(weights[0], users), tf.gather(weights[1], products)], axis=1)


def head(tf, weights, x, keep=None, rate: float = 0.0):
    """The rest of the model on embedding rows x: dropout -> dense(factors) -> relu -> dropout ->
    dense(1), one prediction per row. Training passes the dropout keep masks (`keep`, bool
    (B, 3 * factors): the concatenation's units, then the hidden layer's), kept units scaled by
    1 / (1 - rate) as tf.nn.dropout does; without them it is inference."""
    _, _, k1, b1, k2, b2 = weights
    drop = keep is not None and rate > 0
    if drop:
        f2 = x.shape[1]
        scale = tf.constant(1.0 / (1.0 - rate), tf.float32)
        x = tf.where(keep[:, :f2], x * scale, tf.zeros_like(x))
    h = tf.nn.relu(tf.matmul(x, k1) + b1)
    if drop:
        h = tf.where(keep[:, f2:], h * scale, tf.zeros_like(h))
    return (tf.matmul(h, k2) + b2)[:, 0]


def predict(tf, weights, users, products):
    """The model's inference output for pairs of embedding row indices."""
    return head(tf, weights, embed(tf, weights, users, products))


def msle(tf, y_true, y_pred):
    """Keras' mean_squared_logarithmic_error of each row (both sides clipped at 1e-7); the training
    loss is its weighted mean over a batch, the validation MSLE its mean."""
    eps = tf.constant(1e-7)
    return tf.square(tf.math.log(tf.maximum(y_pred, eps) + 1.0) - tf.math.log(tf.maximum(y_true, eps) + 1.0))


# ---------------------------------------------------------------- engine

#: Optimizer steps between the folds of the embedding tables' moment scales into the moments
#: (b1^256 ~ 2e-12: far from float32's limits either way).
_FOLD_EVERY = 256
#: Keras' Adam defaults (the book compiles with optimizer="adam").
_BETA_1, _BETA_2, _EPSILON = 0.9, 0.999, 1e-7
#: The optimizer state's layout in a checkpoint (Engine.optimizer_variables), for any number of workers.
OPTIMIZER_STATE = "xla-adam-scaled"


class Engine:
    """The model's six variables and Adam's state, trained alone or with peer workers under
    MultiWorkerMirroredStrategy. `train_chunk(users, products, y, weights, keep)` takes one call's
    inputs as chunked_epoch and dropout_keep make them (arrays of shape (steps, rows), keep
    (steps, rows, 3 * factors); weight 0 marks padding) and returns the sum of the batch losses
    weighted by their row counts and the row count (the epoch loss Keras reports is their ratio).

    A step is one global batch; its loss is the mean MSLE over the batch's real rows. Worker r of n
    computes the gradients of rows [r * rows / n, (r + 1) * rows / n) of the batch, which sum to the
    batch's. Alone, one call is one XLA computation looping over the steps (faster than calling the
    two halves of a step one by one). With peers, each step runs the same two XLA functions,
    gradients then update, with one all-reduce between them (XLA on CPU cannot run collectives):
    every worker pads its slice's embedding-row gradients to the whole batch, so the sum assembles
    the batch's. Every worker applies the same update to its own copy of the variables, so the
    copies stay identical, and n workers train what one would, but for the order of float additions.

    The optimizer is Adam with Keras' defaults (b1 0.9, b2 0.999, eps 1e-7, bias correction as
    tf-keras: alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)), applied here rather than by Keras: Keras
    `fit`, even with jit_compile=True, is several times slower, and under MWMS on CPU it cannot
    compile its collectives (bench/recommender_keras_fit.py). Dense variables get the textbook
    update. For the embedding tables (sparse gradients) every row's moments decay each step (also
    rows not in the batch), so each table keeps its moments scaled by the running decay, m = c1 * M
    and v = c2 * V (c1 = b1^k, c2 = b2^k): a step multiplies two scalars, adds the batch's gradient
    to the batch's rows of M and V (over c1, c2), and moves every row by alpha * c1*M / (sqrt(c2*V)
    + eps), one fused pass over the table. Duplicate rows in a batch sum before squaring, as with a
    dense gradient. Every _FOLD_EVERY steps (an outer loop, so that XLA does not turn a per-step
    condition into two more passes over each table) and at the end of every call the scales are
    folded back into M and V, so nothing over- or underflows and a checkpoint holds the plain
    moments (scales 1).

    `optimizer_variables` (step, then m, v and the scales) is the optimizer state checkpoints
    save (OPTIMIZER_STATE), the same for any number of workers."""

    def __init__(self, tf, weights: list, learning_rate: float, dropout: float, *, strategy=None, rank: int = 0,
                 workers: int = 1):
        self.tf = tf
        self.lr = learning_rate
        self.rate = float(dropout)
        self.strategy, self.rank, self.workers = strategy, rank, workers
        self.factors = int(weights[2].shape[1])
        self.sparse = (True, True, False, False, False, False)
        self.variables = [tf.Variable(w, name=n) for w, n in zip(weights, WEIGHT_NAMES)]
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="adam_step")
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False, name="adam_m") for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False, name="adam_v") for v in self.variables]
        self.scale = [tf.Variable([1.0, 1.0], trainable=False, name="adam_scale") for _ in self.variables]
        self.optimizer_variables = [self.step, *self.m, *self.v, *self.scale]
        if workers == 1:
            self.train_chunk = tf.function(self._chunk_alone, jit_compile=True, autograph=False)
        else:
            self._grads_xla = tf.function(self._grads, jit_compile=True, autograph=False)
            self._apply_xla = tf.function(self._apply, jit_compile=True, autograph=False)
            self.train_chunk = tf.function(self._chunk_together, autograph=False)

    def rows(self, batch_size: int) -> int:
        """Rows of a padded global batch: batch_size rounded up to a multiple of the workers."""
        return -(-batch_size // self.workers) * self.workers

    def get_weights(self) -> list:
        return [v.numpy() for v in self.variables]

    def fits(self, weights: list, optimizer: list) -> bool:
        """Whether arrays of these shapes can be loaded by set_state."""
        want = [tuple(v.shape) for v in (*self.variables, *self.optimizer_variables)]
        return [tuple(np.shape(a)) for a in (*weights, *optimizer)] == want

    def set_state(self, weights: list, optimizer: list) -> None:
        """Load the weights (get_weights order) and the optimizer state (optimizer_variables order)."""
        for var, value in zip((*self.variables, *self.optimizer_variables), (*weights, *optimizer)):
            var.assign(value)

    def blank_inputs(self, steps: int, rows: int) -> tuple:
        """train_chunk inputs of `steps` batches of `rows` rows that are all padding (no step runs)."""
        keep = (steps, rows, 3 * self.factors) if self.rate > 0 else (steps, 1, 1)
        ids, w = np.zeros((steps, rows), np.int32), np.zeros((steps, rows), np.float32)
        return ids, ids, w, w, np.zeros(keep, bool)

    def _grads(self, users, products, y, w, keep):
        """This worker's part of one global batch: its rows' summed MSLE over the batch's row count,
        and that loss's gradients w.r.t. the batch's embedding rows (zero outside this worker's
        slice) and w.r.t. the four dense weights."""
        tf = self.tf
        n = users.shape[0] // self.workers
        mine = slice(self.rank * n, (self.rank + 1) * n)
        x = embed(tf, self.variables, users[mine], products[mine])
        with tf.GradientTape() as tape:
            tape.watch(x)
            pred = head(tf, self.variables, x, keep[mine] if self.rate > 0 else None, self.rate)
            loss = tf.reduce_sum(msle(tf, y[mine], pred) * w[mine]) / tf.reduce_sum(w)
        dx, *dense = tape.gradient(loss, [x, *self.variables[2:]])
        if self.workers > 1:
            dx = tf.pad(dx, [[self.rank * n, (self.workers - 1 - self.rank) * n], [0, 0]])
        return loss, dx, dense

    def _apply(self, users, products, dx, dense) -> None:
        """One Adam step from a global batch's gradients (embedding rows dx, dense weights)."""
        tf = self.tf
        t = tf.cast(self.step + 1, tf.float32)
        b1, b2, eps = tf.constant(_BETA_1), tf.constant(_BETA_2), tf.constant(_EPSILON)
        alpha = self.lr * tf.sqrt(1 - tf.pow(b2, t)) / (1 - tf.pow(b1, t))
        grads = [(users, dx[:, :self.factors]), (products, dx[:, self.factors:]), *dense]
        for var, g, m, v, scale, sparse in zip(self.variables, grads, self.m, self.v, self.scale, self.sparse):
            if not sparse:
                m.assign_add((g - m) * (1 - b1))
                v.assign_add((tf.square(g) - v) * (1 - b2))
                var.assign_sub(m * alpha / (tf.sqrt(v) + eps))
                continue
            idx, values = g
            c = scale * tf.stack([b1, b2])
            scale.assign(c)
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

    def _chunk(self, w, step):
        """Run step(k) -> batch loss for every batch k of the call that holds rows, folding the
        scales every _FOLD_EVERY steps and at the end; returns train_chunk's two sums."""
        tf = self.tf
        counts = tf.reduce_sum(w, axis=1)
        n_steps = tf.reduce_sum(tf.cast(counts > 0, tf.int32))

        def one(k, loss_sum):
            return k + 1, loss_sum + step(k) * counts[k]

        def block(k, loss_sum):
            end = tf.minimum(k + _FOLD_EVERY, n_steps)
            k, loss_sum = tf.while_loop(lambda k, _: k < end, one, (k, loss_sum))
            self._fold()
            return k, loss_sum

        _, loss_sum = tf.while_loop(lambda k, _: k < n_steps, block, (tf.constant(0), tf.constant(0.0)))
        return loss_sum, tf.reduce_sum(counts)

    def _chunk_alone(self, users, products, y, w, keep):
        def step(k):
            loss, dx, dense = self._grads(users[k], products[k], y[k], w[k], keep[k])
            self._apply(users[k], products[k], dx, dense)
            return loss

        return self._chunk(w, step)

    def _chunk_together(self, users, products, y, w, keep):
        tf = self.tf
        shapes = [(), (users.shape[1], 2 * self.factors), *(tuple(v.shape) for v in self.variables[2:])]
        sizes = [int(np.prod(s)) for s in shapes]

        def replica_step(k):
            loss, dx, dense = self._grads_xla(users[k], products[k], y[k], w[k], keep[k])
            flat = tf.concat([tf.reshape(a, [-1]) for a in (loss, dx, *dense)], axis=0)
            flat = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, flat)
            loss, dx, *dense = (tf.reshape(a, s) for a, s in zip(tf.split(flat, sizes), shapes))
            self._apply_xla(users[k], products[k], dx, dense)
            return loss

        return self._chunk(w, lambda k: self.strategy.run(replica_step, args=(k,)))


# ---------------------------------------------------------------- export


def make_serving_module(tf, weights, customers: np.ndarray, products: np.ndarray, fallback: float):
    """A tf.Module whose `serve(users, products)` maps raw ids to embedding rows and rates pairs
    with `predict` (plain TensorFlow ops, so the SavedModel needs no Keras to load). `weights`
    are the trained model's (Engine.get_weights()); ids not in the vocabularies get `fallback`
    (the training mean)."""

    class Recommender(tf.Module):
        def __init__(self):
            super().__init__(name="recommender")
            self.weights = [tf.Variable(w, trainable=False, name=n) for w, n in zip(weights, WEIGHT_NAMES)]
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
            pred = predict(tf, self.weights, ui, pi)
            return {"predictions": tf.where(tf.logical_and(uk, pk), pred, self.fallback)}

    return Recommender()


class _Ahead:
    """Iterates a generator one item ahead on a helper thread: the next engine call's numpy inputs
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
    throwaway SavedModel of placeholder weights under `work_dir` (deleted at once), so that the
    one-time costs of a process's first tf.saved_model.save fall here. Without start() the module
    is built when asked for."""

    def __init__(self, tf, variables, customers, products, fallback: float, work_dir: Path | None = None):
        import threading

        self.tf = tf
        self.work_dir = work_dir
        # placeholders of the weights' shapes: the thread never reads variables that training updates
        self.zeros = [np.zeros(v.shape, v.dtype.as_numpy_dtype) for v in variables]
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
                with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="recommender-warmup-") as tmp:
                    self.tf.saved_model.save(self.module, tmp, signatures={"serving_default": self.module.serve})
            except Exception as exc:  # noqa: BLE001 - only a warm-up: the real export reports its own errors
                log.debug("SavedModel warm-up failed: %s", exc)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.thread.start()

    def module_with(self, weights):
        """The serving module holding `weights` (Engine.get_weights())."""
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


def run_fingerprint(tc: RecommenderConfig, data: Ratings) -> dict:
    """What a checkpoint must match to be resumed: the data, every setting except `epochs`, and
    the optimizer state's layout. The number of workers is not part of it."""
    h = hashlib.sha256()
    for a in (data.customer_ids, data.product_ids, data.ratings):
        h.update(np.ascontiguousarray(a).tobytes())
    keep = ("batch_size", "validation_split", "factors", "dropout", "learning_rate", "split", "seed")
    return {"data_sha256": h.hexdigest(), "optimizer_state": OPTIMIZER_STATE, **{k: getattr(tc, k) for k in keep}}


def fingerprint_differences(saved: dict, current: dict) -> str:
    """What differs between a checkpoint's fingerprint and this run's, in words."""
    out = []
    for key in [*current, *(k for k in saved if k not in current)]:
        if saved.get(key) != current.get(key):
            out.append("the data" if key == "data_sha256" else f"{key} {saved.get(key)!r} (this run: {current.get(key)!r})")
    return ", ".join(out)


@dataclass
class TrainingState:
    """Epochs done and the per-epoch history across attempts; saved with the weights and the
    optimizer state after every epoch (runtime.checkpoint layout:
    `<checkpoint_uri>/ckpt-<epoch>/{weights.npz,state.json}`), whatever the number of workers.

    The split, each epoch's data order and its dropout masks are functions of the seed and the
    epoch (split_indices, epoch_order, dropout_keep), so epoch + seed is the whole data state: a
    resumed run repeats the uninterrupted one, bit for bit with the same number of workers."""

    epoch: int = 0
    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    epoch_s: list = field(default_factory=list)
    epoch_cpu_s: list = field(default_factory=list)
    attempt: int = 1
    store: object = None
    fingerprint: dict = None
    work_dir: Path | None = None
    chief: bool = True

    @classmethod
    def open(cls, tc: RecommenderConfig, ctx, data: Ratings) -> "TrainingState":
        """A state bound to the checkpoint store at tc.checkpoint_uri (nothing loaded yet)."""
        from runtime.checkpoint import CheckpointStore

        state = cls()
        state.store = CheckpointStore(tc.checkpoint_uri, ctx.storage, keep=2, work_dir=ctx.work_dir)
        state.fingerprint = run_fingerprint(tc, data)
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

    def restore(self, engine: Engine) -> "TrainingState":
        """Load the newest checkpoint (if any) into the engine."""
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
        saved = doc.get("fingerprint") or {}
        if saved != self.fingerprint:
            raise ConfigError(f"checkpoint {where} was written for other data or settings: "
                              f"{fingerprint_differences(saved, self.fingerprint)}; "
                              "delete it or set another checkpoint_uri")
        if not engine.fits(weights, opt):
            raise DataError(where, "checkpoint's weights or optimizer state do not fit this model")
        engine.set_state(weights, opt)
        self.epoch = int(doc["epoch"])
        for key in ("loss", "val_loss", "epoch_s", "epoch_cpu_s"):
            setattr(self, key, [float(v) for v in doc[key]])
        self.attempt = int(doc.get("attempt", 1)) + 1
        log.info("resuming from checkpoint %s: %d epoch(s) done, attempt %d", where, self.epoch, self.attempt)
        self.store.cleanup()
        return self

    def save(self, engine: Engine) -> None:
        """Write weights + optimizer state + history as checkpoint `epoch` (the chief only)."""
        if not self.chief:
            return
        t = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="recommender-ckpt-") as tmp:
            d = Path(tmp)
            weights, opt = engine.get_weights(), [v.numpy() for v in engine.optimizer_variables]
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
    distributed = task.distributed
    if task.rank < 0:
        raise ConfigError(f"replica {task.name} does not train: the recommender needs chief/master/worker replicas only")
    from runtime.trainers._keras import error_reason, load_tf, peer_errors, strategy_for

    # Importing TensorFlow on a second thread while this one preprocesses gained nothing (both
    # hold the GIL most of the time), so: import, create the strategy, then read.
    tf, _ = load_tf()
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
    u_va, p_va, y_va = (tf.constant(a[val_idx]) for a in (u_all, p_all, y_all))
    train_mean = float(y_tr.mean())
    mean_msle = float(tf.reduce_mean(msle(tf, y_va, train_mean)))
    t_prep = time.perf_counter()
    log.info("%d ratings: %d customers x %d products; %s split: %d train, %d validation (read %.2f s, preprocess %.2f s, "
             "after %.2f s importing TensorFlow)", len(data), len(data.customers), len(data.products),
             tc.split, len(y_tr), len(val_idx), t_read - t_import, t_prep - t_read, t_import - t_start)

    state = TrainingState.open(tc, ctx, data) if tc.checkpoint_uri else TrainingState()
    ctx.check_stop()
    # Plain variables on every worker, outside strategy.scope(): the engine all-reduces itself.
    engine = Engine(tf, keras_initial_weights(tf, tc.seed, data.customers, data.products, tc.factors),
                    tc.learning_rate, tc.dropout, strategy=strategy, rank=task.rank, workers=task.world_size)
    if state.store is not None:
        state.restore(engine)
    rows = engine.rows(tc.batch_size)
    max_steps = max_chunk_steps(tc.batch_size, tc.factors)
    n_calls, steps = chunk_shape(len(y_tr), tc.batch_size, max_steps)

    def call_inputs(first_epoch: int):
        """The numpy inputs of every engine call from first_epoch on, in order."""
        for epoch in range(first_epoch, tc.epochs):
            chunks = chunked_epoch(u_tr, p_tr, y_tr, tc.batch_size, max_steps, epoch_order(len(y_tr), tc.seed, epoch),
                                   rows)
            for i in range(n_calls):
                keep = dropout_keep(tc.seed, epoch, i, (steps, tc.batch_size, 3 * tc.factors), tc.dropout)
                if tc.dropout > 0 and rows > tc.batch_size:
                    keep = np.pad(keep, ((0, 0), (0, rows - tc.batch_size), (0, 0)))
                yield (*(a[i] for a in chunks), keep)

    def train_epoch(epoch: int) -> tuple[float, float]:
        """One epoch in its seeded order: (training loss, validation MSLE). Alone, a SIGTERM stops
        it at the next engine call and raises Terminated: the unfinished epoch is discarded."""
        loss_sum = count = 0.0
        for i in range(n_calls):
            if i and ctx.stop_requested and not distributed:
                raise Terminated(f"terminated by SIGTERM in epoch {epoch + 1}/{tc.epochs} "
                                 f"(resumes from the checkpoint of epoch {state.epoch})")
            ls, n = engine.train_chunk(*(tf.constant(a) for a in next(feed)))
            loss_sum, count = loss_sum + float(ls), count + float(n)
        return loss_sum / count, float(tf.reduce_mean(msle(tf, y_va, predict(tf, engine.variables, u_va, p_va))))

    @tf.function(autograph=False)
    def votes(flag):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(tf.identity, args=(flag,)), axis=None)

    def any_worker_stopping() -> bool:
        """All-reduce the workers' stop flags at an epoch end, so that they stop together (SIGTERM
        reaches pods at different moments; one stopping alone would strand the others' collectives)."""
        return float(votes(tf.constant(1.0 if ctx.stop_requested else 0.0))) > 0

    export = (_ExportPrep(tf, engine.variables, data.customers, data.products, train_mean, ctx.work_dir)
              if task.is_chief else None)
    start_epoch = state.epoch
    feed = None
    t_compile = time.perf_counter()
    try:
        if start_epoch < tc.epochs:
            # Trace (Python), then start the helper threads and compile with an all-padding input
            # (no step runs): the compile holds no GIL, so the first call's inputs and the serving
            # module are made meanwhile.
            blank = engine.blank_inputs(steps, rows)
            engine.train_chunk.get_concrete_function(*(tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in blank))
            feed = _Ahead(call_inputs(start_epoch))
            if export is not None:
                export.start()
            engine.train_chunk(*(tf.constant(a) for a in blank))
        t_fit, c_fit = time.perf_counter(), time.process_time()
        for epoch in range(start_epoch, tc.epochs):
            t, c = time.perf_counter(), time.process_time()
            try:
                loss, val_loss = train_epoch(epoch)
                dt = time.perf_counter() - t
                state.record(loss, val_loss, dt, time.process_time() - c)
                log.info("epoch %d/%d: loss %.5f val_loss %.5f (%.1f s, %.0f samples/s)", epoch + 1, tc.epochs,
                         loss, val_loss, dt, len(y_tr) / dt)
                if state.store is not None:
                    state.save(engine)
                # with peers, a SIGTERM after the vote counts at the next epoch's end
                stopping = distributed and any_worker_stopping()
            except peer_errors(tf) as exc:
                if not distributed:
                    raise
                raise Rendezvous(f"lost a peer worker in epoch {epoch + 1}/{tc.epochs} "
                                 f"(resumes from the checkpoint of epoch {state.epoch}): {error_reason(exc)}") from None
            if stopping:
                raise Terminated(f"terminated by SIGTERM (this or another worker) after epoch {epoch + 1}/{tc.epochs}")
            if not distributed:
                ctx.check_stop()
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
                  "validation_split": tc.validation_split, "train": int(len(y_tr)), "validation": int(len(val_idx))},
        "hyperparameters": {"batch_size": tc.batch_size, "epochs": tc.epochs, "factors": tc.factors,
                            "dropout": tc.dropout, "learning_rate": tc.learning_rate,
                            "optimizer": "adam", "loss": "mean_squared_logarithmic_error"},
        "loss": list(state.loss),
        "val_loss": list(state.val_loss),
        "val_msle_mean_predictor": mean_msle,
        "train_mean": train_mean,
        "workers": task.world_size,
        "timings_s": {"import": t_import - t_start, "read": t_read - t_import, "preprocess": t_prep - t_read,
                      "build": t_compile - t_prep, "compile": t_fit - t_compile, "epochs": epoch_s,
                      "epochs_cpu": state.epoch_cpu_s[-len(epoch_s):] if epoch_s else [],
                      "epochs_all_attempts": list(state.epoch_s), "train": t_trained - t_fit,
                      "cpu_before_fit": c_fit - c_start, "cpu_before_export": time.process_time() - c_start},
        "samples_per_s": len(y_tr) / float(np.median(state.epoch_s)) if state.epoch_s else None,
        "resumed_from_epoch": start_epoch,
        "attempt": state.attempt,
        "checkpoint_uri": tc.checkpoint_uri,
        "steps_per_call": steps,
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
        module = export.module_with(engine.get_weights())
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
