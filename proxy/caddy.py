"""The front door's configuration: Caddy's JSON, generated from routes, never by hand.

`caddy_config` is a pure function of (hostname, upstream address, upstream port) routes and
where the certificate files are. JSON rather than a Caddyfile: json.dumps quotes every
value, so nothing a name holds can become configuration; and each value is also checked
with a full match before it gets here (defence in depth).

What the configuration does:

1. One HTTPS server on `https_listen`: a route per app name (matched on the Host header)
   to the app's device and port, then a last route answering 404 in plain words for any
   other name.
2. Certificates come from files (the homelab CA's leaf, or later ACME's); Caddy's own
   automatic HTTPS is off, so it never asks a public CA for a home name.
3. Optionally a plain-HTTP server on `http_listen` that sends every request to https.
4. Caddy's admin endpoint on `admin_listen` (loopback), which `caddy reload` uses: a reload
   swaps the routes gracefully, keeping other apps' connections.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.names import check_hostname

# an IPv4/IPv6 address or a DNS host name (as devices.models.ADDRESS_PATTERN)
ADDRESS_PATTERN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|[0-9A-Fa-f:.]+)"
)
# host:port, [v6]:port or :port
LISTEN_PATTERN = r"(?:(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])?:[0-9]{1,5})"
# an absolute path of plain characters, no '..'
PATH_PATTERN = r"/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*"

NOT_FOUND_BODY = (
    "No app has this name on the homelab's front door. Check the name, or open the "
    "App addresses page of the homelab to see every app's name.\n"
)


@dataclass(frozen=True, order=True)
class Route:
    hostname: str
    upstream_address: str
    upstream_port: int

    @property
    def dial(self) -> str:
        host = (
            f"[{self.upstream_address}]" if ":" in self.upstream_address else self.upstream_address
        )
        return f"{host}:{self.upstream_port}"


def check_route(route: Route) -> Route:
    """The route, when each part is plain; ValueError (plain words) otherwise."""
    check_hostname(route.hostname)
    if not isinstance(route.upstream_address, str) or not re.fullmatch(
        ADDRESS_PATTERN, route.upstream_address
    ):
        raise ValueError(
            f"The device address of {route.hostname} is not an IP address or host name; "
            "correct it on the device's page."
        )
    if (
        isinstance(route.upstream_port, bool)
        or not isinstance(route.upstream_port, int)
        or not (1 <= route.upstream_port <= 65535)
    ):
        raise ValueError(f"The port of {route.hostname} must be a number from 1 to 65535.")
    return route


def _check_listen(value: str, what: str) -> str:
    if not re.fullmatch(LISTEN_PATTERN, value) or not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
        raise ValueError(f"The {what} address must look like :443 or 127.0.0.1:8443.")
    return value


def _check_path(value: str, what: str) -> str:
    if not re.fullmatch(PATH_PATTERN, value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValueError(
            f"The {what} must be an absolute path of letters, digits, '.', '-', '_' and '/'."
        )
    return value


def caddy_config(
    routes: Iterable[Route],
    *,
    certificate_path: str,
    key_path: str,
    https_listen: str = ":443",
    http_listen: str | None = ":80",
    admin_listen: str = "localhost:2019",
    storage_path: str | None = None,
) -> dict:
    """Caddy's configuration (as a dict; `caddy_json` for the text) for `routes`.

    ValueError with plain words when a route, listen address or path is not plain, or two
    routes claim one name.
    """
    checked = sorted(check_route(route) for route in routes)
    seen: set[str] = set()
    for route in checked:
        if route.hostname in seen:
            raise ValueError(f"Two apps are named {route.hostname}; rename one of them.")
        seen.add(route.hostname)
    https_listen = _check_listen(https_listen, "HTTPS listen")
    admin_listen = _check_listen(admin_listen, "admin listen")
    certificate_path = _check_path(certificate_path, "certificate file")
    key_path = _check_path(key_path, "key file")

    app_routes = [
        {
            "match": [{"host": [route.hostname]}],
            "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": route.dial}]}],
            "terminal": True,
        }
        for route in checked
    ]
    app_routes.append(
        {
            "handle": [
                {
                    "handler": "static_response",
                    "status_code": 404,
                    "headers": {"Content-Type": ["text/plain; charset=utf-8"]},
                    "body": NOT_FOUND_BODY,
                }
            ]
        }
    )
    servers: dict = {
        "front_door": {
            "listen": [https_listen],
            "routes": app_routes,
            # certificates are ours (load_files below): never ask a public CA for them
            "automatic_https": {"disable": True},
            "tls_connection_policies": [{}],
        }
    }
    if http_listen is not None:
        servers["to_https"] = {
            "listen": [_check_listen(http_listen, "HTTP listen")],
            "routes": [
                {
                    "handle": [
                        {
                            "handler": "static_response",
                            "status_code": 308,
                            "headers": {
                                "Location": ["https://{http.request.host}{http.request.uri}"]
                            },
                        }
                    ]
                }
            ],
            "automatic_https": {"disable": True},
        }
    config: dict = {
        "admin": {"listen": admin_listen},
        "apps": {
            "http": {"servers": servers},
            "tls": {
                "certificates": {
                    "load_files": [
                        {"certificate": certificate_path, "key": key_path, "tags": ["homelab"]}
                    ]
                }
            },
        },
    }
    if storage_path is not None:
        config["storage"] = {
            "module": "file_system",
            "root": _check_path(storage_path, "storage folder"),
        }
    return config


def caddy_json(routes: Iterable[Route], **options) -> str:
    """`caddy_config` as the text of a caddy.json file (stable: same routes, same bytes)."""
    return json.dumps(caddy_config(routes, **options), indent=2, sort_keys=True) + "\n"
