"""The settings table (mlhub/core/settings.py) against the README's variable tables, and what
the hub passes its services."""

from __future__ import annotations

import re
from pathlib import Path

from mlhub.core.identity_settings import IDENTITY_VARIABLES
from mlhub.core.setting_parsers import _existing_file
from mlhub.core.settings import (
    SERVICES,
    TABLE,
    HubSettings,
    Variable,
    read_service_settings,
    service_environment,
)

README = (Path(__file__).parents[2] / "README.md").read_text()

#: Variables in the README's tables that are not the hub's settings, and why.
NOT_SETTINGS = {
    "MLHUB_VENV": "scripts",
    "MLHUB_BASE_IMAGE": "scripts",
    "MLHUB_HUB_PID": "set by the hub for its services (jupyterhub_config.py)",
}


def readme_rows() -> dict[str, list[str]]:
    """Each variable named in the first cell of a row of a README table headed ``| variable``
    -> that row's default (last) cell."""
    rows: dict[str, list[str]] = {}
    in_variables = False
    for line in README.splitlines():
        if not line.startswith("|"):
            in_variables = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0].startswith("variable"):
            in_variables = True
        elif in_variables:
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows.setdefault(name, []).append(cells[-1])
    return rows


def states_default(variable: Variable, cells: list[str], default: object) -> bool:
    """Whether a value in backticks in the README's default cell parses to the table's default."""
    for cell in cells:
        for text in re.findall(r"`([^`]+)`", cell):
            try:
                if variable.parse(text) == default:
                    return True
            except (ValueError, TypeError):
                pass
    return False


def test_every_variable_is_in_the_readme_with_its_default():
    rows = readme_rows()
    missing = [v.name for v in TABLE if v.name not in rows]
    assert missing == []
    defaults = HubSettings()
    wrong = {}
    for variable in TABLE:
        default = getattr(defaults, variable.field)
        # computed defaults (empty, None: the README says in words what they are) aside
        if default in (None, "", ()) or variable.parse is _existing_file:
            continue
        if not states_default(variable, rows[variable.name], default):
            wrong[variable.name] = (default, rows[variable.name])
    assert wrong == {}


def test_every_mlhub_variable_in_the_readme_is_in_the_table():
    # the identity provider's variables are the table's per-authenticator part
    names = {v.name for v in TABLE} | set(IDENTITY_VARIABLES)
    unknown = [
        name
        for name in readme_rows()
        if name.startswith("MLHUB_") and name not in names and name not in NOT_SETTINGS
    ]
    assert unknown == []


def test_each_variable_is_listed_once_and_has_a_field():
    names = [v.name for v in TABLE] + [alias for v in TABLE for alias in v.aliases]
    assert len(names) == len(set(names))
    fields = set(HubSettings.__dataclass_fields__)
    assert [v.field for v in TABLE if v.field not in fields] == []
    assert all(v.receivers and v.receivers <= {"hub", "cleanup", "ssh"} for v in TABLE)


def test_a_service_reads_back_what_the_hub_passes_it():
    settings = HubSettings(
        hub_name="h1",
        data_dir="/data",
        ip="127.0.0.1",
        cull_idle_seconds=0,
        cleanup_interval=-1,
        execution_mode="k8s",
        ssh_port=2022,
        ssh_token_auth=False,
        namespace="ml",
        public_url="https://hub.example.org",
        install_id="abcdefgh12",
        deleted_user_volumes="keep",
        ssh_keys_db_url="postgresql://db/keys",
    )
    for service in SERVICES:
        env = service_environment(settings, service)
        assert set(env) == {v.name for v in TABLE if service in v.receivers and v.name in env}
        back = read_service_settings(env, service)
        for variable in TABLE:
            if service in variable.receivers:
                assert getattr(back, variable.field) == getattr(settings, variable.field), variable.name
    assert "MLHUB_ADMIN_PASSWORD" not in service_environment(HubSettings(admin_password="x" * 9), "ssh")
    assert set(service_environment(settings, "cleanup")) == {
        "HUB_NAME",
        "CLEANUP_INTERVAL_SECONDS",
        "EXECUTION_MODE",
        "MLHUB_NAMESPACE",
        "MLHUB_INSTALL_ID",
        "MLHUB_DELETED_USER_VOLUMES",
    }


def test_the_services_old_name_of_the_execution_mode_still_works():
    assert read_service_settings({"MLHUB_EXECUTION_MODE": "k8s"}, "ssh").execution_mode == "k8s"
    assert read_service_settings({"EXECUTION_MODE": "local"}, "cleanup").execution_mode == "docker"
