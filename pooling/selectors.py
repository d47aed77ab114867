"""Reads about the database pool: instances, their databases and the memory saved."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from pooling import engines, hooks
from pooling.models import PooledDatabase, SharedInstance


def shared_instances_live() -> QuerySet[SharedInstance]:
    return (
        SharedInstance.objects.exclude(status=SharedInstance.Status.REMOVED)
        .select_related("device")
        .annotate(apps=Count("databases"))
    )


def shared_instance_baseline(instance: SharedInstance) -> tuple[int, str]:
    """(bytes of one standalone server of the engine, where that figure comes from)."""
    if instance.standalone_memory_bytes:
        return instance.standalone_memory_bytes, "measured on the device"
    spec = engines.ENGINES.get(instance.engine)
    if spec is None:
        return 0, "no baseline for this engine"
    return spec.default_standalone_bytes, f"documented default: {spec.default_source}"


def shared_instance_saved_bytes(instance: SharedInstance, apps: int | None = None) -> int:
    if apps is None:
        apps = PooledDatabase.objects.filter(instance=instance).count()
    if instance.measured_memory_bytes is None:
        return 0
    baseline, _ = shared_instance_baseline(instance)
    return engines.saved_bytes(
        apps=apps, standalone_bytes=baseline, shared_bytes=instance.measured_memory_bytes
    )


def shared_instance_summary(instance: SharedInstance) -> dict:
    """One shared server as the page and the API show it: {"instance", "databases",
    "apps", "connections" (None until measured), "baseline_bytes", "baseline_source",
    "saved_bytes"}. `instance` may carry the `apps` count annotated by
    shared_instances_live()."""
    databases = list(pooled_databases_of(instance))
    apps = getattr(instance, "apps", None)
    if apps is None:
        apps = len(databases)
    baseline, source = shared_instance_baseline(instance)
    measured = [d.connections for d in databases if d.connections is not None]
    return {
        "instance": instance,
        "databases": databases,
        "apps": apps,
        "connections": sum(measured) if measured else None,
        "baseline_bytes": baseline,
        "baseline_source": source,
        "saved_bytes": shared_instance_saved_bytes(instance, apps),
    }


def shared_instance_summaries() -> list[dict]:
    """shared_instance_summary of every live shared server."""
    return [shared_instance_summary(i) for i in shared_instances_live()]


def pooling_saved_ram_bytes() -> int:
    """Sum over live instances of (apps x standalone baseline - measured shared memory),
    each never negative; an instance not measured yet counts 0."""
    return sum(shared_instance_saved_bytes(i, i.apps) for i in shared_instances_live())


def _databases_of(app) -> QuerySet[PooledDatabase]:
    """The pooled databases of an app of the apps layer: its compose project on its device."""
    return PooledDatabase.objects.filter(instance__device_id=app.device_id, project=app.project)


def shared_instances_left_empty(deployment) -> list[SharedInstance]:
    """The shared servers on which `deployment` is the only app: removing it leaves them
    without apps (and removes them, unless the person keeps them)."""
    # filtering on the join would count only this app's databases: select by id instead
    mine = _databases_of(deployment).values("instance_id")
    live = SharedInstance.objects.filter(pk__in=mine).exclude(status=SharedInstance.Status.REMOVED)
    return list(live.annotate(apps=Count("databases")).filter(apps=1).select_related("device"))


def shared_instances_down() -> list[str]:
    """For the dashboard: one sentence per shared server the health check could not start
    again (its apps cannot reach their databases)."""
    out = []
    for instance in shared_instances_live().filter(status=SharedInstance.Status.FAILED):
        n = instance.apps
        out.append(
            f"The shared {instance.get_engine_display()} on {instance.device.name} is down: "
            f"{n} app{'s' if n != 1 else ''} cannot reach {'their' if n != 1 else 'its'} "
            "database."
        )
    return out


def pooled_databases_of(instance: SharedInstance) -> QuerySet[PooledDatabase]:
    return PooledDatabase.objects.filter(instance=instance)


def pooling_recommendations() -> list[dict]:
    """Apps that run their own database container of an engine the pool offers, grouped by
    device and engine, with what sharing would save.

    1. Live deployments (running or stopped) whose recipe needs a poolable engine and that
       have no pooled database for it (deployed with bundled_databases, or before pooling).
    2. Per device and engine: n such apps. With a shared instance there already, sharing
       saves about n x baseline; without one, (n - 1) x baseline (one server stays).
    3. Only groups that would save something are returned.
    """
    groups: dict[tuple[int, str], dict] = {}
    for live in hooks.live_apps():
        pooled_engines = set(
            PooledDatabase.objects.filter(
                instance__device_id=live.device.pk, project=live.project
            ).values_list("instance__engine", flat=True)
        )
        for need in live.database_needs:
            engine = engines.MANIFEST_ENGINES[need.engine]
            if engine in pooled_engines or not engines.manifest_need_poolable(need)[0]:
                continue
            group = groups.setdefault(
                (live.device.pk, engine),
                {"device": live.device, "engine": engine, "apps": []},
            )
            group["apps"].append(live.app)
    out = []
    for (device_id, engine), group in sorted(groups.items(), key=lambda kv: kv[0]):
        shared = (
            SharedInstance.objects.filter(device_id=device_id, engine=engine)
            .exclude(status=SharedInstance.Status.REMOVED)
            .first()
        )
        baseline = (
            shared_instance_baseline(shared)[0]
            if shared
            else engines.ENGINES[engine].default_standalone_bytes
        )
        n = len(group["apps"])
        saved = n * baseline if shared else (n - 1) * baseline
        if saved <= 0:
            continue
        label = engines.LABELS[engine]
        group.update(
            saved_bytes=saved,
            sentence=(
                f"{n} app{'s' if n != 1 else ''} run{'' if n != 1 else 's'} their own {label} "
                f"on {group['device'].name}: sharing would save about {saved // (1024 * 1024)} MB"
            ),
        )
        out.append(group)
    return out


def pooling_preview(*, device, recipe, config: dict | None = None) -> list[str]:
    """Sentences for the deploy wizard's resource preview: which shared server the app
    would use on `device`, and what that saves or costs; for a database it keeps bundled,
    why (nothing when the person chose bundled databases)."""
    if (config or {}).get("bundled_databases"):
        return []
    out = []
    for need in recipe.manifest.requires_database:
        engine = engines.MANIFEST_ENGINES[need.engine]
        label = engines.LABELS.get(engine, engine)
        poolable, why_not = engines.manifest_need_poolable(need)
        if not poolable:
            out.append(f"Keeps its own {label}: {why_not}")
            continue
        shared = (
            SharedInstance.objects.filter(device=device, engine=engine)
            .exclude(status=SharedInstance.Status.REMOVED)
            .first()
        )
        if shared is not None:
            baseline, _ = shared_instance_baseline(shared)
            out.append(
                f"Will use the shared {label} on {device.name} "
                f"(saves about {baseline // engines.MIB} MB)"
            )
        else:
            cost = engines.ENGINES[engine].default_standalone_bytes // engines.MIB
            out.append(
                f"No {label} on {device.name} yet: will start a shared one (about {cost} MB)"
            )
    return out


def shared_server_devices(*, recipe) -> frozenset[int]:
    """Devices already running a live shared server of an engine the app would share
    (placement counts it in their favour: no new server to start there)."""
    wanted = [
        engines.MANIFEST_ENGINES[need.engine]
        for need in recipe.manifest.requires_database
        if engines.manifest_need_poolable(need)[0]
    ]
    live = SharedInstance.objects.filter(engine__in=wanted).exclude(
        status=SharedInstance.Status.REMOVED
    )
    return frozenset(live.values_list("device_id", flat=True)) if wanted else frozenset()


def pooling_unpooled() -> list[str]:
    """For the pooling page: apps that keep a database of their own although the pool
    offers its engine, one sentence per app and engine, saying why (not by choice: apps
    deployed with bundled_databases are the recommendations' business)."""
    found: dict[tuple[str, str], list[str]] = {}
    reasons: dict[tuple[str, str], str] = {}
    for live in hooks.live_apps():
        if live.bundled_databases:
            continue
        for need in live.database_needs:
            engine = engines.MANIFEST_ENGINES[need.engine]
            poolable, why_not = engines.manifest_need_poolable(need)
            if poolable or engine not in engines.POOLED_ENGINES:
                continue
            key = (live.name, engines.LABELS[engine])
            found.setdefault(key, []).append(live.device.name)
            reasons[key] = why_not
    return [
        f"{app} keeps its own {label} on {', '.join(sorted(set(devices)))}: {reasons[(app, label)]}"
        for (app, label), devices in sorted(found.items())
    ]


def pooled_databases_for_deployment(deployment) -> list[dict]:
    """What a deployment's detail says about its pooled databases (no secrets)."""
    return [
        {
            "engine": d.instance.engine,
            "label": engines.LABELS.get(d.instance.engine, d.instance.engine),
            "database": d.database_name,
            "role": d.role_name,
            "host": d.instance.project,
            "instance_id": d.instance_id,
        }
        for d in _databases_of(deployment).select_related("instance")
    ]


def dashboard_figures() -> dict:
    """devices.hooks.dashboard_figures: what pooling adds to the resources summary."""
    return {
        "pooling_saved_ram_bytes": int(pooling_saved_ram_bytes()),
        "shared_databases_down": shared_instances_down(),
    }


def secret_values_for(deployment) -> list[str]:
    """The generated passwords of a deployment's pooled databases, for masking its logs."""
    return [
        password
        for password in _databases_of(deployment).values_list("password", flat=True)
        if password
    ]
