"""The ConfigMap holding the runtime config a built-in trainer reads."""

from __future__ import annotations

from compiler.build.common import Names, metadata
from compiler.spec import TrainingJob
from runtime.config import CONFIG_FILE_NAME, JobInfo, RuntimeConfig, StorageConfig, dump_runtime_config


def runtime_config(job: TrainingJob, names: Names) -> RuntimeConfig:
    """The RuntimeConfig of a spec with a built-in trainer."""
    st = job.spec.storage
    storage = StorageConfig(endpoint=st.endpoint, region=st.region) if st is not None else StorageConfig()
    return RuntimeConfig(
        job=JobInfo(name=job.metadata.name, namespace=job.metadata.namespace, framework=job.spec.framework),
        storage=storage,
        trainer=job.spec.trainer,
    )


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """ConfigMap `<job>-config` with key config.json."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(job, names.config, source=source),
        "data": {CONFIG_FILE_NAME: dump_runtime_config(runtime_config(job, names))},
    }
