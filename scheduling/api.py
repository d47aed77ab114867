"""Placement API (mounted at the API root, so the paths below are absolute under /api/v1).

GET  /applications/{slug}/placement   rank the devices for a known app
POST /placement                       rank them for ad-hoc requirements
POST /placement/choices               record the device a person chose (the override)
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from scheduling import services
from scheduling.scoring import Ranking

router = Router(tags=["placement"])

PolicyName = Literal["spread", "pack"]


class ScoresOut(Schema):
    ram: float
    storage: float
    cpu: float
    load: float
    uptime: float


class CandidateOut(Schema):
    device_id: int
    device_name: str
    score: float
    scores: ScoresOut
    eligible: bool
    label: str
    reasons: list[str]
    summary: str


class PlacementOut(Schema):
    recommended: int | None = Field(description="Id of the recommended device, or null.")
    policy: str
    message: str = Field(
        description="The recommendation in one sentence, or 'No device can run this app' "
        "with each device's reason."
    )
    candidates: list[CandidateOut] = Field(description="Every device, best first.")


# Range limits: a number outside them answers 422 naming the field (never an overflow).
MAX_BYTES = 2**60  # 1 EiB
MAX_CORES = 100_000.0
MAX_WEIGHT = 1_000_000.0
_Weight = Field(None, ge=0, le=MAX_WEIGHT, allow_inf_nan=False)


class WeightsIn(Schema):
    ram: float | None = _Weight
    storage: float | None = _Weight
    cpu: float | None = _Weight
    load: float | None = _Weight
    uptime: float | None = _Weight


class RequirementsIn(Schema):
    name: str = Field("Custom app", max_length=100)
    min_ram_bytes: int = Field(0, ge=0, le=MAX_BYTES)
    recommended_ram_bytes: int | None = Field(None, ge=0, le=MAX_BYTES)
    min_storage_bytes: int = Field(0, ge=0, le=MAX_BYTES)
    recommended_storage_bytes: int | None = Field(None, ge=0, le=MAX_BYTES)
    min_cpu_cores: float = Field(0, ge=0, le=MAX_CORES, allow_inf_nan=False)
    recommended_cpu_cores: float | None = Field(None, ge=0, le=MAX_CORES, allow_inf_nan=False)
    architectures: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=10)
    ports: list[int] = Field(default_factory=list, max_length=100)  # each checked in scoring
    always_on: bool = False


class PlacementIn(RequirementsIn):
    policy: PolicyName | None = None
    weights: WeightsIn | None = None


class ChoiceIn(Schema):
    device_id: int = Field(..., ge=1, le=2**63 - 1)
    slug: str | None = Field(None, max_length=100, description="A known app, or give `requirements`.")
    requirements: RequirementsIn | None = None
    policy: PolicyName | None = None


class ChoiceOut(Schema):
    id: int
    app_name: str
    chosen_device_id: int
    recommended_device_id: int | None
    override: bool
    chosen_eligible: bool
    message: str


def _out(ranking: Ranking) -> dict:
    return ranking.as_dict()


@router.get("/applications/{slug}/placement", response=PlacementOut)
def application_placement(request: HttpRequest, slug: str, policy: PolicyName | None = None):
    """Every device scored for the app, best first, with the recommended one."""
    return _out(services.placement_rank_app(slug=slug, policy=policy))


def _requirements(payload: RequirementsIn):
    return services.requirements_build(
        **payload.model_dump(
            include={
                "name",
                "min_ram_bytes",
                "recommended_ram_bytes",
                "min_storage_bytes",
                "recommended_storage_bytes",
                "min_cpu_cores",
                "recommended_cpu_cores",
                "architectures",
                "ports",
                "always_on",
            }
        )
    )


@router.post("/placement", response=PlacementOut)
def placement_for_requirements(request: HttpRequest, payload: PlacementIn):
    """Every device scored for ad-hoc requirements (until the marketplace exists)."""
    requirements = _requirements(payload)
    weights = payload.weights.model_dump(exclude_none=True) if payload.weights else None
    return _out(
        services.placement_rank(requirements=requirements, policy=payload.policy, weights=weights)
    )


@router.post("/placement/choices", response={201: ChoiceOut})
def placement_choice(request: HttpRequest, payload: ChoiceIn):
    """Record the device chosen for an app, which may differ from the recommended one."""
    if payload.slug:
        requirements = services.app_requirements(slug=payload.slug)
    elif payload.requirements is not None:
        requirements = _requirements(payload.requirements)
    else:
        raise services.PlacementError(
            "slug: give an app slug or the app's requirements.", field="slug"
        )
    choice = services.placement_choose(
        requirements=requirements,
        device_id=payload.device_id,
        policy=payload.policy,
        user=request.user,
    )
    return Status(
        201,
        {
            "id": choice.pk,
            "app_name": choice.app_name,
            "chosen_device_id": choice.chosen_device_id,
            "recommended_device_id": choice.recommended_device_id,
            "override": choice.is_override,
            "chosen_eligible": choice.chosen_eligible,
            "message": choice.message,
        },
    )
