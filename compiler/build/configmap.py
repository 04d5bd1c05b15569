"""The ConfigMap holding the runtime config a built-in trainer reads."""

from __future__ import annotations

from compiler.build.common import Names, metadata
from runtime.rules import CONFIG_FILE_NAME, dump_runtime_config

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:  # the models; at run time a job may also be a snapshot record (compiler/fastvalid.py)
    from compiler.spec import TrainingJob
    from runtime.config import RuntimeConfig


def runtime_config(job: TrainingJob, names: Names) -> RuntimeConfig:
    """The RuntimeConfig of a spec with a built-in trainer (validated by the job's own validator)."""
    from compiler.fastvalid import construct_like

    data: dict = {
        "job": {"name": job.metadata.name, "namespace": job.metadata.namespace, "framework": job.spec.framework},
        "trainer": job.spec.trainer.model_dump(),
    }
    st = job.spec.storage
    if st is not None:
        data["storage"] = {"endpoint": st.endpoint, "region": st.region}
    return construct_like(job, "RuntimeConfig", data)


def build(job: TrainingJob, names: Names, *, source: str | None = None) -> dict:
    """ConfigMap `<job>-config` with key config.json."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(job, names.config, source=source),
        "data": {CONFIG_FILE_NAME: dump_runtime_config(runtime_config(job, names))},
    }
