"""The ack's three storage writes (insert a log row, put a message, put a blob) as plain signed HTTP requests.

Why not the SDKs: on the ack path they cost more than the storage does. Importing them takes ~0.3 s of a
cold start (they bring `requests`), and each call spends ~1.5 ms of CPU in the pipeline (policies,
proxy lookups, XML models) against ~1 ms for Azurite to answer. Here a call is one HMAC and one
`http.client` request on a kept-alive connection per thread. Only connection strings with an account
key take this path (that includes Azurite's); any other (SAS, ...) uses the SDK clients of `shared.store`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import select
import socket
import threading
from email.utils import formatdate
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

CONNECT_TIMEOUT = 5.0  # as shared.store's SDK clients: fail fast, the caller has one second
READ_TIMEOUT = 20.0
TABLE_VERSION = "2019-02-02"
STORAGE_VERSION = "2021-12-02"  # queues and blobs
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public
_MISSING = frozenset({"TableNotFound", "QueueNotFound", "ContainerNotFound"})
_XML_ESCAPES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


class StorageHTTPError(Exception):
    """Storage answered with an error; the message holds the status and error code, never a key."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"storage answered {status} {code}".strip())
        self.status = status
        self.code = code


class Endpoint(NamedTuple):  # NamedTuples, not dataclasses: a tenth of the import time (cold starts)
    scheme: str
    host: str
    port: int | None
    path: str  # "" for Azure, "/devstoreaccount1" for Azurite's path-style URLs


class Account(NamedTuple):
    name: str
    key: bytes = b""
    table: Endpoint | None = None
    queue: Endpoint | None = None
    blob: Endpoint | None = None

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"Account(name={self.name!r})"


def _endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    return Endpoint(parts.scheme, parts.hostname or "", parts.port, parts.path.rstrip("/"))


@lru_cache(maxsize=16)
def account(storage: str) -> Account | None:
    """The account behind a connection string with a shared key; None for any other kind (use the SDK)."""
    fields = dict(p.split("=", 1) for p in storage.strip().split(";") if "=" in p)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if fields.get("UseDevelopmentStorage", "").lower() == "true":
        host = "http://127.0.0.1"
        return Account("devstoreaccount1", base64.b64decode(_DEV_KEY),
                       _endpoint(f"{host}:10002/devstoreaccount1"), _endpoint(f"{host}:10001/devstoreaccount1"),
                       _endpoint(f"{host}:10000/devstoreaccount1"))
    name, key = fields.get("AccountName"), fields.get("AccountKey")
    if not name or not key or fields.get("SharedAccessSignature"):
        return None
    try:
        secret = base64.b64decode(key, validate=True)
    except ValueError:
        return None
    scheme = fields.get("DefaultEndpointsProtocol", "https")
    suffix = fields.get("EndpointSuffix", "core.windows.net")

    def url(service: str) -> Endpoint:
        explicit = fields.get(service.capitalize() + "Endpoint")
        return _endpoint(explicit or f"{scheme}://{name}.{service}.{suffix}")

    return Account(name, secret, url("table"), url("queue"), url("blob"))


# -- connections ---------------------------------------------------------------------------------------

_local = threading.local()


def _connection(ep: Endpoint) -> tuple[http.client.HTTPConnection, bool]:
    """This thread's kept-alive connection to `ep` (and whether it is reused); a dropped one is replaced."""
    pool: dict[Endpoint, http.client.HTTPConnection] = _local.__dict__.setdefault("pool", {})
    conn = pool.get(ep)
    if conn is not None and conn.sock is not None:
        try:  # readable while idle means the server closed it (or sent junk): do not reuse it
            readable = select.select([conn.sock], [], [], 0)[0]
        except (OSError, ValueError):
            readable = [conn.sock]
        if not readable:
            return conn, True
        conn.close()
    cls = http.client.HTTPSConnection if ep.scheme == "https" else http.client.HTTPConnection
    conn = cls(ep.host, ep.port, timeout=CONNECT_TIMEOUT)
    conn._create_connection = _open  # type: ignore[attr-defined]
    conn.connect()
    assert conn.sock is not None
    conn.sock.settimeout(READ_TIMEOUT)
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pool[ep] = conn
    return conn, False


def _open(address: tuple[str, int], timeout: float, source_address: Any = None) -> socket.socket:
    """socket.create_connection, with an ASCII host passed as bytes: a str host makes getaddrinfo import
    the idna codec (~4 ms of a cold start; TLS still needs it for its server name)."""
    host, port = address
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    return socket.create_connection((name, port), timeout, source_address)  # type: ignore[arg-type]


def _send(ep: Endpoint, method: str, url: str, headers: dict[str, str], body: bytes,
          *, idempotent: bool) -> tuple[int, http.client.HTTPResponse, bytes]:
    for attempt in (1, 2):
        conn, reused = _connection(ep)
        sent = False
        try:
            conn.request(method, url, body=body, headers=headers)
            sent = True
            resp = conn.getresponse()
            data = resp.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            conn.close()
            # A kept-alive connection the server closed just now: safe to send again when the request
            # could not have been processed (not fully sent) or is idempotent; never twice otherwise.
            if attempt == 1 and reused and (idempotent or not sent):
                continue
            raise
        if resp.will_close:
            conn.close()
        return resp.status, resp, data
    raise AssertionError("unreachable")


# -- signing -------------------------------------------------------------------------------------------

def _sign(acct: Account, text: str) -> str:
    digest = hmac.new(acct.key, text.encode("utf-8"), hashlib.sha256).digest()
    return f"SharedKey {acct.name}:{base64.b64encode(digest).decode()}"


def _storage_request(acct: Account, ep: Endpoint, method: str, path: str, query: dict[str, str],
                     headers: dict[str, str], body: bytes, *, idempotent: bool) -> tuple[int, Any, bytes]:
    """A queue/blob request, signed with Shared Key (the Blob/Queue string-to-sign)."""
    full = quote(ep.path + path)  # signed as sent, percent-encoded
    headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": STORAGE_VERSION, **headers}
    if body:
        headers["Content-Length"] = str(len(body))
    canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted((k.lower(), v) for k, v in headers.items()
                                                            if k.lower().startswith("x-ms-")))
    canon_query = "".join(f"\n{k.lower()}:{v}" for k, v in sorted(query.items()))
    h = {k.lower(): v for k, v in headers.items()}
    to_sign = "\n".join([
        method, h.get("content-encoding", ""), h.get("content-language", ""), h.get("content-length", ""),
        h.get("content-md5", ""), h.get("content-type", ""), "", h.get("if-modified-since", ""),
        h.get("if-match", ""), h.get("if-none-match", ""), h.get("if-unmodified-since", ""), h.get("range", ""),
    ]) + "\n" + canon_headers + f"/{acct.name}{full}" + canon_query
    headers["Authorization"] = _sign(acct, to_sign)
    url = full + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()) if query else "")
    return _send(ep, method, url, headers, body, idempotent=idempotent)


def _table_request(acct: Account, method: str, path: str, body: bytes, extra: dict[str, str] | None = None,
                   *, idempotent: bool = False) -> tuple[int, Any, bytes]:
    """A Table service request, signed with Shared Key (the Table string-to-sign)."""
    ep = acct.table
    assert ep is not None
    full = quote(ep.path + path)
    date = formatdate(usegmt=True)
    content_type = "application/json;odata=nometadata"
    headers = {
        "x-ms-date": date, "x-ms-version": TABLE_VERSION, "DataServiceVersion": "3.0",
        "MaxDataServiceVersion": "3.0;NetFx", "Accept": "application/json;odata=minimalmetadata",
        "Content-Type": content_type, "Content-Length": str(len(body)), **(extra or {}),
    }
    headers["Authorization"] = _sign(acct, f"{method}\n\n{content_type}\n{date}\n/{acct.name}{full}")
    return _send(ep, method, full, headers, body, idempotent=idempotent)


def _error(status: int, resp: Any) -> StorageHTTPError:
    return StorageHTTPError(status, resp.getheader("x-ms-error-code") or "")


# -- the three writes ----------------------------------------------------------------------------------

def _entity_json(entity: dict[str, Any]) -> bytes:
    """Typed as the azure-data-tables SDK types them, so its readers see the same values."""
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, bool) or isinstance(value, str):
            out[name] = value
        elif isinstance(value, int):
            if -(2**31) <= value < 2**31:
                out[name] = value
            else:
                out[name], out[name + "@odata.type"] = str(value), "Edm.Int64"
        elif isinstance(value, float):
            out[name], out[name + "@odata.type"] = value, "Edm.Double"
        else:
            raise TypeError(f"unsupported entity property type {type(value).__name__} for {name}")
    return json.dumps(out, ensure_ascii=False, allow_nan=False).encode("utf-8")


def insert_entity(storage: str, table: str, entity: dict[str, Any]) -> str | None:
    """Insert `entity` only if absent: its ETag, or None when the row exists. Creates a missing table."""
    acct = account(storage)
    if acct is None:
        return _sdk_insert(storage, table, entity)
    body = _entity_json(entity)
    for _ in range(2):
        status, resp, _data = _table_request(acct, "POST", "/" + table, body, {"Prefer": "return-no-content"})
        if status in (201, 204):
            return resp.getheader("ETag")
        if status == 409 and (resp.getheader("x-ms-error-code") or "EntityAlreadyExists") == "EntityAlreadyExists":
            return None
        if status == 404 and resp.getheader("x-ms-error-code") in _MISSING:
            _create_table(acct, table)
            continue
        raise _error(status, resp)
    raise StorageHTTPError(404, "TableNotFound")


def _create_table(acct: Account, table: str) -> None:
    status, resp, _ = _table_request(acct, "POST", "/Tables", json.dumps({"TableName": table}).encode(),
                                     {"Prefer": "return-no-content"}, idempotent=True)
    if status not in (201, 204, 409):
        raise _error(status, resp)


def _unescape(text: str) -> str:
    return re.sub(r"&(?:lt|gt|quot|apos|amp);", lambda m: _XML_ESCAPES[m.group(0)], text)


def put_message(storage: str, queue: str, content: bytes, visibility: int | None = None) -> tuple[str, str]:
    """Queue `content` base64-encoded (as host.json tells the trigger), never expiring: (message id, pop receipt)."""
    acct = account(storage)
    if acct is None:
        return _sdk_message(storage, queue, content, visibility)
    assert acct.queue is not None
    text = base64.b64encode(content).decode("ascii")  # base64 needs no XML escaping
    body = f"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>{text}</MessageText></QueueMessage>"
    query = {"messagettl": "-1"}
    if visibility:
        query["visibilitytimeout"] = str(visibility)
    for _ in range(2):
        status, resp, data = _storage_request(acct, acct.queue, "POST", f"/{queue}/messages", query,
                                              {"Content-Type": "application/xml"}, body.encode("utf-8"),
                                              idempotent=True)
        if status == 201:
            answer = data.decode("utf-8")
            found = [re.search(f"<{tag}>(.*?)</{tag}>", answer) for tag in ("MessageId", "PopReceipt")]
            if not all(found):
                raise StorageHTTPError(status, "unexpected answer to Put Message")
            return _unescape(found[0].group(1)), _unescape(found[1].group(1))  # type: ignore[union-attr]
        if status == 404 and resp.getheader("x-ms-error-code") in _MISSING:
            status, resp, _ = _storage_request(acct, acct.queue, "PUT", f"/{queue}", {}, {}, b"", idempotent=True)
            if status not in (201, 204, 409):
                raise _error(status, resp)
            continue
        raise _error(status, resp)
    raise StorageHTTPError(404, "QueueNotFound")


def put_blob(storage: str, container: str, name: str, data: bytes) -> None:
    """Write a block blob in one request (payloads are ≤ 20 MB). Creates a missing container."""
    acct = account(storage)
    if acct is None:
        _sdk_blob(storage, container, name, data)
        return
    assert acct.blob is not None
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/json"}
    for _ in range(2):
        status, resp, _ = _storage_request(acct, acct.blob, "PUT", f"/{container}/{name}", {}, headers, data,
                                           idempotent=True)
        if status == 201:
            return
        if status == 404 and resp.getheader("x-ms-error-code") in _MISSING:
            status, resp, _ = _storage_request(acct, acct.blob, "PUT", f"/{container}", {"restype": "container"},
                                               {}, b"", idempotent=True)
            if status not in (201, 409):
                raise _error(status, resp)
            continue
        raise _error(status, resp)
    raise StorageHTTPError(404, "ContainerNotFound")


# -- connection strings without a shared key: the SDK clients ------------------------------------------

def _sdk_insert(storage: str, table: str, entity: dict[str, Any]) -> str | None:
    from azure.core.exceptions import ResourceExistsError

    from shared import store

    try:
        return store.table(storage, table).create_entity(entity).get("etag")
    except ResourceExistsError:
        return None


def _sdk_message(storage: str, queue: str, content: bytes, visibility: int | None) -> tuple[str, str]:
    from shared import store

    msg = store.queue(storage, queue).send_message(content, visibility_timeout=visibility or None, time_to_live=-1)
    return msg.id, msg.pop_receipt


def _sdk_blob(storage: str, container: str, name: str, data: bytes) -> None:
    from shared import store

    store.container(storage, container).upload_blob(name, data, overwrite=True)
