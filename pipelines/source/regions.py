"""Endpoints of Huawei Cloud regions, as the vendor's SDK resolves them.

The table (regions.json, shipped in the package) is the SDK's region tables of ModelArts and
IAM, exceptions included (ModelArts in ap-southeast-1 is on `.myhuaweicloud.cn`, IAM in
eu-west-101 on `.myhuaweicloud.eu`). Before it, in the SDK's order (huaweicloudsdkcore
`region/provider.py`, `region/cache.py`):
1. `HUAWEICLOUD_SDK_REGION_<SERVICE>_<REGION_ID>` (upper case, `-` as `_`; a comma list: the
   first is used);
2. the regions file, `HUAWEICLOUD_SDK_REGIONS_FILE` (default ~/.huaweicloud/regions.yaml), YAML:
   `{ModelArts: [{id: REGION, endpoint: URL} or {id: REGION, endpoints: [URL, ...]}], IAM: ...}`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pipelines.settings import (
    IAM_REGION,
    SDK_REGION_PREFIX,
    SDK_REGIONS_FILE,
    ConfigError,
)

DEFAULT_REGIONS_FILE = Path("~/.huaweicloud/regions.yaml")
SERVICES = ("modelarts", "iam")


@cache
def _table() -> dict[str, dict[str, str]]:
    text = resources.files("pipelines.source").joinpath("regions.json").read_text("utf-8")
    data = json.loads(text)
    return {service: data[service.upper()] for service in SERVICES}


def known_regions(service: str) -> list[str]:
    """The region ids of `service` in the vendor's table."""
    return sorted(_table()[service])


def override_variable(service: str, region: str) -> str:
    """The SDK's variable overriding `service`'s endpoint in `region`."""
    return f"{SDK_REGION_PREFIX}_{service.upper()}_{region.replace('-', '_').upper()}"


def regions_file_path(env: Mapping[str, str]) -> tuple[Path, bool]:
    """The regions file and whether it was named explicitly."""
    named = env.get(SDK_REGIONS_FILE)
    return (Path(named).expanduser(), True) if named else (DEFAULT_REGIONS_FILE.expanduser(), False)


def _from_file(service: str, region: str, env: Mapping[str, str]) -> str | None:
    path, explicit = regions_file_path(env)
    if not path.exists():
        if explicit:
            raise ConfigError(f"the regions file {path} ({SDK_REGIONS_FILE}) does not exist")
        return None
    import yaml

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the regions file {path}: {type(exc).__name__}") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"the regions file {path} is not a mapping of services to regions")
    for name, entries in data.items():
        if str(name).upper() != service.upper() or not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("id") != region:
                continue
            endpoints = list(entry.get("endpoints") or [])
            if entry.get("endpoint"):
                endpoints.append(entry["endpoint"])
            if endpoints:
                return str(endpoints[0])
    return None


def region_endpoint(service: str, region: str, env: Mapping[str, str] | None = None) -> str:
    """The endpoint of `service` ('modelarts' or 'iam') in `region`: the override variable, the
    regions file, then the vendor's table; ConfigError (one line: the known ids and the
    override) for a region none of them knows."""
    env = os.environ if env is None else env
    variable = override_variable(service, region)
    if env.get(variable):
        return env[variable].split(",")[0].strip().rstrip("/")
    found = _from_file(service, region, env)
    if found:
        return found.rstrip("/")
    table = _table()[service]
    if region in table:
        return table[region]
    # every known id and the override in the CLI's one line
    raise ConfigError(
        f"unknown region {region!r} ({IAM_REGION}); known: {','.join(known_regions(service))}; "
        f"else set {variable} (or {SDK_REGIONS_FILE})"
    )
