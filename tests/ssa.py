"""How an apply by Argo CD lands on a live object that others wrote into, offline.

- `server_side_apply`: what the API server does with an apply by one field manager
  (structured-merge-diff's rules): the applied fields are set, list-maps merge item by item by
  their keys (taken from the CRD schema: x-kubernetes-list-type map, x-kubernetes-list-map-keys),
  and a field the manager applied before but no longer applies goes only when no other manager
  owns it. Owners come from metadata.managedFields (fieldsV1). Argo CD's diff of an Application
  synced with ServerSideApply=true is the same computation (argo-cd
  gitops-engine/pkg/diff/diff.go structuredMergeDiff): predicted live == live means no drift.
- `client_side_apply`: kubectl's three-way JSON merge patch for a custom resource (last-applied,
  desired, live), lists replaced whole; also what Argo CD's default diff predicts.
- `normalize` and `respect_ignored`: Argo CD's ignoreDifferences for the jq expressions specc's
  Application uses, and RespectIgnoreDifferences (controller/sync.go normalizeTargetResources:
  the live values of ignored fields are patched into what is applied, lists whole).
"""

from __future__ import annotations

import copy
import json

ITEM = (".",)  # fieldsV1's "." : the list item itself


def _child(schema: dict, name: str) -> dict:
    props = schema.get("properties") or {}
    if name in props:
        return props[name]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def _map_keys(schema: dict) -> list[str] | None:
    if schema.get("type") == "array" and schema.get("x-kubernetes-list-type") == "map":
        return schema["x-kubernetes-list-map-keys"]
    return None


def _key(item: dict, keys: list[str]) -> tuple:
    return ("k", tuple(sorted((k, item.get(k)) for k in keys)))


def field_set(value, schema: dict, prefix: tuple = ()) -> set[tuple]:
    """The paths a configuration sets: leaves, and each list-map item itself."""
    out: set[tuple] = set()
    keys = _map_keys(schema)
    if isinstance(value, dict) and value and keys is None:
        for k, v in value.items():
            out |= field_set(v, _child(schema, k), (*prefix, ("f", k)))
    elif isinstance(value, list) and keys is not None:
        for item in value:
            p = (*prefix, _key(item, keys))
            out.add((*p, ITEM))
            out |= field_set({k: v for k, v in item.items()}, schema.get("items") or {}, p)
    else:
        out.add(prefix)
    return out


def parse_fields_v1(node: dict, prefix: tuple = ()) -> set[tuple]:
    """The paths of a managedFields entry's fieldsV1."""
    out: set[tuple] = set()
    for raw, child in node.items():
        if raw == ".":
            out.add((*prefix, ITEM))
            continue
        kind, _, rest = raw.partition(":")
        if kind == "f":
            el = ("f", rest)
        elif kind == "k":
            el = ("k", tuple(sorted(json.loads(rest).items())))
        else:
            raise ValueError(f"fieldsV1 element {raw!r} is not used in these tests")
        p = (*prefix, el)
        out |= parse_fields_v1(child, p) if child else {p}
    return out


def to_fields_v1(paths: set[tuple]) -> dict:
    """fieldsV1 of a set of paths (the inverse of parse_fields_v1)."""
    root: dict = {}
    for path in sorted(paths, key=repr):
        node = root
        for el in path:
            if el == ITEM:
                node = node.setdefault(".", {})
                continue
            name = f"f:{el[1]}" if el[0] == "f" else "k:" + json.dumps(dict(el[1]), separators=(",", ":"))
            node = node.setdefault(name, {})
    return root


def tracked(paths: set[tuple]) -> set[tuple]:
    """Paths field management tracks (not apiVersion, kind, metadata.name, metadata.namespace)."""
    untracked = {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"), ("f", "name")),
                 (("f", "metadata"), ("f", "namespace"))}
    return paths - untracked


def owners(live: dict) -> dict[str, set[tuple]]:
    """manager -> the paths it owns, from metadata.managedFields."""
    out: dict[str, set[tuple]] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        key = f"{entry['manager']}/{entry['operation']}" + (f"/{entry['subresource']}" if entry.get("subresource") else "")
        out.setdefault(key, set()).update(parse_fields_v1(entry.get("fieldsV1") or {}))
    return out


def _merge(live, config, schema: dict):
    keys = _map_keys(schema)
    if isinstance(live, dict) and isinstance(config, dict) and keys is None:
        out = dict(live)
        for k, v in config.items():
            out[k] = _merge(live.get(k), v, _child(schema, k))
        return out
    if isinstance(live, list) and isinstance(config, list) and keys is not None:
        out = [copy.deepcopy(i) for i in live]
        for item in config:
            at = next((n for n, i in enumerate(out) if _key(i, keys) == _key(item, keys)), None)
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = _merge(out[at], item, schema.get("items") or {})
        return out
    return copy.deepcopy(config)


def _remove(obj, path: tuple, schema: dict) -> None:
    """Remove the field or list item at `path`."""
    node, sch, parents = obj, schema, []
    for el in path[:-1]:
        parents.append((node, el))
        if el[0] == "f":
            sch = _child(sch, el[1])
            node = node.get(el[1]) if isinstance(node, dict) else None
        else:
            keys = _map_keys(sch)
            node = next((i for i in node or [] if _key(i, keys) == el), None)
            sch = sch.get("items") or {}
        if node is None:
            return
    last = path[-1]
    if last == ITEM:  # the item itself: drop it from its list
        container, el = parents[-1]
        lst = container.get(el[1]) if el[0] == "f" else None
        if isinstance(container, list):
            container[:] = [i for i in container if i is not node]
        elif isinstance(lst, list):
            lst[:] = [i for i in lst if i is not node]
        return
    if last[0] == "f" and isinstance(node, dict):
        node.pop(last[1], None)
    elif last[0] == "k" and isinstance(node, list):
        node[:] = [i for i in node if _key(i, _map_keys(sch)) != last]


def server_side_apply(live: dict, config: dict, schema: dict, manager: str = "argocd-controller") -> dict:
    """The object after `manager` server-side-applies `config` to `live` (with force: conflicts are
    taken over), managedFields updated for `manager`."""
    key = f"{manager}/Apply"
    own = owners(live)
    before = own.get(key, set())
    others = set().union(set(), *(paths for k, paths in own.items() if k != key))
    applied = tracked(field_set(_strip(config), schema))
    body = {k: v for k, v in live.items() if k != "status"}
    body["metadata"] = {k: v for k, v in (live.get("metadata") or {}).items() if k != "managedFields"}
    out = _merge(body, _strip(config), schema)
    for path in sorted(before - applied, key=len, reverse=True):
        prefix = path[:-1] if path[-1] == ITEM else path
        if not any(o[:len(prefix)] == prefix for o in others | applied):
            _remove(out, path, schema)
    entries = [e for e in (live.get("metadata") or {}).get("managedFields") or []
               if not (e["manager"] == manager and e["operation"] == "Apply")]
    entries.append({"manager": manager, "operation": "Apply", "apiVersion": config.get("apiVersion"),
                    "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(applied)})
    out["metadata"]["managedFields"] = entries
    if "status" in live:
        out["status"] = live["status"]
    return out


def _strip(config: dict) -> dict:
    """An apply configuration: the object without what the server owns (managedFields, status)."""
    out = {k: v for k, v in config.items() if k != "status"}
    out["metadata"] = {k: v for k, v in (config.get("metadata") or {}).items() if k != "managedFields"}
    return out


def spec_view(obj: dict) -> dict:
    """What a diff compares: the object without managedFields and status."""
    out = copy.deepcopy(_strip(obj))
    out["metadata"].pop("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return out


def _three_way(original, modified, current) -> dict:
    patch: dict = {}
    for k, m in modified.items():
        c = current.get(k) if isinstance(current, dict) else None
        if isinstance(m, dict) and isinstance(c, dict):
            o = original.get(k) if isinstance(original, dict) and isinstance(original.get(k), dict) else {}
            sub = _three_way(o, m, c)
            if sub:
                patch[k] = sub
        elif m != c:
            patch[k] = copy.deepcopy(m)
    for k in (original or {}):
        if k not in modified:
            patch[k] = None
    return patch


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def client_side_apply(live: dict, config: dict) -> dict:
    """kubectl apply of `config` to `live` for a custom resource: a three-way JSON merge patch
    from the last-applied annotation, lists replaced whole."""
    last = json.loads(((live.get("metadata") or {}).get("annotations") or {}).get(
        "kubectl.kubernetes.io/last-applied-configuration", "{}"))
    return merge_patch(live, _three_way(last, _strip(config), live))


def normalize(obj: dict, expressions: list[str], manager: str) -> dict:
    """Argo CD's jq ignoreDifferences for the two expressions specc's Application uses."""
    out = copy.deepcopy(obj)
    patches = (out.get("spec") or {}).get("runtimePatches")
    for expr in expressions:
        if expr == f'.spec.runtimePatches[] | select(.manager != "{manager}")' and patches is not None:
            patches[:] = [p for p in patches if p.get("manager") == manager]
        elif expr == ".spec.runtimePatches[].time" and patches is not None:
            for p in patches:
                p.pop("time", None)
        elif patches is not None:
            raise ValueError(f"jq expression {expr!r} is not simulated here")
    return out


def respect_ignored(live: dict, target: dict, expressions: list[str], manager: str) -> dict:
    """What Argo CD applies under RespectIgnoreDifferences: the normalized target patched with
    the live values of the ignored fields (a JSON merge patch: lists whole)."""
    nl, nt = normalize(spec_view(live), expressions, manager), normalize(_strip(target), expressions, manager)
    return merge_patch(nt, _two_way(nl, spec_view(live)))


def _two_way(original, modified) -> dict:
    patch: dict = {}
    for k, m in modified.items():
        o = original.get(k) if isinstance(original, dict) else None
        if isinstance(m, dict) and isinstance(o, dict):
            sub = _two_way(o, m)
            if sub:
                patch[k] = sub
        elif m != o:
            patch[k] = copy.deepcopy(m)
    for k in original:
        if k not in modified:
            patch[k] = None
    return patch
