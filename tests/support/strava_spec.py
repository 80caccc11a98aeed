"""Strava's official Swagger 2.0 spec of API v3, as a request validator for the fake Strava.

`../shared/data/strava/strava_swagger.json` (see ../shared/data/README.md; `RK_SHARED_DATA` moves the folder)
is Strava's own description of every endpoint's parameters: where each goes (`path`, `query`, `formData`,
`body`), its type (`integer`, `number`, `string`, `boolean`, `file`, `array`), enums and required flags.
`load_spec()` reads it once per process and answers None when the file is absent (a user's clone): then the
fake validates nothing. `StravaSpec.check(...)` answers the request's violations, each naming the method,
the spec's path, the parameter and what is wrong in the spec's own words; the fake answers such a request
400 and records it (tests/support/fixtures_strava.py fails the test at teardown).

Only `/api/v3` requests are checked: the spec does not describe `/oauth/*`.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BASE = "/api/v3"


def spec_path() -> Path:
    data = Path(os.environ.get("RK_SHARED_DATA") or ROOT.parent / "shared" / "data")
    return data / "strava" / "strava_swagger.json"


# Documented fields the spec lacks: (method, spec path) -> parameters, in the spec's own form. Keep each
# commented with where Strava documents it; anything else outside the spec is a violation.
ALLOWED_EXTRA: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("POST", "/uploads"): [
        # developers.strava.com/docs/uploads: "sport_type" sets the activity's sport (FACTS.md, Uploads);
        # the Swagger spec lists only name, description, trainer, commute, data_type, external_id and file.
        {"name": "sport_type", "in": "formData", "type": "string",
         "description": "Sport type of the resulting activity (uploads documentation page)."},
        # Its deprecated form, on the same page.
        {"name": "activity_type", "in": "formData", "type": "string",
         "description": "Deprecated form of sport_type (uploads documentation page)."},
    ],
}

# `PUT /activities/{id}`'s body is a reference to an external file the copy does not include
# (activity.json#/UpdatableActivity); its fields as developers.strava.com's reference gives them.
UPDATABLE_ACTIVITY: dict[str, dict[str, Any]] = {
    "commute": {"type": "boolean", "description": "Whether this activity is a commute"},
    "trainer": {"type": "boolean", "description": "Whether this activity was recorded on a training machine"},
    "hide_from_home": {"type": "boolean", "description": "Whether this activity is muted"},
    "description": {"type": "string", "description": "The description of the activity"},
    "name": {"type": "string", "description": "The name of the activity"},
    "type": {"type": "string", "description": "Deprecated. Prefer to use sport_type"},
    "sport_type": {"type": "string", "description": "An instance of SportType."},
    "gear_id": {"type": "string", "description": "Identifier for the gear associated with the activity. "
                                                  "'none' clears gear from activity"},
}
EXTERNAL_SCHEMAS = {"https://developers.strava.com/swagger/activity.json#/UpdatableActivity": UPDATABLE_ACTIVITY}


@dataclass(frozen=True)
class Violation:
    method: str
    path: str  # the spec's template, e.g. "/activities/{id}"
    param: str
    problem: str

    def __str__(self) -> str:
        return f"{self.method} {BASE}{self.path}: {self.param}: {self.problem}"


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    params: tuple[dict[str, Any], ...]
    consumes: tuple[str, ...]


@dataclass
class _Request:
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    files: set[str]
    json_body: Any
    has_json: bool


class StravaSpec:
    def __init__(self, doc: dict[str, Any]) -> None:
        shared = doc.get("parameters") or {}
        routes: list[_Route] = []
        for template, ops in (doc.get("paths") or {}).items():
            common = ops.get("parameters") or []
            for method, op in ops.items():
                if method == "parameters" or not isinstance(op, dict):
                    continue
                params = [_resolve(p, shared) for p in [*common, *(op.get("parameters") or [])]]
                params += ALLOWED_EXTRA.get((method.upper(), template), [])
                regex = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
                routes.append(_Route(method.upper(), template, re.compile(regex), tuple(params),
                                     tuple(op.get("consumes") or doc.get("consumes") or ())))
        # Literal segments win over placeholders (/athlete/activities before /athletes/{id}/...).
        self.routes = sorted(routes, key=lambda r: r.template.count("{"))

    def route(self, method: str, path: str) -> _Route | None:
        sub = path.removeprefix(BASE)
        return next((r for r in self.routes if r.method == method and r.pattern.match(sub)), None)

    def check(self, method: str, path: str, query: dict[str, list[str]], content_type: str,
              body: bytes) -> list[Violation]:
        """The request's violations of the spec; [] when it is inside it (or not an /api/v3 request)."""
        if not path.startswith(BASE + "/"):
            return []
        sub = path.removeprefix(BASE)
        if not any(r.pattern.match(sub) for r in self.routes):
            return [Violation(method, sub, "(path)", "no such path in the spec")]
        route = self.route(method, path)
        if route is None:
            allowed = sorted({r.method for r in self.routes if r.pattern.match(sub)})
            return [Violation(method, sub, "(method)", f"method not in the spec; it has {', '.join(allowed)}")]
        match = route.pattern.match(sub)
        assert match is not None
        try:
            request = _parse(query, content_type, body)
        except ValueError as exc:
            return [Violation(method, route.template, "(body)", str(exc))]
        return list(_violations(route, match.groupdict(), request))


def _resolve(param: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    ref = param.get("$ref")
    if ref and ref.startswith("#/parameters/"):
        return {**shared[ref.removeprefix("#/parameters/")], **{k: v for k, v in param.items() if k != "$ref"}}
    return param


def _parse(query: dict[str, list[str]], content_type: str, body: bytes) -> _Request:
    ctype = content_type.lower()
    form: dict[str, list[str]] = {}
    files: set[str] = set()
    json_body: Any = None
    has_json = False
    if ctype.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        if not message.is_multipart():
            raise ValueError("not a multipart body")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            if part.get_filename() is not None:
                files.add(str(name))
            else:
                payload = part.get_payload(decode=True) or b""
                form.setdefault(str(name), []).append(payload.decode("utf-8", "replace"))
    elif ctype.startswith("application/json"):
        try:
            json_body = json.loads(body or b"null")
        except ValueError as exc:
            raise ValueError("the body is not JSON") from exc
        has_json = True
    elif body:
        from urllib.parse import parse_qs

        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return _Request(query, form, files, json_body, has_json)


def _type_problem(spec: dict[str, Any], value: str) -> str | None:
    kind = spec.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return f"{value!r} is not an integer"
    if kind == "number":
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a number"
    if kind == "boolean" and value not in ("true", "false"):
        return f"{value!r} is not a boolean (true or false)"
    if kind == "string" and spec.get("format") == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{value!r} is not an ISO 8601 date-time"
    if "enum" in spec and value not in [str(v) for v in spec["enum"]]:
        return f"{value!r} is not one of {', '.join(map(str, spec['enum']))}"
    return None


def _json_problem(spec: dict[str, Any], value: Any) -> str | None:
    kind = spec.get("type")
    ok = {"boolean": isinstance(value, bool), "string": isinstance(value, str),
          "integer": isinstance(value, int) and not isinstance(value, bool),
          "number": isinstance(value, int | float) and not isinstance(value, bool)}.get(kind, True)
    return None if ok else f"{value!r} is not a JSON {kind}"


def _words(spec: dict[str, Any]) -> str:
    where = spec.get("in", "?")
    text = (spec.get("description") or "").strip()
    return f"(spec: {spec.get('type', 'object')} in {where}" + (f', "{text}")' if text else ")")


def _violations(route: _Route, path_values: dict[str, str], req: _Request) -> Any:
    def bad(param: str, problem: str) -> Violation:
        return Violation(route.method, route.template, param, problem)

    by_location: dict[str, dict[str, dict[str, Any]]] = {}
    for p in route.params:
        by_location.setdefault(p.get("in", ""), {})[p["name"]] = p
    declared = {p["name"]: p for p in route.params}

    for name, value in path_values.items():
        spec = by_location.get("path", {}).get(name)
        if spec and (problem := _type_problem(spec, value)):
            yield bad(name, f"{problem} {_words(spec)}")

    sent: dict[str, list[str]] = {"query": list(req.query), "formData": [*req.form, *req.files]}
    for location, names in sent.items():
        for name in names:
            spec = by_location.get(location, {}).get(name)
            if spec is None:
                other = declared.get(name)
                yield bad(name, f"sent in {location}, but the spec has it in {other['in']}" if other
                          else f"sent in {location}, not a parameter of this operation in the spec")
                continue
            if spec.get("type") == "file":
                if name not in req.files:
                    yield bad(name, f"must be a file part {_words(spec)}")
                continue
            if name in req.files:
                yield bad(name, f"sent as a file, the spec says {spec.get('type')} {_words(spec)}")
                continue
            values = (req.query if location == "query" else req.form)[name]
            if spec.get("type") == "array":
                values = [v for value in values for v in value.split(",")]
                spec = {**spec, **(spec.get("items") or {})}
            for value in values:
                if problem := _type_problem(spec, value):
                    yield bad(name, f"{problem} {_words(spec)}")

    body_spec = next(iter(by_location.get("body", {}).values()), None)
    if req.has_json:
        if body_spec is None:
            where = "formData" if by_location.get("formData") else "query"
            yield bad("(body)", f"a JSON body, but the spec takes this operation's parameters in {where}")
            return  # its fields are not where the spec looks for them: "missing" would only repeat that
        else:
            yield from _body_violations(route, body_spec, req.json_body)

    for spec in route.params:
        if not spec.get("required"):
            continue
        name, location = spec["name"], spec.get("in")
        present = (name in path_values if location == "path" else name in req.query if location == "query"
                   else (name in req.form or name in req.files) if location == "formData"
                   else req.has_json if location == "body" else True)
        if not present:
            yield bad(name, f"required, missing {_words(spec)}")


def _body_violations(route: _Route, body_spec: dict[str, Any], body: Any) -> Any:
    schema = body_spec.get("schema") or {}
    fields = EXTERNAL_SCHEMAS.get(schema.get("$ref", ""), schema.get("properties"))
    if not isinstance(body, dict):
        yield Violation(route.method, route.template, "(body)", "the body must be a JSON object")
        return
    if fields is None:
        return
    for key, value in body.items():
        spec = fields.get(key)
        if spec is None:
            yield Violation(route.method, route.template, key,
                            f"not a field of the body in the spec (it has {', '.join(sorted(fields))})")
        elif problem := _json_problem(spec, value):
            yield Violation(route.method, route.template, key,
                            f"{problem} (spec: {spec['type']} in body, \"{spec.get('description', '')}\")")


@functools.cache
def load_spec(path: str | None = None) -> StravaSpec | None:
    """The spec, read once per process; None when the file is absent (then nothing is validated)."""
    file = Path(path) if path else spec_path()
    if not file.is_file():
        return None
    return StravaSpec(json.loads(file.read_text(encoding="utf-8")))
