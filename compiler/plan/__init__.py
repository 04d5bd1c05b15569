"""`specc plan`: what merging the working tree will do to the cluster, rendered offline.

sides (where the specs of each side come from: working tree, another checkout, a git commit)
-> compare (one action per job: create, rerun, update, delete, unchanged; changed spec fields;
warnings) -> output (text, JSON) / markdown (a Jinja2 template). requests reads what rendered
pods ask for, changes diffs specs and masks credentials. Nothing is written, no cluster is
touched; only compiler/cli.py prints.
"""
