"""Runtime-config models: what each built-in trainer needs, shared by compiler and runtime.

The compiler embeds a `TrainerConfig` in the spec (`spec.trainer`) and writes a whole
`RuntimeConfig` as JSON into the job's ConfigMap; the runtime reads that file back with
`load_runtime_config`. Importing this module never imports TensorFlow, torch or minio.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from runtime.contract import (  # noqa: F401 - re-exported: the config's public constants
    CONFIG_ENV,
    CONFIG_FILE_NAME,
    CONFIG_MOUNT_DIR,
    CONFIG_PATH,
    RUNTIME_API_VERSION,
    TRAINER_FRAMEWORKS,
    ENDPOINT_PATTERN,
    EXPORT_DIRECTORY_PATTERN,
    REGION_PATTERN,
    URI_PATTERN,
    dump_runtime_config,
)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True, allow_inf_nan=False)


#: Where a trainer reads or writes (runtime.contract.URI_PATTERN says what is accepted).
Uri = Annotated[str, Field(min_length=1, max_length=1024, pattern=URI_PATTERN)]


class StorageConfig(Strict):
    """Where s3:// URIs live. Credentials never appear here: they come from the environment
    (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, injected from a Kubernetes Secret)."""

    endpoint: str | None = Field(
        default=None,
        description="S3/MinIO endpoint URL, e.g. http://minio-service.kubeflow:9000. "
        "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL override it at run time.",
        pattern=ENDPOINT_PATTERN,
        max_length=253,
        examples=["http://minio-service.kubeflow:9000"],
    )
    region: str = Field(default="us-east-1", pattern=REGION_PATTERN, description="The S3 region (MinIO ignores it).")


class RecommenderConfig(Strict):
    """Book section 1: deep collaborative filtering on purchase counts (Keras)."""

    name: Literal["recommender"] = Field(default="recommender", description="The built-in trainer: recommender.")
    users_uri: Uri = Field(default="s3://data/recommender/users.csv", description="CSV of the known users (read as the book does).")
    transactions_uri: Uri = Field(default="s3://data/recommender/transactions.csv",
                                  description="CSV of the purchases: customer, product, quantity, date.")
    directory_uri: Uri | None = Field(
        default="s3://data/recommender/directory.txt",
        description="Object holding the export directory name (read as the book does); not read when export_directory is set.",
    )
    export_directory: str | None = Field(
        default=None,
        pattern=EXPORT_DIRECTORY_PATTERN,
        description="Export directory name; when set, directory_uri is not read.",
        examples=["recommender"],
    )
    model_root: Uri = Field(default="s3://models", description="Models go to <model_root>/<directory>/<version>/.")
    version: int = Field(default=1, ge=1, le=2**31 - 1, description="Model version: the export folder's last segment.")
    batch_size: int = Field(default=64, ge=1, le=1 << 20, description="Training batch size.")
    epochs: int = Field(default=3, ge=1, le=10_000, description="Passes over the training data.")
    validation_split: float = Field(default=0.25, gt=0.0, lt=1.0, description="Fraction of the ratings held out to validate.")
    factors: int = Field(default=50, ge=1, le=4096, description="Embedding size of customers and products.")
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0, description="Dropout rate after the embeddings.")
    learning_rate: float = Field(default=0.001, gt=0.0, le=10.0, description="Adam's learning rate.")
    split: Literal["shuffle", "tail"] = Field(
        default="shuffle",
        description="shuffle: seeded random validation split; tail: the book's unshuffled last fraction.",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the split, the initial weights, batch order and dropout.")
    checkpoint_uri: Uri | None = Field(
        default=None, description="Durable location (PVC path or s3://) for per-epoch checkpoints.",
        examples=["/train/checkpoints"],
    )


class IncomeConfig(Strict):
    """Book section 6: scikit-learn random forest on UCI adult, explained with alibi Anchors."""

    name: Literal["income"] = Field(default="income", description="The built-in trainer: income.")
    data_uri: Uri = Field(default="s3://data/income/adult.data", description="The UCI adult data file.")
    export_uri: Uri = Field(default="s3://models/income/1/", description="Where the fitted model and explanations go.")
    n_estimators: int = Field(default=50, ge=1, le=10_000, description="Trees in the random forest.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the permutation and the forest.")
    train_rows: int = Field(default=30_000, ge=1, le=10**9, description="First N permuted rows train; the rest (after one skipped row, as the book) test.")
    n_jobs: Literal[-1] | Annotated[int, Field(ge=1, le=1024)] = Field(default=-1, description="Cores for fitting and prediction; -1 = all.")
    explain: bool = Field(default=True, description="Compute alibi Anchor explanations (needs the 'explain' extra).")
    anchor_threshold: float = Field(default=0.95, gt=0.0, le=1.0, description="Precision an Anchor explanation must reach.")
    anchor_seed: int = Field(default=1, ge=0, le=2**32 - 1, description="Seed of the Anchor explainer.")
    explain_rows: list[Annotated[int, Field(ge=0, le=10**9)]] = Field(default=[0, 6], max_length=1000,
                                                                      description="Test rows to explain.")


class MnistConfig(Strict):
    """Book sections 3-5: the 784-500-10 MNIST network (TensorFlow or PyTorch by framework)."""

    name: Literal["mnist"] = Field(default="mnist", description="The built-in trainer: mnist.")
    data_dir: Uri = Field(default="s3://data/mnist/", description="Folder holding the MNIST idx .gz files.")
    log_dir: Uri = Field(default="/train/logs", description="TensorBoard summaries go to log_dir/train and log_dir/test.")
    export_uri: Uri | None = Field(default="s3://models/mnist/1/", description="Where the trained model goes (none: not exported).")
    learning_rate: float = Field(default=0.001, gt=0.0, le=10.0, description="The optimizer's learning rate.")
    batch_size: int = Field(default=100, ge=1, le=1 << 20, description="Batch size per replica.")
    max_steps: int = Field(default=1000, ge=1, le=10_000_000, description="Training steps.")
    dropout: float = Field(default=0.9, gt=0.0, le=1.0, description="Keep probability, as the book's flag.")
    train_rows: int = Field(default=8_000, ge=1, le=10**9, description="Rows of the data set that train.")
    test_rows: int = Field(default=2_000, ge=1, le=10**9, description="Rows held out to measure accuracy.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the initial weights and the batch order.")
    checkpoint_uri: Uri | None = Field(
        default=None,
        description="Durable folder (PVC path or s3://) for checkpoints; a restarted replica resumes from the latest.",
        examples=["s3://checkpoints/mnist/"],
    )
    checkpoint_every: int = Field(default=100, ge=1, le=10_000_000, description="Steps between checkpoints.")


TrainerConfig = Annotated[
    Union[RecommenderConfig, IncomeConfig, MnistConfig], Field(discriminator="name")
]

#: The frameworks a spec names; xgboost, jax and paddle run custom containers only.
Framework = Literal["tensorflow", "pytorch", "xgboost", "jax", "paddle", "sklearn", "python"]


class JobInfo(Strict):
    """Identity of the job the runtime belongs to (for logs and metrics)."""

    name: str
    namespace: str = "default"
    framework: Framework


class RuntimeConfig(Strict):
    """The whole file the compiler writes into the ConfigMap and the runtime reads."""

    apiVersion: Literal["specc.dev/runtime/v1"] = RUNTIME_API_VERSION
    job: JobInfo
    storage: StorageConfig = Field(default_factory=StorageConfig)
    trainer: TrainerConfig


def load_runtime_config(text: str) -> RuntimeConfig:
    """Parse and validate the JSON text of a runtime config file."""
    return RuntimeConfig.model_validate_json(text)
