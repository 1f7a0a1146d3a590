"""The Helm values the hub itself consumes, written as zero-to-jupyterhub users write them.

The chart renders ``hub.config``, ``hub.extraConfig``, ``workspaces.imagePullSecrets``,
``workspaces.extraVolumes`` and ``workspaces.extraVolumeMounts`` (only these) as JSON into a
Secret mounted in the hub pod; ``MLHUB_HELM_VALUES_DIR`` names the directory holding its
``values.json``. ``jupyterhub_config.py`` calls :func:`apply_helm_values` last, so:

1. ``hub.config``: each section (a Configurable class name) is merged into ``c`` as z2jh does;
   a setting given here replaces MLHub's value of that setting.
2. ``workspaces.*``: appended to ``c.KubeSpawner.image_pull_secrets / volumes / volume_mounts``.
3. ``hub.extraConfig``: Python snippets run in name order, with ``c`` (and ``values``) in scope.

Every value is checked (snippets compiled) before anything is applied: a bad value raises
:class:`HelmValuesError` naming the field, and ``c`` is left as it was. A snippet that raises
stops the hub the same way, naming the snippet.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The directory of the mounted values Secret (set by the chart; unset: no Helm values).
HELM_VALUES_DIR_VAR = "MLHUB_HELM_VALUES_DIR"
VALUES_FILE = "values.json"

#: hub.config settings refused: they would replace MLHub's own services and their roles.
REFUSED_SETTINGS = {
    ("JupyterHub", "services"): "it would replace MLHub's services (cleanup, SSH, idle culler)",
    ("JupyterHub", "load_roles"): "it would replace the roles MLHub's services need",
}
#: Volume names MLHub's spawner owns (the workspace PVC and /dev/shm).
RESERVED_VOLUMES = frozenset({"workspace", "dshm"})
RESERVED_MOUNT_PATHS = frozenset({"/workspace", "/dev/shm"})
#: The authenticator MLHub configures; settings below are meant for it only.
NATIVE_AUTHENTICATOR = "mlhub-native"

_CLASS_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
_TRAIT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_K8S_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class HelmValuesError(ValueError):
    """A Helm value the hub cannot use; the message names the field."""


@dataclass(frozen=True)
class HelmValues:
    """What the hub takes from the chart's values, checked."""

    config: dict[str, dict[str, Any]]
    extra_config: list[tuple[str, str]]  # (name, Python source), in name order
    image_pull_secrets: list[str]
    extra_volumes: list[dict[str, Any]]
    extra_volume_mounts: list[dict[str, Any]]
    raw: dict[str, Any]


def _mapping(value: Any, field: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise HelmValuesError(f"{field}: must be {what}, got {type(value).__name__} {value!r:.80}")
    return dict(value)


def _list(value: Any, field: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise HelmValuesError(f"{field}: must be a list of {what}, got {type(value).__name__} {value!r:.80}")
    return value


def _check_config(value: Any) -> dict[str, dict[str, Any]]:
    sections = _mapping(value, "hub.config", "a mapping of Configurable class names to their settings")
    checked: dict[str, dict[str, Any]] = {}
    for section, settings in sections.items():
        field = f"hub.config.{section}"
        if not isinstance(section, str) or not _CLASS_NAME.match(section):
            raise HelmValuesError(
                f"{field}: not a Configurable class name (e.g. JupyterHub, KubeSpawner, "
                "GitHubOAuthenticator: a capital letter, then letters, digits, '_'); "
                "a lowercase name is usually a value put under hub.config by mistake"
            )
        settings = _mapping(settings, field, f"a mapping of {section}'s settings (name: value)")
        for name in settings:
            if not isinstance(name, str) or not _TRAIT_NAME.match(name):
                raise HelmValuesError(f"{field}.{name}: not a setting name (letters, digits, '_')")
            if (section, name) in REFUSED_SETTINGS:
                raise HelmValuesError(
                    f"{field}.{name}: not allowed here, {REFUSED_SETTINGS[section, name]}; "
                    f"add to it in hub.extraConfig instead (c.{section}.{name}.append(...))"
                )
        checked[section] = settings
    return checked


def _check_extra_config(value: Any) -> list[tuple[str, str]]:
    snippets = _mapping(value, "hub.extraConfig", "a mapping of names to Python snippets")
    checked = []
    for name in sorted(snippets, key=str):
        source = snippets[name]
        field = f"hub.extraConfig.{name}"
        if not isinstance(source, str):
            raise HelmValuesError(f"{field}: must be Python source (a string), got {type(source).__name__}")
        try:
            compile(source, f"<{field}>", "exec")
        except SyntaxError as exc:
            raise HelmValuesError(f"{field}: not valid Python: {exc.msg} (line {exc.lineno})") from None
        checked.append((str(name), source))
    return checked


def _check_volumes(volumes: Any, mounts: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes = _list(volumes, "workspaces.extraVolumes", "Kubernetes Volumes")
    mounts = _list(mounts, "workspaces.extraVolumeMounts", "Kubernetes VolumeMounts")
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        field = f"workspaces.extraVolumes[{i}]"
        volume = _mapping(volume, field, "a Kubernetes Volume (name plus one volume source)")
        name = volume.get("name")
        if not isinstance(name, str) or not _K8S_LABEL.match(name):
            raise HelmValuesError(f"{field}.name: must be a DNS label (a-z, 0-9, '-'), got {name!r}")
        if name in RESERVED_VOLUMES or name in names:
            raise HelmValuesError(
                f"{field}.name: {name!r} is taken (MLHub uses {sorted(RESERVED_VOLUMES)}; names must be unique)"
            )
        names.add(name)
    for i, mount in enumerate(mounts):
        field = f"workspaces.extraVolumeMounts[{i}]"
        mount = _mapping(mount, field, "a Kubernetes VolumeMount (name, mountPath)")
        if mount.get("name") not in names:
            raise HelmValuesError(
                f"{field}.name: {mount.get('name')!r} is not a volume in workspaces.extraVolumes {sorted(names)}"
            )
        path = mount.get("mountPath")
        if not isinstance(path, str) or not path.startswith("/"):
            raise HelmValuesError(f"{field}.mountPath: must be an absolute path, got {path!r}")
        if path.rstrip("/") in RESERVED_MOUNT_PATHS:
            raise HelmValuesError(
                f"{field}.mountPath: {path} is MLHub's (the workspace volume, /dev/shm); mount below or elsewhere"
            )
    return [dict(v) for v in volumes], [dict(m) for m in mounts]


def parse_values(raw: Any) -> HelmValues:
    """Check the values document the chart renders; raise :class:`HelmValuesError` naming the field."""
    doc = _mapping(raw, "values", "a mapping")
    hub = _mapping(doc.get("hub"), "hub", "a mapping")
    workspaces = _mapping(doc.get("workspaces"), "workspaces", "a mapping")
    secrets = _list(workspaces.get("imagePullSecrets"), "workspaces.imagePullSecrets", "Secret names")
    for i, secret in enumerate(secrets):
        if not isinstance(secret, str) or not _K8S_NAME.match(secret):
            raise HelmValuesError(
                f"workspaces.imagePullSecrets[{i}]: must be a Secret's name, got {secret!r}"
            )
    volumes, mounts = _check_volumes(workspaces.get("extraVolumes"), workspaces.get("extraVolumeMounts"))
    return HelmValues(
        config=_check_config(hub.get("config")),
        extra_config=_check_extra_config(hub.get("extraConfig")),
        image_pull_secrets=list(secrets),
        extra_volumes=volumes,
        extra_volume_mounts=mounts,
        raw=doc,
    )


def load_values(directory: str | os.PathLike[str]) -> HelmValues:
    """Read and check ``<directory>/values.json``."""
    path = Path(directory) / VALUES_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HelmValuesError(f"{HELM_VALUES_DIR_VAR}: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise HelmValuesError(f"{HELM_VALUES_DIR_VAR}: {path} is not JSON: {exc}") from None
    return parse_values(raw)


def _as_list(value: Any) -> list[Any]:
    """A KubeSpawner list-or-dict trait value as a list (dicts: values in key order)."""
    if isinstance(value, Mapping):
        return [value[k] for k in sorted(value)]
    if isinstance(value, str):
        return [value]
    return list(value or [])


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def apply_values(c: Any, values: HelmValues, log: Callable[[str], None] = _say) -> None:
    """Apply checked values to the traitlets config ``c`` (see the module's docstring)."""
    authenticator_before = c.JupyterHub.get("authenticator_class")
    for section, settings in values.config.items():
        log(f"[mlhub] Helm: hub.config.{section}: {', '.join(sorted(settings)) or '(empty)'}")
        c[section].update(settings)
    forget_native_only_settings(c, values.config, authenticator_before, log, source="Helm: hub.config")
    spawner = c.KubeSpawner
    if values.image_pull_secrets:
        current = _as_list(spawner.get("image_pull_secrets"))
        spawner.image_pull_secrets = current + values.image_pull_secrets
        log(f"[mlhub] Helm: workspaces pull images with Secrets {', '.join(values.image_pull_secrets)}")
    if values.extra_volumes:
        spawner.volumes = _as_list(spawner.get("volumes")) + values.extra_volumes
    if values.extra_volume_mounts:
        spawner.volume_mounts = _as_list(spawner.get("volume_mounts")) + values.extra_volume_mounts
        paths = ", ".join(f"{m['name']} at {m['mountPath']}" for m in values.extra_volume_mounts)
        log(f"[mlhub] Helm: workspaces mount {paths}")
    namespace: dict[str, Any] = {"c": c, "values": values.raw, "__name__": "hub_extra_config"}
    for name, source in values.extra_config:
        field = f"hub.extraConfig.{name}"
        log(f"[mlhub] Helm: running {field}")
        try:
            exec(compile(source, f"<{field}>", "exec"), namespace)
        except Exception as exc:
            raise HelmValuesError(f"{field}: failed: {type(exc).__name__}: {exc}") from exc


def forget_native_only_settings(
    c: Any,
    config: dict[str, dict[str, Any]],
    before: Any,
    log: Callable[[str], None] = _say,
    source: str = "Helm: hub.config",
) -> None:
    """MLHub lets every account NativeAuthenticator authorized in (``Authenticator.allow_all``)
    and makes MLHUB_ADMIN_USER an admin. With another authenticator chosen in hub.config
    these would let anyone with an account at the identity provider in, and make whoever is
    called "admin" there an admin: unless hub.config.Authenticator sets them, they are dropped
    (settings of the authenticator's own class, e.g. GitHubOAuthenticator.allow_all, apply)."""
    after = c.JupyterHub.get("authenticator_class")
    if after == before or after == NATIVE_AUTHENTICATOR:
        return
    # the hub's pages show NativeAuthenticator's sign-up and password links only with it
    page_vars = c.JupyterHub.get("template_vars")
    if isinstance(page_vars, dict) and isinstance(page_vars.get("mlhub"), dict):
        page_vars["mlhub"] = {**page_vars["mlhub"], "native_auth": False}
    given = config.get("Authenticator", {})
    for name in ("allow_all", "admin_users"):
        if name not in given and name in c.Authenticator:
            del c.Authenticator[name]
            log(
                f"[mlhub] {source} chose authenticator {after!r}: MLHub's Authenticator.{name} "
                f"(meant for its sign-up) is dropped; set it on that authenticator's own class to choose"
            )


def apply_helm_values(c: Any, directory: str) -> None:
    """Load the values from *directory* (``MLHUB_HELM_VALUES_DIR``, read with the settings;
    empty: none) into ``c``; exit naming the field when a value is bad."""
    if not directory:
        return
    try:
        apply_values(c, load_values(directory))
    except HelmValuesError as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        sys.exit(f"MLHub cannot start, invalid Helm values:\n{exc}")
