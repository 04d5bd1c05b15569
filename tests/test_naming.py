"""Job names are a promise: an unchanged spec keeps its name in every specc release.

A new name makes Argo CD create the job again (training runs again) and prune the old one, so
these are pinned by hand (see the hash stability policy in compiler/naming.py). A failure here
means a change to specc altered the compiled output of existing specs: make the change render
nothing for specs that do not use it, or, if every job must re-run, bump FORMAT_VERSION and say
so in the release notes, then update this table.
"""

from __future__ import annotations

import pytest

from compiler.naming import FORMAT_VERSION
from conftest import REPO, compile_specs

GOLDEN = REPO / "tests" / "golden"

# Changed on purpose once (issue 13): built-in trainer pods now run under the Pod Security
# "restricted" profile as the runtime image's user, with an fsGroup that makes a mounted PVC
# writable; jobs of built-in trainers (recommenderjob, mnist, pytorch-mnist, income, tiny) were
# renamed, and so re-run once, on that upgrade. Custom-image jobs kept their names.
PINNED = {
    REPO / "specs" / "recommender.yaml": "recommenderjob-3f89ebb3",
    REPO / "specs" / "mnist.yaml": "mnist-50f01bd5",
    REPO / "specs" / "mnist-gpu.yaml": "mnist-gpu-caf4df23",
    REPO / "specs" / "mnist-image.yaml": "mnist-image-ab3d1101",
    REPO / "specs" / "pytorch-dist.yaml": "pytorch-dist-5df0b522",
    REPO / "specs" / "pytorch-mnist.yaml": "pytorch-mnist-3d17cfd3",
    REPO / "specs" / "income.yaml": "income-54bcf5a1",
    GOLDEN / "minimal" / "spec.yaml": "tiny-dafea556",
    GOLDEN / "python-exitcode" / "spec.yaml": "etl-2c9102b4",
    GOLDEN / "pytorch-elastic" / "spec.yaml": "elastic-045f690a",
    GOLDEN / "tf-all-types" / "spec.yaml": "all-types",
    GOLDEN / "tf-master" / "spec.yaml": "legacy-9c840b0a",
    GOLDEN / "xgboost" / "spec.yaml": "xgboost-iris-6412ff01",
    GOLDEN / "jax" / "spec.yaml": "jax-simple-68c7d0f2",
    GOLDEN / "paddle" / "spec.yaml": "paddle-simple-74f57c35",
    GOLDEN / "pytorch-elastic-workers" / "spec.yaml": "elastic-imagenet-9d164cba",
}


def test_format_version_is_unchanged():
    assert FORMAT_VERSION == "1"


@pytest.mark.parametrize("spec", sorted(PINNED), ids=lambda p: p.relative_to(REPO).as_posix())
def test_job_names_are_pinned(spec, tmp_path):
    """The name, and the name of its ConfigMap, whatever file or folder the spec is read from."""
    moved = tmp_path / "elsewhere" / "renamed.yml"
    moved.parent.mkdir()
    moved.write_bytes(spec.read_bytes())
    for path in (spec, moved):
        (job,), diags = compile_specs([path])
        assert not diags
        assert job.job_name == PINNED[spec]
        names = {o["metadata"]["name"] for o in job.objects}
        assert names <= {PINNED[spec], PINNED[spec] + "-config"}
