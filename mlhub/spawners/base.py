"""What every MLHub spawner shares, whatever the engine: settings, options form, validation,
who asked, expiry, and the state that keeps them across hub restarts.

``MLHubSpawner`` is a mixin placed before the engine's spawner class
(``class MLHubDockerSpawner(MLHubSpawner, DockerSpawner)``), so its settings can be given once
as ``c.MLHubSpawner.<name>`` for both engines.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import time
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.traitlets import ByteSpecification
from tornado import web
from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from mlhub.core.background import background
from mlhub.core.fair_defaults import fair_cpu, fair_memory
from mlhub.core.names import is_valid_hub_name, is_valid_install_id
from mlhub.core.options import (
    OptionLimits,
    OptionsError,
    WorkspaceOptions,
    options_from_formdata,
    validate_options,
)
from mlhub.core.ownership import DELETED_USER_VOLUMES, account_created
from mlhub.core.parsing import format_memory
from mlhub.core.plan import AdminConfig, StartPlan, Workspace, make_plan
from mlhub.core.workspace import WorkspaceMeta, meta_of_state
from mlhub.hub.summary import DEFAULT_TOOL_IMAGES
from mlhub.spawners.steps import StepTiming

TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")

#: Variables the hub sets itself; a user's ``env`` option may not override them.
HUB_SET_ENV = frozenset(
    {"MEM_LIMIT", "CPU_LIMIT", "MEM_GUARANTEE", "CPU_GUARANTEE", "JUPYTER_IMAGE_SPEC", "JUPYTER_IMAGE"}
)


def options_http_error(exc: OptionsError, submitted: dict[str, Any]) -> web.HTTPError:
    """HTTP 400 for refused options. The REST API answers with the text; the spawn page also
    gets each field's message and the values as typed (JSON in the HTML message), so the form
    shows the error next to the field and keeps what was typed."""
    message = f"Invalid workspace options: {exc}"
    error = web.HTTPError(400, message, reason="Invalid options")
    typed = {
        key: "\n".join(f"{k}={v}" for k, v in value.items())
        if isinstance(value, dict)
        else value
        if isinstance(value, (str, bool, int, float))
        else json.dumps(value)
        for key, value in (submitted or {}).items()
    }
    payload = json.dumps({"errors": exc.errors, "values": typed}).replace("<", "\\u003c")
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    error.jupyterhub_html_message = (  # type: ignore[attr-defined]
        f'{html.escape(message)}<script type="application/json" class="mlhub-field-errors">{payload}</script>'
    )
    return error


class MLHubSpawner(StepTiming, LoggingConfigurable):
    """Settings and behaviour shared by the MLHub Docker and Kubernetes spawners.

    A mixin: it expects the engine spawner (a JupyterHub ``Spawner``) after it in the MRO.
    """

    hub_name = Unicode(
        "mlhub",
        config=True,
        help="""Name of this hub (1-12 lowercase letters, digits or '-'). Every container,
        network, volume and pod carries it in the ``mlhub.origin`` label and name, so several
        hubs can share one engine without touching each other's objects. The default config
        reads it from the ``HUB_NAME`` environment variable.""",
    )

    @validate("hub_name")
    def _validate_hub_name(self, proposal: Any) -> str:
        value = proposal["value"]
        if not is_valid_hub_name(value):
            raise TraitError(
                f"hub_name {value!r} must be 1-12 lowercase letters, digits or '-', "
                "starting and ending with a letter or digit"
            )
        return value

    install_id = Unicode(
        "",
        config=True,
        help="""This install's id (8-40 lowercase letters or digits), written on every object
        as ``mlhub.install``: another install with the same ``hub_name`` on the engine never
        has its objects used or removed. The default config generates it once into
        ``MLHUB_DATA_DIR/install-id`` (or takes ``MLHUB_INSTALL_ID``). Empty: objects carry no
        install id (as before install ids).""",
    )

    @validate("install_id")
    def _validate_install_id(self, proposal: Any) -> str:
        value = proposal["value"]
        if value and not is_valid_install_id(value):
            raise TraitError(f"install_id {value!r} must be 8-40 lowercase letters or digits")
        return value

    deleted_user_volumes = Enum(
        list(DELETED_USER_VOLUMES),
        default_value="remove",
        config=True,
        help="""What happens to a deleted account's ``/workspace`` volumes: ``remove`` (default:
        removed when the account is deleted, or by the cleanup service's ``users`` run), or
        ``keep`` (left on the engine, labelled with the old account, for the admin to back up
        or remove). Either way a new account with the same name never gets them: it gets new,
        empty volumes. The default config reads ``MLHUB_DELETED_USER_VOLUMES``.""",
    )

    allow_custom_image = Bool(
        False,
        config=True,
        help="""Let users type any image name in the options form / API, not only the
        admin's ``allowed_images``. Off by default: workspaces then run only images the
        admin chose.""",
    )
    max_cpu_limit = Float(
        None,
        allow_none=True,
        config=True,
        help="""Most CPU cores a user may ask for in ``cpu_limit``. Default: all cores of the
        engine's host (Docker refuses more). When ``Spawner.cpu_limit`` (the default for an
        empty field) is not set either, an empty field gets 1 core or a quarter of this
        maximum, whichever is smaller.""",
    )
    max_mem_limit = ByteSpecification(
        None,
        allow_none=True,
        config=True,
        help="""Most memory a user may ask for in ``mem_limit`` and ``shm_size`` (e.g. '16G');
        ``shm_size`` is also at most the workspace's own memory limit. Default: the memory of
        the engine's host (on Kubernetes: no maximum). When ``Spawner.mem_limit`` (the default
        for an empty field) is not set either, an empty field gets 2 GiB or a quarter of this
        maximum, whichever is smaller.""",
    )
    max_gpus = Int(
        None,
        allow_none=True,
        config=True,
        help="""Most GPUs one workspace may ask for. 0 switches GPUs off. Default (None): no
        limit when the engine has the NVIDIA runtime, and 0 when it has not.""",
    )
    default_shm_size = ByteSpecification(
        None,
        allow_none=True,
        config=True,
        help="Size of /dev/shm when the user leaves ``shm_size`` empty (None: the engine's default, 64M on Docker).",
    )
    default_days_to_live = Float(
        0.0,
        config=True,
        help="Days a workspace lives when the user leaves ``days_to_live`` empty (0: never expires).",
    )
    max_days_to_live = Float(
        None,
        allow_none=True,
        config=True,
        help="""Most days a workspace may live. When set, every workspace must expire:
        ``days_to_live`` 0 (never) is refused and an empty field takes this maximum unless
        ``default_days_to_live`` is set.""",
    )
    users_can_create_named_servers = Bool(
        True,
        config=True,
        help="""Self-service: let users create their own named workspaces. When False, users
        can still start named workspaces an admin created for them, with the admin's options.""",
    )
    admins_can_create_for_users = Bool(
        True,
        config=True,
        help="Let admins (and services with the ``servers`` scope) create and start workspaces for other users.",
    )
    workspace_mount_path = Unicode(
        "/workspace",
        config=True,
        help="Where the per-server volume is mounted in the workspace when ``is_mount_volume`` is on.",
    )
    options_template_paths = List(
        Unicode(),
        config=True,
        help="""Extra folders searched (before the built-in one) for ``options_form.html``,
        the Jinja template of the options form.""",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mlhub_made_at = time.time()

    # --- limits -------------------------------------------------------------------------

    def allowed_image_map(self) -> dict[str, str]:
        """Display name -> image the user may choose; override per engine."""
        return {self.default_image(): self.default_image()}

    def default_image(self) -> str:
        raise NotImplementedError

    def allows_custom_image(self) -> bool:
        """Whether users may run any image, not only ``allowed_image_map``'s; per engine."""
        return self.allow_custom_image

    async def host_limits(self) -> tuple[float | None, int | None, int | None]:
        """(cores, memory bytes, GPUs or None for 'no limit') the engine offers; per engine."""
        return None, None, self.max_gpus

    async def option_limits(self) -> OptionLimits:
        """The admin's limits and defaults, completed with what the engine offers."""
        cores, memory, gpus = await self.host_limits()
        max_cpu = self.max_cpu_limit if self.max_cpu_limit is not None else cores
        max_mem = self.max_mem_limit if self.max_mem_limit is not None else memory
        default_cpu = self.cpu_limit
        default_mem = self.mem_limit
        reserved = HUB_SET_ENV | set(self.environment or {})
        return OptionLimits(
            images=self.allowed_image_map(),
            default_image=self.default_image(),
            allow_custom_image=self.allows_custom_image(),
            default_cpu_limit=default_cpu if default_cpu is not None else fair_cpu(max_cpu),
            max_cpu_limit=max_cpu,
            default_mem_limit=default_mem if default_mem is not None else fair_memory(max_mem),
            max_mem_limit=max_mem,
            max_gpus=gpus,
            default_shm_size=self.default_shm_size,
            default_days_to_live=self.default_days_to_live,
            max_days_to_live=self.max_days_to_live,
            reserved_env=frozenset(reserved),
            pids_limit=self.shown_pids_limit(),
            disk_limit=self.shown_disk_limit(),
        )

    def shown_pids_limit(self) -> int | None:
        """Processes per workspace, for the options form (None: no limit or not known)."""
        return None

    def shown_disk_limit(self) -> int | None:
        """Size of /workspace, for the options form (None: no cap)."""
        return None

    # --- the options form ---------------------------------------------------------------

    @default("options_form")
    def _default_options_form(self) -> Any:
        return MLHubSpawner.render_options_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self.mlhub_options_from_form

    async def render_options_form(self) -> str:
        """Render ``options_form.html`` with the admin's limits and the last options used."""
        limits = await self.option_limits()
        env = Environment(
            loader=FileSystemLoader([*self.options_template_paths, TEMPLATE_DIR]),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        previous = dict(self.orm_spawner.user_options or {}) if self.orm_spawner else {}
        return env.get_template("options_form.html").render(
            limits=limits,
            values=previous,
            format_memory=format_memory,
            server_name=self.name,
        )

    def mlhub_options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Form -> user_options. Validated later, by the same code as a REST request."""
        return options_from_formdata(formdata)

    # --- applying options ---------------------------------------------------------------

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return MLHubSpawner.mlhub_apply_user_options

    def _requester(self) -> tuple[str, bool, bool]:
        """(name of who asked for this spawn, whether it is the owner, whether an admin)."""
        handler = getattr(self, "handler", None)
        current = getattr(handler, "current_user", None) if handler is not None else None
        if current is None:
            return self.user.name, True, bool(getattr(self.user, "admin", False))
        name = getattr(current, "name", "") or ""
        if current.__class__.__name__ == "Service":
            return f"service:{name}", False, False
        return name, name == self.user.name, bool(getattr(current, "admin", False))

    async def mlhub_apply_user_options(self, user_options: dict[str, Any]) -> None:
        """Validate ``user_options`` and set what ``start()`` needs; 400/403 on refusal.

        Runs before anything is created, so a refused request leaves no container, network
        or volume behind. JupyterHub creates a named server's row before this runs; when the
        refused request made it, the row goes too (:meth:`_forget_refused_row`).
        """
        try:
            with self.new_start_clock().step("options"):
                await self._mlhub_check_and_apply(user_options)
        except web.HTTPError as exc:
            if exc.status_code in (400, 403) and self._row_made_by_this_request():
                self._forget_refused_row()
            raise

    def _row_made_by_this_request(self) -> bool:
        """A named server that the current REST request created: its spawner was made during
        the request and has never run. (The options form page keeps its rows: it renders
        the form again with this spawner.)"""
        handler = getattr(self, "handler", None)
        if not self.name or not isinstance(handler, APIHandler):
            return False
        if self.mlhub_meta is not None or self.orm_spawner is None:
            return False
        if (self.orm_spawner.state or {}).get("mlhub"):
            return False
        return self._mlhub_made_at >= handler.request._start_time

    def _forget_refused_row(self) -> None:
        """Delete this server's row once JupyterHub has finished undoing the refused start,
        unless something started it again meanwhile."""

        async def forget() -> None:
            for _ in range(200):
                await asyncio.sleep(0.05)
                future = getattr(self, "_spawn_future", None)
                if not self._stop_pending and (future is None or future.done()):
                    break
            user = self.user
            if (
                user.spawners.get(self.name) is not self
                or self.pending
                or self.orm_spawner.server_id is not None
            ):
                return
            user.db.delete(self.orm_spawner)
            user.spawners.pop(self.name, None)
            user.db.commit()
            self.log.info("Removed server %s again: the request that created it was refused", self._log_name)

        background(forget())

    async def _mlhub_check_and_apply(self, user_options: dict[str, Any]) -> None:
        requester, is_owner, is_admin = self._requester()
        meta = self.mlhub_meta
        if is_owner and not is_admin and self.name and not self.users_can_create_named_servers and not meta:
            raise web.HTTPError(
                403,
                "Creating named workspaces is switched off on this hub; ask an admin to create one for you",
            )
        if not is_owner and not self.admins_can_create_for_users:
            raise web.HTTPError(403, "Creating workspaces for other users is switched off on this hub")
        try:
            options = validate_options(user_options, await self.option_limits())
        except OptionsError as exc:
            self.log.warning("Refused options for %s (asked by %s): %s", self._log_name, requester, exc)
            raise options_http_error(exc, user_options) from None
        self.check_engine_options(options)
        expiration = options.expiration_timestamp()
        if meta and meta.days_to_live == options.days_to_live and meta.expiration_timestamp:
            expiration = meta.expiration_timestamp
            if expiration <= time.time():
                raise web.HTTPError(
                    400,
                    f"days_to_live: this workspace expired at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expiration))}; "
                    "start it with a new days_to_live or delete it",
                )
        created_by = meta.created_by if meta and meta.created_by else requester
        self.mlhub_options = options
        self.mlhub_meta = WorkspaceMeta(
            created_by=created_by,
            days_to_live=options.days_to_live,
            expiration_timestamp=expiration,
            options=options.to_user_options(),
        )
        self.log.info(
            "Options for %s (asked by %s): image=%s cpu=%s mem=%s gpus=%s days_to_live=%g",
            self._log_name,
            requester,
            options.image,
            options.cpu_limit,
            options.mem_limit,
            options.gpus or "none",
            options.days_to_live,
        )
        self.mlhub_plan = self.make_start_plan(options)

    def check_engine_options(self, options: WorkspaceOptions) -> None:
        """Refuse (HTTP 400, naming the field) what this engine cannot do; before any change."""

    def plan_admin_config(self) -> AdminConfig:
        """The admin's values the plan needs (read, never written); engines add theirs."""
        return AdminConfig(hub_name=self.hub_name, install_id=self.install_id)

    def make_start_plan(self, options: WorkspaceOptions) -> StartPlan:
        """This start's plan; nothing else on the spawner changes (docs/decisions/per-start-plan.md)."""
        meta = self.mlhub_meta or WorkspaceMeta()
        who = Workspace(
            self.user.name, self.name, meta.created_by, meta.expiration_timestamp, self.account_created
        )
        return make_plan(options, self.plan_admin_config(), who)

    async def ensure_plan(self) -> StartPlan:
        """The plan of this start; made from ``user_options`` (validated as a start would)
        when nothing made one yet, e.g. ``create_object()`` called without ``start()``."""
        if self.mlhub_plan is None:
            await self.mlhub_apply_user_options(self.user_options or {})
        assert self.mlhub_plan is not None
        return self.mlhub_plan

    # --- labels, env and state ----------------------------------------------------------

    mlhub_options: WorkspaceOptions | None = None
    mlhub_meta: WorkspaceMeta | None = None
    mlhub_plan: StartPlan | None = None  # this start's plan; the admin's traits stay as set

    def workspace_labels(self) -> dict[str, str]:
        assert self.mlhub_plan is not None
        return dict(self.mlhub_plan.labels)

    @property
    def account_created(self) -> int | None:
        """The owning account's identity: when JupyterHub created it (epoch seconds)."""
        return account_created(self.user)

    def get_env(self) -> dict[str, str]:
        """The user's ``env`` option first, then everything the hub sets (which wins); limits
        and the image come from this start's plan, not from the admin's traits."""
        engine_env: dict[str, str] = {**super().get_env(), "MLHUB_HUB_NAME": self.hub_name}
        return self.mlhub_plan.environment(engine_env) if self.mlhub_plan else engine_env

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        meta = meta_of_state(state)
        if meta:
            self.mlhub_meta = meta

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.mlhub_meta:
            # kept while stopped too, so expiry and creator survive stops and restarts
            state["mlhub"] = self.mlhub_meta.to_state()
        return state

    tool_images = List(
        Unicode(),
        list(DEFAULT_TOOL_IMAGES),
        config=True,
        help="""Image repositories (without tag) that carry MLHub's workspace tools; the hub's
        pages link VS Code, TensorBoard, Monitoring (and Desktop for ``:full``) for workspaces
        running one of them. Other images get JupyterLab only.""",
    )

    @property
    def expiration_timestamp(self) -> int:
        """Epoch seconds when this workspace expires (0: never)."""
        return self.mlhub_meta.expiration_timestamp if self.mlhub_meta else 0
