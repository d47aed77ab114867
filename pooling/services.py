"""Pooling services: every door (pipeline, API, admin, commands) calls these.

shared_instance_ensure       get or start the device's shared server of an engine, healthy
pooled_database_provision    get or create an app's database and role in it (idempotent);
                             for Redis an ACL user with its own key prefix
pooled_databases_attach      the pipeline's hook: provision every need, wire the compose
pooled_databases_release     on removal: final dump (data kept), drop database and role,
                             remove the shared instance with its last app
shared_instance_remove       compose down of the shared instance and its volume
shared_instance_measure      read the shared container's memory (docker stats)
shared_instance_measure_baseline   start a standalone server of the same image, measure it

The shared servers themselves live in pooling.instances and pooling.health; their services
are re-exported.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import QuerySet

from devices import ssh
from devices.compose import Shell, deploy_root, escape_dollars, service_mounts
from devices.lease import DeviceBusy, device_lease
from pooling import engines
from pooling.health import (
    shared_instance_measure,
    shared_instance_measure_baseline,
    shared_instances_check,
)
from pooling.instances import (
    HEALTH_TIMEOUT_SECONDS,
    PoolingError,
    _add_secret,
    _check,
    _container,
    _ensure,
    _run_sql,
    _shell_for,
    pool_network,
    pool_prefix,
    shared_instance_ensure,
    shared_instance_remove,
)
from pooling.models import PooledDatabase, SharedInstance

logger = logging.getLogger(__name__)

__all__ = [
    "HEALTH_TIMEOUT_SECONDS",
    "PoolingError",
    "compose_use_pool",
    "need_poolable",
    "pool_network",
    "pool_prefix",
    "pooled_database_drop",
    "pooled_database_dump",
    "pooled_database_provision",
    "pooled_databases_attach",
    "pooled_databases_release",
    "pooling_applies",
    "shared_instance_ensure",
    "shared_instance_measure",
    "shared_instance_measure_baseline",
    "shared_instance_remove",
    "shared_instances_check",
]


# ------------------------------------------------------------------ pooled databases
def _app_fields(app) -> dict:
    """What a pooled database keeps of the app that uses it (an app of the apps layer:
    its id, compose project, name and instance name)."""
    return {
        "app_id": app.pk,
        "project": app.project,
        "app_name": app.app_name,
        "app_instance": app.instance,
    }


def databases_of_app(*, device_id: int, project: str) -> QuerySet[PooledDatabase]:
    """The pooled databases of the app that is compose project `project` on the device."""
    return PooledDatabase.objects.filter(instance__device_id=device_id, project=project)


def _provision(*, deployment, engine: str, shell: Shell) -> tuple[PooledDatabase, bool, bool, str]:
    """(database, database created now, instance started now, what was restored). For
    Redis the "database" is the app's ACL user and key prefix; "created now" means the user
    is new. A database created now gets the newest final dump of its name, if the app was
    removed with its data kept (`_restore_kept`), and the password it had then."""
    name = engines.database_name_for(slug=deployment.slug, instance=deployment.instance)
    instance, instance_new, container = _ensure(
        device=deployment.device, engine=engine, shell=shell
    )
    with transaction.atomic():
        pooled = PooledDatabase.objects.filter(instance=instance, database_name=name).first()
        if pooled is None:
            kept = deployment.kept_database_passwords().get(engine)
            pooled = PooledDatabase.objects.create(
                instance=instance,
                **_app_fields(deployment),
                database_name=name,
                role_name=name,
                password=kept or engines.generate_password(),
            )
        elif pooled.app_id != deployment.pk or pooled.project != deployment.project:
            for field, value in _app_fields(deployment).items():
                setattr(pooled, field, value)
            pooled.save(update_fields=list(_app_fields(deployment)))
    _add_secret(shell, pooled.password)
    out = _run_sql(
        shell,
        instance,
        container,
        engines.provision_sql(
            instance.engine, database=name, role=pooled.role_name, password=pooled.password
        ),
        what=f"Creating the {_what(instance.engine)} {name}",
    )
    try:
        existed = engines.provision_existed(instance.engine, out, role=pooled.role_name)
    except ValueError as exc:
        raise PoolingError(
            f"Creating the {_what(instance.engine)} {name} gave an answer the platform cannot "
            f"read ({exc}). Try again; if it repeats, look at the shared server's log."
        ) from None
    pooled.instance = instance
    restored = ""
    if not existed and instance.engine in engines.DUMPABLE_ENGINES:
        try:
            restored = _restore_kept(shell, instance, container, pooled)
        except PoolingError as exc:
            # never half a restore: the next try starts from an empty database again
            pooled_database_drop(pooled=pooled, shell=shell)
            raise PoolingError(
                f"{exc.message} The new database was dropped again; the dump stays on the "
                "device. Try again; if it repeats, look at the shared server's log."
            ) from None
    return pooled, not existed, instance_new, restored


def _dumps_folder() -> str:
    """Where final dumps are kept on a device: `<deploy root>/pool-dumps`."""
    return f"{deploy_root()}/pool-dumps"


def _restore_kept(
    shell: Shell, instance: SharedInstance, container: str, pooled: PooledDatabase
) -> str:
    """Load the newest final dump of this database (left by a removal that kept the app's
    data) into the database just created; returns its path, or "" when there is none."""
    folder = _dumps_folder()
    code, out, _ = shell.run(engines.newest_dump_command(folder, pooled.database_name), timeout=30)
    path = out.strip() if code == 0 else ""
    if not path:
        return ""
    _check(
        shell,
        engines.restore_command(instance.engine, container, pooled.database_name, path),
        what=f"Restoring the kept data of {pooled.database_name} from {path}",
        timeout=1800,
        stdin=engines.sql_stdin(instance.engine, "", instance.admin_password),
    )
    return path


def pooled_database_provision(
    *, deployment, engine: str, shell: Shell | None = None
) -> PooledDatabase:
    """The app's database and role in the device's shared instance of `engine`.

    Idempotent: an existing row keeps its name and password; the SQL creates only what is
    missing and sets a role left by a half-finished run to the stored password. Redis: the
    ACL user is reset to the stored password and its patterns; its keys are untouched.
    """
    shell = _shell_for(deployment.device, shell)
    pooled, _, _, _ = _provision(deployment=deployment, engine=engine, shell=shell)
    return pooled


def pooled_database_drop(*, pooled: PooledDatabase, shell: Shell | None = None) -> str:
    instance = pooled.instance
    shell = _shell_for(instance.device, shell)
    container, state = _container(shell, instance)
    if container and state == "running":
        _run_sql(
            shell,
            instance,
            container,
            engines.drop_sql(instance.engine, database=pooled.database_name, role=pooled.role_name),
            what=f"Dropping the {_what(instance.engine)} {pooled.database_name}",
        )
    pooled.delete()
    if instance.engine == "redis":
        return f"Redis user {pooled.role_name} and its keys removed"
    return f"database and role {pooled.database_name} dropped"


def _what(engine: str) -> str:
    return "Redis user" if engine == "redis" else "database"


def pooled_database_dump(*, pooled: PooledDatabase, shell: Shell | None = None) -> str:
    """A final dump into `<deploy root>/pool-dumps/`; returns the path."""
    instance = pooled.instance
    shell = _shell_for(instance.device, shell)
    container, _ = _container(shell, instance)
    if not container:
        raise PoolingError(f"The shared {instance.get_engine_display()} is gone; nothing to dump.")
    folder = _dumps_folder()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = f"{folder}/{pooled.database_name}-{stamp}.sql"
    _check(shell, engines.dumps_folder_command(folder), what=f"Creating {folder}", timeout=30)
    _check(
        shell,
        engines.dump_command(instance.engine, container, pooled.database_name, path),
        what=f"Dumping the database {pooled.database_name}",
        timeout=1800,
        stdin=engines.sql_stdin(instance.engine, "", instance.admin_password),
    )
    return path


def _delete_dumps(shell: Shell, database: str) -> str:
    """On "Delete my data": the final dumps earlier removals kept of this database go too."""
    folder = _dumps_folder()
    _check(
        shell,
        engines.delete_dumps_command(folder, database),
        what=f"Deleting the kept dumps of {database}",
        timeout=60,
    )
    return f"kept dumps of {database} deleted"


def _instance_in_use(instance: SharedInstance) -> bool:
    return PooledDatabase.objects.filter(instance=instance).exists()


def shared_instance_remove_unused(*, instance: SharedInstance, shell: Shell | None = None) -> str:
    """Remove a shared server no app uses any more (kept when its last app was removed).

    Holds the device's deployment lease, so no deployment creates a database in it
    meanwhile; refuses while an app still uses it."""
    label = instance.get_engine_display()
    device = instance.device
    try:
        with device_lease(
            device_id=device.pk, holder=f"pool-remove-{instance.pk}-{uuid.uuid4().hex[:8]}"
        ):
            apps = PooledDatabase.objects.filter(instance=instance).count()
            if apps:
                raise PoolingError(
                    f"{apps} app{'s' if apps != 1 else ''} still use{'' if apps != 1 else 's'} "
                    f"the shared {label} on {device.name}: remove "
                    f"{'them' if apps != 1 else 'it'} first (My apps), then this server.",
                    code=409,
                )
            if instance.status == SharedInstance.Status.REMOVED:
                return f"shared {label} removed"
            return shared_instance_remove(instance=instance, shell=shell)
    except DeviceBusy:
        raise PoolingError(
            f"{device.name} is busy with a deployment; try again when it has finished.",
            code=409,
        ) from None
    except ssh.SSHError as exc:
        raise PoolingError.unreachable(device.name, exc) from None


def pooled_databases_release(
    *, deployment, keep_data: bool, keep_instance: bool = False, shell: Shell | None = None
) -> str:
    """On removal of an app: dump (when its data is kept; not for Redis), drop database and
    role (Redis: user and keys), and remove each shared instance left without apps
    (unless keep_instance)."""
    shell = _shell_for(deployment.device, shell)
    said = []
    for pooled in databases_of_app(
        device_id=deployment.device_id, project=deployment.project
    ).select_related(
        "instance", "instance__device"
    ):
        instance = pooled.instance
        _add_secret(shell, pooled.password)
        _add_secret(shell, instance.admin_password)
        if keep_data and instance.engine in engines.DUMPABLE_ENGINES:
            said.append(f"dumped to {pooled_database_dump(pooled=pooled, shell=shell)}")
            # the dump's owner logs in with this password again when the app comes back
            kept = deployment.kept_database_passwords()
            kept[instance.engine] = pooled.password
            deployment.database_passwords = json.dumps(kept)
            deployment.save(update_fields=["database_passwords"])
        elif not keep_data and instance.engine in engines.DUMPABLE_ENGINES:
            said.append(_delete_dumps(shell, pooled.database_name))
        elif keep_data:
            said.append(
                f"the Redis keys of {pooled.role_name} are not kept: they are the app's queue "
                "and cache, which it builds again"
            )
        said.append(pooled_database_drop(pooled=pooled, shell=shell))
        if not keep_instance and not _instance_in_use(instance):
            said.append(shared_instance_remove(instance=instance, shell=shell))
        _measure_now(shell, instance)
    return "; ".join(said)


def _measure_now(shell, instance: SharedInstance) -> None:
    """A shared server that gained or lost an app is measured at once, so the savings
    shown follow at once, not at the next scheduled measure. A failed measure changes
    nothing: the schedule measures again."""
    if SharedInstance.objects.filter(pk=instance.pk, status=SharedInstance.Status.REMOVED).exists():
        return
    try:
        shared_instance_measure(instance=instance, shell=shell)
    except PoolingError as exc:
        logger.info("Could not measure %s now: %s", instance.project, exc)


# ------------------------------------------------------------------ compose wiring
def compose_use_pool(
    data: dict,
    *,
    service: str,
    env_names: dict[str, str],
    values: dict[str, str],
    bundled_service: str | None,
    network: str,
) -> dict:
    """Wire one service of a rendered compose file to a pooled database (in place).

    1. Set the manifest's env vars (host, port, database, user, password, url; Redis:
       prefix) to the pooled values, `$` escaped.
    2. Join the service to the external network; keep it on `default` for its siblings.
    3. Drop the bundled database service, every `depends_on` on it and the volumes only it
       used.
    """
    services = data["services"]
    target = services[service]
    environment = dict(target.get("environment") or {})
    for role, var in env_names.items():
        environment[var] = escape_dollars(values[role])
    target["environment"] = environment
    networks = target.get("networks")
    if networks is None:
        target["networks"] = ["default", network]
    elif isinstance(networks, list):
        if network not in networks:
            networks.append(network)
    else:
        networks.setdefault(network, None)
    data.setdefault("networks", {})
    data["networks"][network] = {"name": network, "external": True}
    if bundled_service and bundled_service in services and bundled_service != service:
        dropped = services.pop(bundled_service)
        for other in services.values():
            depends = other.get("depends_on")
            if isinstance(depends, list) and bundled_service in depends:
                depends.remove(bundled_service)
            elif isinstance(depends, dict):
                depends.pop(bundled_service, None)
            if depends is not None and not depends:
                other.pop("depends_on")
        used = {src for s in services.values() for src, _, kind in service_mounts(s) if src}
        for source, _, kind in service_mounts(dropped):
            if kind == "volume" and source and source not in used:
                (data.get("volumes") or {}).pop(source, None)
        if data.get("volumes") == {}:
            data.pop("volumes")
    return data


def _wire_need(
    compose: dict, recipe, need, *, host: str, database: str, user: str, password: str
) -> None:
    """Wire the service of a manifest's database need to the shared server `host`: its
    database, login and password (compose_use_pool)."""
    engine = engines.MANIFEST_ENGINES[need.engine]
    compose_use_pool(
        compose,
        service=need.service or recipe.manifest.main_service,
        env_names=need.env.names(),
        values=engines.connection_env(
            engines.ENGINES[engine], host=host, database=database, user=user, password=password
        ),
        bundled_service=need.bundled_service,
        network=pool_network(),
    )


def compose_pool_preview(*, recipe, compose: dict, instance: str, password: str) -> dict:
    """The rendered compose wired to the shared servers as deploying it would (in place),
    with `password` (the wizard's mask) for each app password: the wizard's preview.
    Database names and hosts are the ones the deployment will get."""
    name = engines.database_name_for(slug=recipe.slug, instance=instance)
    for need in recipe.manifest.requires_database:
        if _poolable(need):
            host = engines.project_for(engines.MANIFEST_ENGINES[need.engine], pool_prefix())
            _wire_need(
                compose, recipe, need, host=host, database=name, user=name, password=password
            )
    return compose


def pooling_applies(recipe, config: dict | None) -> bool:
    """Whether the platform pools any of the recipe's databases for this config."""
    if (config or {}).get("bundled_databases"):
        return False
    return any(_poolable(need) for need in recipe.manifest.requires_database)


def _poolable(need) -> bool:
    return need_poolable(need)[0]


def need_poolable(need) -> tuple[bool, str]:
    """Whether the pool serves a manifest's database need, and in words why not (a Redis
    need whose app cannot put its keys under a prefix keeps its bundled Redis)."""
    return engines.manifest_need_poolable(need)


def pooled_databases_attach(
    *, deployment, recipe, compose: dict, shell: Shell, on_undo: Callable[[str, Callable], None]
) -> str:
    """The pipeline's pooling step (between render and upload).

    For each database need the pool offers: get or start the shared instance, get or
    create the app's database and role, wire the compose (env, network, no bundled
    service). Undo registered for what this call created: the database and role, and a
    shared instance started for it (removed when no app uses it). Needs the pool cannot
    serve (a Redis need without a key prefix) keep their bundled service, and say why.
    """
    said = []
    for need in recipe.manifest.requires_database:
        poolable, why_not = need_poolable(need)
        if not poolable:
            label = engines.LABELS.get(engines.MANIFEST_ENGINES[need.engine], need.engine)
            said.append(f"keeps its own {label}: {why_not}")
            continue
        engine = engines.MANIFEST_ENGINES[need.engine]
        pooled, db_new, instance_new, restored = _provision(
            deployment=deployment, engine=engine, shell=shell
        )
        instance = pooled.instance
        if instance_new:
            on_undo(
                f"remove the new shared {instance.get_engine_display()}",
                lambda instance=instance: (
                    shared_instance_remove(instance=instance, shell=shell)
                    if not _instance_in_use(instance)
                    else "still used by other apps: kept"
                ),
            )
        if db_new:
            on_undo(
                f"remove the Redis user {pooled.database_name} and its keys"
                if engine == "redis"
                else f"drop the database {pooled.database_name}",
                lambda pooled=pooled: pooled_database_drop(pooled=pooled, shell=shell),
            )
        _wire_need(
            compose,
            recipe,
            need,
            host=instance.project,
            database=pooled.database_name,
            user=pooled.role_name,
            password=pooled.password,
        )
        _measure_now(shell, instance)
        kind = "user and key prefix" if engine == "redis" else "database"
        state = "reused"
        if db_new:
            state = f"new, with the data kept at its removal ({restored})" if restored else "new"
        said.append(
            f"{instance.get_engine_display()} {kind} {pooled.database_name} ({state}) on "
            f"{instance.project}"
        )
    return "; ".join(said)
