"""GitOps delivery helpers: Argo CD health checks, Application manifests and the `specc argocd` CLI."""
