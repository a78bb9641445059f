"""AK/SK request signing, `SDK-HMAC-SHA256`, as the Huawei Cloud SDK does it.

The reference is `huaweicloudsdkcore` (`signer/signer.py`, class `Signer`); tests compare every
part with it over random paths, queries and tokens. It is kept out of the runtime because of its
heavy, tightly pinned dependencies: this module is the whole of what signing needs.

Both sides use these functions: the client to sign what it sends, the simulator to verify what
it receives (from the raw path and query it was sent).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def _encode(text: str) -> str:
    # Unreserved characters (letters, digits, `-_.~`) stay; everything else is %XX of UTF-8.
    return quote(text, safe="~")


def canonical_uri(path: str) -> str:
    """The path as sent, decoded and re-encoded segment by segment, always ending in `/`."""
    encoded = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def query_value(value: object) -> str:
    """A query value as the SDK writes it: booleans lowercase, everything else `str()`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def canonical_query(params: Iterable[tuple[str, object]]) -> str:
    """`k=v` pairs sorted by name then value, both encoded, joined by `&`.

    Values are turned into text before sorting: a server sees only text, so that is the order
    it checks against (the SDK sorts the raw values, which agrees for the text values sent).
    """
    pairs = sorted((name, query_value(value)) for name, value in params)
    return "&".join(f"{_encode(name)}={_encode(value)}" for name, value in pairs)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header is signed except those with `_` in the name (the SDK's rule), lowercased."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes = b"",
) -> str:
    values = {name.lower(): str(value).strip() for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{values[name]}\n" for name in signed)
    body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    return "\n".join(
        (method.upper(), canonical_uri(path), query, canonical_headers, ";".join(signed), body_hash)
    )


def signature(secret_key: str, sdk_date: str, canonical: str) -> str:
    """Hex HMAC-SHA256 (keyed with the SK) of the string to sign."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{sdk_date}\n{digest}"
    key = secret_key.encode("utf-8")
    return hmac.new(key, string_to_sign.encode("utf-8"), "sha256").hexdigest()


def sdk_date(moment: datetime | None = None) -> str:
    """`X-Sdk-Date` of `moment` (default: now), UTC `YYYYMMDDTHHMMSSZ`."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(DATE_FORMAT)


def sign(
    method: str,
    path: str,
    params: Iterable[tuple[str, object]],
    headers: Mapping[str, str],
    access_key: str,
    secret_key: str,
    body: bytes = b"",
) -> dict[str, str]:
    """`headers` plus `X-Sdk-Date` (unless given) and `Authorization` for this request.

    `headers` must hold every header to sign, `Host` included; `path` is the path as it goes on
    the wire (percent-encoded). Send the query as `canonical_query(params)`, so that the server
    reads back exactly the values signed.
    """
    out = dict(headers)
    if not any(name.lower() == DATE_HEADER.lower() for name in out):
        out[DATE_HEADER] = sdk_date()
    date = next(value for name, value in out.items() if name.lower() == DATE_HEADER.lower())
    signed = signed_header_names(out)
    canonical = canonical_request(method, path, canonical_query(params), out, signed, body)
    out["Authorization"] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, "
        f"Signature={signature(secret_key, date, canonical)}"
    )
    return out


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """(access key, signed header names, signature) of an `Authorization` header, or None."""
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        name, _, field = part.strip().partition("=")
        fields[name] = field
    if not fields.get("Access") or not fields.get("Signature") or "SignedHeaders" not in fields:
        return None
    return fields["Access"], fields["SignedHeaders"].split(";"), fields["Signature"]


def parse_sdk_date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
