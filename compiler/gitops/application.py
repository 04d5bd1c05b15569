"""Argo CD Application for the rendered folder (or for the specs through the specc CMP).

Sync options chosen for run-to-completion jobs:
- `PrunePropagationPolicy=foreground`: a pruned job's pods go before the job object does;
- `PruneLast=true`: the job of a changed spec (new hashed name) is created before the old
  one is pruned;
- `ApplyOutOfSyncOnly=true`: a sync leaves finished jobs that did not change alone;
- `CreateNamespace=false`: the training namespace (with the operator) must already exist;
- `ServerSideApply=true`: Kubeflow Trainer v2 TrainJobs carry `spec.runtimePatches`, a list keyed
  by `manager` to which Kueue's webhook adds its own entry (manager kueue.x-k8s.io/manager, filled
  in on admission) and whose entries Trainer's webhook stamps with a `time`. A client-side apply
  replaces the whole list: it deletes Kueue's entry of a queued job and fails on a running one
  (runtimePatches cannot change then), and Argo CD's diff shows the list as drift forever.
  Server-side apply merges the list by key and removes only fields Argo CD applied before; what a
  webhook adds during a request belongs to no field manager (kubernetes/apiserver
  pkg/endpoints/handlers/patch.go and create.go track fields before mutating admission), and Argo
  CD diffs such an Application by server-side apply rules too (controller/state.go: structured
  merge diff);
- `RespectIgnoreDifferences=true` with IGNORE_DIFFERENCES (TrainJob patch entries of other
  managers, the webhook's `time`): those fields are never shown as drift, even by a diff that does
  not follow server-side apply, and a sync applies them as they are live instead of removing them.
  `spec.suspend` is not ignored: specc renders it only when a spec sets it without a queue (a
  user's resume), and under server-side apply Kueue's value is never Argo CD's.
`Replace=true` / `Force=true` are never used: they delete-and-recreate, which re-runs training.
"""

from __future__ import annotations

from compiler.kinds.trainjob import MANAGER

SYNC_OPTIONS = (
    "CreateNamespace=false",
    "PrunePropagationPolicy=foreground",
    "PruneLast=true",
    "ApplyOutOfSyncOnly=true",
    "ServerSideApply=true",
    "RespectIgnoreDifferences=true",
)
#: What the cluster writes into objects specc renders, never a drift nor applied over.
IGNORE_DIFFERENCES = (
    {"group": "trainer.kubeflow.org", "kind": "TrainJob", "jqPathExpressions": [
        f'.spec.runtimePatches[] | select(.manager != "{MANAGER}")',
        ".spec.runtimePatches[].time",
    ]},
)
FINALIZER = "resources-finalizer.argocd.argoproj.io"
IN_CLUSTER = "https://kubernetes.default.svc"


def application(
    repo: str,
    *,
    path: str = "rendered",
    revision: str = "main",
    namespace: str = "kubeflow",
    name: str = "specc-jobs",
    project: str = "default",
    argocd_namespace: str = "argocd",
    server: str = IN_CLUSTER,
    auto_sync: bool = False,
    plugin: str | None = None,
) -> dict:
    """The Application object (argoproj.io/v1alpha1) that syncs `path` of `repo` at `revision`.

    With `plugin`, the source is rendered by that Config Management Plugin (plugin.yaml)
    instead of read as plain manifests. With `auto_sync`, sync is automated with prune and
    selfHeal; otherwise prune happens on a manual `argocd app sync --prune`.
    """
    source: dict = {"repoURL": repo, "targetRevision": revision, "path": path}
    if plugin:
        source["plugin"] = {"name": plugin}
    sync: dict = {}
    if auto_sync:
        sync["automated"] = {"prune": True, "selfHeal": True}
    sync["syncOptions"] = list(SYNC_OPTIONS)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": argocd_namespace,
            "labels": {"app.kubernetes.io/managed-by": "specc"},
            "finalizers": [FINALIZER],
        },
        "spec": {
            "project": project,
            "source": source,
            "destination": {"server": server, "namespace": namespace},
            "ignoreDifferences": [dict(d) for d in IGNORE_DIFFERENCES],
            "syncPolicy": sync,
        },
    }


def gitops_warnings(units) -> list:
    """Located warnings about validated specs (pipeline units) that misbehave under auto-sync.

    - runPolicy.ttlSecondsAfterFinished: the TTL controller deletes the finished job, Argo CD
      sees it missing and creates it again: training runs again, forever. (Not for a TrainJob:
      its TTL deletes the JobSet and the finished TrainJob stays.)
    - naming: fixed: a changed spec keeps its name; the operator never re-runs or updates a
      finished job, so the change is not applied (and immutable fields fail to sync).
    """
    from compiler.diagnostics import Diagnostic
    from compiler.lint import ttl_reruns

    out = []
    for u in units:
        doc, job = u.doc, u.job
        if ttl_reruns(job):
            line, col = doc.pos(("spec", "runPolicy", "ttlSecondsAfterFinished"))
            out.append(Diagnostic(
                doc.path, line, col, "spec.runPolicy.ttlSecondsAfterFinished",
                "with Argo CD auto-sync the TTL deletes the finished job and Argo CD re-creates it, "
                "re-running training; remove the TTL (pruning removes old jobs) or turn auto-sync off",
                severity="warning", rule="ttl-after-finished",
            ))
        if job.spec.naming == "fixed":
            line, col = doc.pos(("spec", "naming"))
            out.append(Diagnostic(
                doc.path, line, col, "spec.naming",
                "naming: fixed keeps the job name when the spec changes; the operator never re-runs a "
                "finished job, so Argo CD cannot roll the change out (use naming: hashed)",
                severity="warning", rule="fixed-naming",
            ))
    return out
