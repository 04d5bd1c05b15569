"""The ConfigMap `<job>-config` holding the runtime config a built-in trainer reads."""

from __future__ import annotations

from compiler.kinds.pod import metadata
from runtime.contract import CONFIG_FILE_NAME, dump_runtime_config

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (render start-up)
if TYPE_CHECKING:
    from compiler.naming import Names
    from compiler.spec import TrainingJob

API_VERSION = "v1"
KIND = "ConfigMap"
#: Kubernetes caps a ConfigMap's data at 1 MiB.
MAX_DATA_BYTES = 1 << 20


def runtime_config(job: TrainingJob):
    """The validated RuntimeConfig of a spec with a built-in trainer."""
    from compiler.validator import validate

    data: dict = {
        "job": {"name": job.metadata.name, "namespace": job.metadata.namespace, "framework": job.spec.framework},
        "trainer": job.spec.trainer.model_dump(),
    }
    st = job.spec.storage
    if st is not None:
        data["storage"] = {"endpoint": st.endpoint, "region": st.region}
    return validate(data, "RuntimeConfig")


def config_text(job: TrainingJob) -> str:
    """The config.json a built-in trainer reads (it does not depend on the job's object names)."""
    return dump_runtime_config(runtime_config(job))


def build(job: TrainingJob, names: Names, *, source: str | None = None, text: str | None = None) -> dict:
    """ConfigMap `<job>-config` with the key config.json (`text`, when already made)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata(job, names.config, source=source),
        "data": {CONFIG_FILE_NAME: config_text(job) if text is None else text},
    }
