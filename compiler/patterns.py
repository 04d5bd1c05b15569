"""The string rules of the spec language: each pattern with the words that explain it.

compiler/spec.py builds its fields from these; compiler/validate.py tells a user what a value
must look like from RULES instead of printing a regular expression. Patterns are written for
pydantic-core's Rust regex engine (`$` is the end of the text only).
"""

from __future__ import annotations

from runtime.contract import PATTERN_RULES as _RUNTIME_RULES

DNS1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# Image reference: [registry/]path[:tag][@sha256:digest]
IMAGE = (
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
#: A toleration's key: a qualified name, or empty (with operator Exists: every taint).
TOLERATION_KEY = "^(" + QUALIFIED_NAME[1:-1] + ")?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
FIELD_PATH = r"^[A-Za-z0-9_.\[\]'/-]+$"
RULE_NAME = r"^[a-z][a-z0-9-]*$"
NPROC = r"^(auto|cpu|gpu|[1-9][0-9]{0,3})$"
#: A custom or external metric's name (a path segment: no '/' or '%').
METRIC_NAME = r"^[^/%\x00-\x1f\x7f]{1,253}$"
#: A Kubernetes kind (CamelCase).
KIND_NAME = r"^[A-Z][A-Za-z0-9]{0,62}$"
#: An apiVersion: `v1`, or `group/version` like `networking.k8s.io/v1`.
GROUP_VERSION = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+((alpha|beta)[0-9]+)?$"
#: A relative path inside a volume: no leading '/', no '..' segment (Kubernetes' subPath rule).
SUB_PATH = r"^(?:[^/.\x00-\x1f\x7f][^/\x00-\x1f\x7f]*|\.[^/.\x00-\x1f\x7f][^/\x00-\x1f\x7f]*|\.\.[^/\x00-\x1f\x7f]+)(?:/(?:[^/.\x00-\x1f\x7f][^/\x00-\x1f\x7f]*|\.[^/.\x00-\x1f\x7f][^/\x00-\x1f\x7f]*|\.\.[^/\x00-\x1f\x7f]+))*$"
#: Printable text, line breaks and tabs allowed (no other control characters).
TEXT = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
#: One printable line.
LINE = r"^[^\x00-\x1f\x7f]+$"

#: Pattern -> what a matching value looks like, for messages.
RULES = {
    **_RUNTIME_RULES,
    DNS1035: "must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter, ending with a letter or digit",
    DNS1123_LABEL: "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
    DNS1123_SUBDOMAIN: "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
    QUANTITY: "must be a Kubernetes quantity like 500m, 2, 1.5, 512Mi or 4Gi",
    IMAGE: "must be an image reference like registry/path/name:tag or name@sha256:<64 hex>",
    ENV_NAME: "must be an environment variable name: letters, digits, '_', '.' and '-', not starting with a digit",
    QUALIFIED_NAME: "must be a Kubernetes name like app, example.com/team or kubernetes.io/arch: an optional DNS prefix "
                    "and '/', then at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    TOLERATION_KEY: "must be empty or a Kubernetes name like example.com/team (an optional DNS prefix and '/', then at "
                    "most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)",
    LABEL_VALUE: "must be a label value: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
    CONFIG_KEY: "must be a Secret or ConfigMap key: letters, digits, '-', '_' and '.'",
    FIELD_PATH: "must be a field path like metadata.name or metadata.labels['app']",
    RULE_NAME: "must be a rule name like image-tag (see specc lint --list-rules)",
    NPROC: "must be auto, cpu, gpu or a number of processes from 1 to 9999",
    METRIC_NAME: "must be a metric name: one line without '/' or '%'",
    KIND_NAME: "must be a Kubernetes kind like Service or Ingress",
    GROUP_VERSION: "must be an apiVersion like v1 or networking.k8s.io/v1",
    SUB_PATH: "must be a relative path inside the volume, without '..' segments or control characters",
    TEXT: "must not contain control characters other than line breaks and tabs",
    LINE: "must be one line without control characters",
}
