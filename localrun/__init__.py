"""Run one rendered training job on this machine, replica by replica, as the Kubeflow training
operator would (`specc run SPEC --local`).

plan: manifests in, the replicas to start and their environments out (pure).
lifecycle: the operator's rules as a state machine (pure; each kind's rules from compiler/kinds).
supervisor: the processes, their output, signals and ports; `run_local` runs a job.
"""

from localrun.plan import Launcher, LocalRunError
from localrun.supervisor import run_local

__all__ = ["Launcher", "LocalRunError", "run_local"]
