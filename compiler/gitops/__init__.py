"""GitOps delivery helpers: Argo CD health checks and Application manifests (the `specc argocd`
command that prints them lives in compiler/cli.py)."""
