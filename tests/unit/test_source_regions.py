"""Region endpoints: the vendor's table shipped as data, the SDK's override variable and its
regions file, read as the SDK (huaweicloudsdkcore) reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from huaweicloudsdkcore.region.cache import ProfileRegionCache
from huaweicloudsdkcore.region.provider import EnvRegionProvider

from pipelines.settings import ConfigError
from pipelines.source.regions import known_regions, override_variable, region_endpoint

NO_FILE = {"HUAWEICLOUD_SDK_REGIONS_FILE": ""}


@pytest.fixture(autouse=True)
def no_home_regions_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.huaweicloud/regions.yaml


@pytest.mark.parametrize(
    ("service", "region", "endpoint"),
    [
        ("modelarts", "ap-southeast-1", "https://modelarts.ap-southeast-1.myhuaweicloud.cn"),
        ("modelarts", "cn-north-4", "https://modelarts.cn-north-4.myhuaweicloud.com"),
        ("modelarts", "ap-southeast-3", "https://modelarts.ap-southeast-3.myhuaweicloud.com"),
        ("modelarts", "cn-north-12", "https://modelarts.cn-north-12.myhuaweicloud.com"),
        ("iam", "eu-west-101", "https://iam.eu-west-101.myhuaweicloud.eu"),
        ("iam", "ap-southeast-1", "https://iam.ap-southeast-1.myhuaweicloud.com"),
        ("iam", "cn-north-4", "https://iam.cn-north-4.myhuaweicloud.com"),
    ],
)
def test_the_vendors_table_with_its_exceptions(service: str, region: str, endpoint: str) -> None:
    assert region_endpoint(service, region, NO_FILE) == endpoint


def test_the_table_holds_every_modelarts_region_of_the_sdk() -> None:
    # huaweicloudsdkmodelarts v1 ModelArtsRegion.static_fields (API.md, "Limits of real regions")
    listed = [
        "cn-north-1",
        "cn-north-2",
        "cn-north-4",
        "cn-north-9",
        "cn-north-11",
        "cn-north-12",
        "cn-south-1",
        "cn-east-3",
        "cn-east-4",
        "cn-southwest-2",
        "cn-southwest-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "la-south-2",
        "la-north-2",
        "sa-brazil-1",
        "af-south-1",
        "af-north-1",
        "tr-west-1",
        "me-east-1",
    ]
    assert sorted(listed) == known_regions("modelarts")
    # every ModelArts region has its IAM
    assert set(known_regions("modelarts")) <= set(known_regions("iam"))


def test_an_unknown_region_names_the_known_ids_and_the_override() -> None:
    with pytest.raises(ConfigError) as caught:
        region_endpoint("modelarts", "eu-west-101", NO_FILE)
    message = str(caught.value)
    assert "unknown region 'eu-west-101'" in message
    assert ",".join(known_regions("modelarts")) in message
    assert "HUAWEICLOUD_SDK_REGION_MODELARTS_EU_WEST_101" in message
    assert "\n" not in message


def test_the_override_variable_is_the_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = override_variable("modelarts", "eu-west-101")
    assert variable == "HUAWEICLOUD_SDK_REGION_MODELARTS_EU_WEST_101"
    monkeypatch.setenv(variable, "https://modelarts.eu-west-101.example.eu,https://second")
    sdk = EnvRegionProvider("modelarts").get_region("eu-west-101")
    assert sdk is not None
    ours = region_endpoint("modelarts", "eu-west-101", {**NO_FILE, variable: sdk.endpoints[0]})
    assert ours == sdk.endpoints[0] == "https://modelarts.eu-west-101.example.eu"
    # the override wins over the table
    env = {**NO_FILE, override_variable("modelarts", "ap-southeast-1"): "https://proxy.local"}
    assert region_endpoint("modelarts", "ap-southeast-1", env) == "https://proxy.local"


def test_the_regions_file_is_read_as_the_sdk_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    regions = tmp_path / "regions.yaml"
    regions.write_text(
        "ModelArts:\n"
        "  - id: eu-west-101\n"
        "    endpoint: https://modelarts.eu-west-101.myhuaweicloud.eu\n"
        "  - id: cn-north-4\n"
        "    endpoints:\n"
        "      - https://modelarts-private.cn-north-4.example\n"
        "IAM:\n"
        "  - id: eu-west-101\n"
        "    endpoint: https://iam.eu-west-101.example.eu\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(regions))
    sdk = ProfileRegionCache._resolve_profile()
    env = {"HUAWEICLOUD_SDK_REGIONS_FILE": str(regions)}
    for service, region in (("modelarts", "eu-west-101"), ("modelarts", "cn-north-4"),
                            ("iam", "eu-west-101")):  # fmt: skip
        assert region_endpoint(service, region, env) == sdk[service.upper() + region].endpoints[0]
    # a region the file does not name falls back to the table
    assert region_endpoint("modelarts", "ap-southeast-1", env).endswith(".myhuaweicloud.cn")


def test_a_named_regions_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    env = {"HUAWEICLOUD_SDK_REGIONS_FILE": str(tmp_path / "none.yaml")}
    with pytest.raises(ConfigError, match="HUAWEICLOUD_SDK_REGIONS_FILE"):
        region_endpoint("modelarts", "cn-north-4", env)
