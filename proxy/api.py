"""The front door's API, under /api/v1/proxy.

GET  /proxy                       {"device_id", "domain", "mode", ...}
PUT  /proxy                       {"device_id", "domain", "mode"}
GET  /proxy/ca.pem                the homelab CA's certificate (public; never its key)
GET  /proxy/names                 every app's name and where it goes
PUT  /proxy/names/{deployment_id} {"hostname"}: rename one app ("" gives its default back)
"""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from proxy import services

router = Router(tags=["proxy"])


class ProxyIn(Schema):
    device_id: int | None = Field(None, description="The front-door device; null: none yet.")
    domain: str = Field(description="The home domain, like home.arpa.")
    mode: Literal["internal_ca", "acme_dns"] = Field(
        "internal_ca",
        description="internal_ca: the homelab's own certificates; acme_dns: not available yet.",
    )


class ProxyOut(Schema):
    device_id: int | None
    device: str | None
    domain: str
    mode: str
    ca_certificate_url: str


class NameIn(Schema):
    hostname: str = Field(description="Like vaultwarden.home.arpa; empty: its default name.")


class NameOut(Schema):
    deployment_id: int
    app: str
    device: str
    hostname: str
    custom: bool
    url: str
    upstream: str


def _settings_out(row) -> dict:
    return {
        "device_id": row.device_id,
        "device": row.device.name if row.device else None,
        "domain": row.domain,
        "mode": row.mode,
        "ca_certificate_url": "/api/v1/proxy/ca.pem",
    }


def _name_out(name: services.AppName) -> dict:
    route = services.Route(name.hostname, name.upstream_address, name.upstream_port)
    return {
        "deployment_id": name.deployment.pk,
        "app": name.deployment.app_name,
        "device": name.deployment.device.name,
        "hostname": name.hostname,
        "custom": name.custom,
        "url": name.url,
        "upstream": route.dial,
    }


@router.get("", response=ProxyOut)
def proxy_get(request: HttpRequest):
    return _settings_out(services.proxy_settings())


@router.put("", response=ProxyOut)
def proxy_put(request: HttpRequest, payload: ProxyIn):
    row = services.proxy_settings_save(
        domain=payload.domain, device_id=payload.device_id, mode=payload.mode
    )
    return _settings_out(row)


@router.get("/ca.pem", response={200: None}, url_name="proxy_ca")
def proxy_ca(request: HttpRequest):
    # the type phones and browsers offer to install as an authority
    response = HttpResponse(
        services.ca_certificate_pem(), content_type="application/x-x509-ca-cert"
    )
    response["Content-Disposition"] = 'attachment; filename="homelab-ca.pem"'
    return response


@router.get("/names", response=list[NameOut])
def proxy_names(request: HttpRequest):
    return [_name_out(name) for name in services.app_names()]


@router.put("/names/{deployment_id}", response=NameOut)
def proxy_name_put(request: HttpRequest, deployment_id: int, payload: NameIn):
    return _name_out(services.app_name_set(deployment_id=deployment_id, hostname=payload.hostname))
