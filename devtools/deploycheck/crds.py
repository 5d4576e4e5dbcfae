"""The custom resources of deploy/k8s checked for the fields their CRDs define, which no Kubernetes schema
validator knows: KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1, field lists from KEDA's
CRDs and its ScaledObject specification) with the ``redis-streams`` trigger's documented metadata, and
prometheus-operator's ServiceMonitor (monitoring.coreos.com/v1).

A spec is a dict: field → type (``str``, ``int``, ``bool``), ``ANY`` (free-form), a nested spec, or a one-item
list ``[spec]`` for a list of such; ``REQUIRED`` lists the fields that must be there. The HPA ``behavior`` of
a ScaledObject is checked elsewhere, against the Kubernetes schema of an HPA (k8s.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ANY", "REQUIRED", "SPECS", "check_fields", "check_redis_streams_trigger"]

ANY = object()
REQUIRED = "__required__"

_LABEL_SELECTOR = {"matchLabels": ANY, "matchExpressions": ANY}
_METADATA = {"name": str, "namespace": str, "labels": ANY, "annotations": ANY, REQUIRED: ["name"]}

_SCALED_OBJECT_SPEC = {
    REQUIRED: ["scaleTargetRef", "triggers"],
    "scaleTargetRef": {"apiVersion": str, "kind": str, "name": str, "envSourceContainerName": str, REQUIRED: ["name"]},
    "pollingInterval": int,
    "cooldownPeriod": int,
    "initialCooldownPeriod": int,
    "idleReplicaCount": int,
    "minReplicaCount": int,
    "maxReplicaCount": int,
    "fallback": {"failureThreshold": int, "replicas": int, "behavior": str, REQUIRED: ["failureThreshold", "replicas"]},
    "advanced": {
        "restoreToOriginalReplicaCount": bool,
        "horizontalPodAutoscalerConfig": {"name": str, "behavior": ANY},
        "scalingModifiers": {"activationTarget": str, "formula": str, "metricType": str, "target": str},
    },
    "triggers": [
        {
            REQUIRED: ["type", "metadata"],
            "type": str,
            "name": str,
            "metadata": ANY,
            "useCachedMetrics": bool,
            "metricType": str,
            "authenticationRef": {"kind": str, "name": str, REQUIRED: ["name"]},
        }
    ],
}

_TRIGGER_AUTHENTICATION_SPEC = {
    "secretTargetRef": [{"parameter": str, "name": str, "key": str, REQUIRED: ["parameter", "name", "key"]}],
    "configMapTargetRef": [{"parameter": str, "name": str, "key": str, REQUIRED: ["parameter", "name", "key"]}],
    "env": [{"parameter": str, "name": str, "containerName": str, REQUIRED: ["parameter", "name"]}],
    "podIdentity": ANY,
    "hashiCorpVault": ANY,
    "azureKeyVault": ANY,
    "awsSecretManager": ANY,
    "gcpSecretManager": ANY,
    "boundServiceAccountToken": ANY,
    "filePath": str,
    "oauth2": ANY,
}

_ENDPOINT = {
    name: ANY
    for name in (
        "authorization",
        "basicAuth",
        "bearerTokenFile",
        "bearerTokenSecret",
        "enableHttp2",
        "filterRunning",
        "followRedirects",
        "honorLabels",
        "honorTimestamps",
        "metricRelabelings",
        "noProxy",
        "oauth2",
        "params",
        "proxyConnectHeader",
        "proxyFromEnvironment",
        "proxyUrl",
        "relabelings",
        "scheme",
        "targetPort",
        "tlsConfig",
        "trackTimestampsStaleness",
    )
}
_ENDPOINT.update({"port": str, "path": str, "interval": str, "scrapeTimeout": str})

_SERVICE_MONITOR_SPEC = {
    name: ANY
    for name in (
        "attachMetadata",
        "bodySizeLimit",
        "convertClassicHistogramsToNHCB",
        "fallbackScrapeProtocol",
        "keepDroppedTargets",
        "labelLimit",
        "labelNameLengthLimit",
        "labelValueLengthLimit",
        "nativeHistogramBucketLimit",
        "nativeHistogramMinBucketFactor",
        "podTargetLabels",
        "sampleLimit",
        "scrapeClass",
        "scrapeClassicHistograms",
        "scrapeNativeHistograms",
        "scrapeProtocols",
        "selectorMechanism",
        "serviceDiscoveryRole",
        "targetLabels",
        "targetLimit",
    )
}
_SERVICE_MONITOR_SPEC.update(
    {
        REQUIRED: ["selector", "endpoints"],
        "jobLabel": str,
        "selector": _LABEL_SELECTOR,
        "namespaceSelector": {"any": bool, "matchNames": [str]},
        "endpoints": [_ENDPOINT],
    }
)


def _object(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": str,
        "kind": str,
        "metadata": _METADATA,
        "spec": spec,
        REQUIRED: ["apiVersion", "kind", "metadata", "spec"],
    }


SPECS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): _object(_SCALED_OBJECT_SPEC),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _object(_TRIGGER_AUTHENTICATION_SPEC),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _object(_SERVICE_MONITOR_SPEC),
}


def check_fields(value: Any, spec: Any, path: str = "") -> list[str]:
    """Problems of ``value`` against ``spec``: unknown fields, missing required ones, wrong types."""
    if spec is ANY:
        return []
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in check_fields(item, spec[0], f"{path}[{i}]")]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{path}: expected a mapping, got {type(value).__name__}"]
        problems = [f"{path}.{name}: required" for name in spec.get(REQUIRED, []) if name not in value]
        for name, item in value.items():
            if name not in spec or name == REQUIRED:
                problems.append(f"{path}.{name}: not a field of this kind")
            else:
                problems += check_fields(item, spec[name], f"{path}.{name}")
        return problems
    if (spec is int and isinstance(value, bool)) or not isinstance(value, spec):
        return [f"{path}: expected {spec.__name__}, got {type(value).__name__} {value!r}"]
    return []


# KEDA's redis-streams trigger (keda.sh/docs/<version>/scalers/redis-streams): every metadata value is a string.
_STREAM_TRIGGER_KEYS = {
    "address",
    "host",
    "port",
    "usernameFromEnv",
    "passwordFromEnv",
    "stream",
    "consumerGroup",
    "pendingEntriesCount",
    "streamLength",
    "lagCount",
    "activationLagCount",
    "enableTLS",
    "unsafeSsl",
    "databaseIndex",
    "addressFromEnv",
    "hostFromEnv",
    "portFromEnv",
    "addresses",  # redis-cluster-streams: seed nodes
    "hosts",
    "ports",
}
_COUNTS = ("pendingEntriesCount", "streamLength", "lagCount", "activationLagCount", "databaseIndex", "port")
AUTH_PARAMETERS = {"username", "password", "tls", "ca", "cert", "key", "keyPassword"}


def check_redis_streams_trigger(metadata: Mapping[str, Any], path: str) -> list[str]:
    """The documented rules of a ``redis-streams`` trigger's metadata."""
    problems = [f"{path}.{k}: not a redis-streams parameter" for k in metadata if k not in _STREAM_TRIGGER_KEYS]
    problems += [
        f"{path}.{k}: must be a string (metadata is a map of strings), got {v!r}"
        for k, v in metadata.items()
        if not isinstance(v, str)
    ]
    for key in _COUNTS:
        value = metadata.get(key)
        if isinstance(value, str) and not (
            value.isdigit() and (int(value) > 0 or key in ("activationLagCount", "databaseIndex"))
        ):
            problems.append(f"{path}.{key}: {value!r} is not a {'positive ' if key != 'databaseIndex' else ''}count")
    if "stream" not in metadata:
        problems.append(f"{path}.stream: required")
    addresses = {"address", "addressFromEnv", "addresses", "host", "hostFromEnv", "hosts"}  # hosts: cluster seeds
    if not addresses & metadata.keys():
        problems.append(f"{path}: needs address (or host and port, or their *FromEnv forms)")
    if "lagCount" in metadata:
        if "consumerGroup" not in metadata:
            problems.append(f"{path}.lagCount: needs consumerGroup (the lag is the group's)")
        problems += [
            f"{path}.{k}: ignored by KEDA when lagCount is set"
            for k in ("pendingEntriesCount", "streamLength")
            if k in metadata
        ]
        if "activationLagCount" not in metadata:
            problems.append(f"{path}.activationLagCount: KEDA's documentation asks for it with lagCount")
    elif "activationLagCount" in metadata:
        problems.append(f"{path}.activationLagCount: only used with lagCount")
    return problems
