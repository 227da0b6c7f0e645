"""Fuzzing of the serving surfaces (``llmfn serve``'s app, the ``llmfn dev`` gateway), shared by the test
suite (a bounded budget) and ``bench/fuzz.py`` (10k+ cases per surface).

Two generators: schemathesis from each surface's OpenAPI document (positive and negative cases of every
operation), and hypothesis request bodies aimed at what broke before (huge and wrongly typed integers,
lone surrogates, deep nesting, ``NaN``, bytes that are not UTF-8, wrong shapes). Every answer is checked:
no 5xx, and every error (a 4xx body, an error event in a stream) in OpenAI's format with a string code.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
ERROR_KEYS = {"message", "type", "param", "code"}


@dataclass
class Tally:
    """What a fuzz run saw: cases sent, answers by status class, and every problem found."""

    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    """The first 50 problems, for the report."""
    bad_errors: int = 0
    """4xx bodies or error events not in OpenAI's format."""
    transport_errors: int = 0
    classes: dict[str, list[int]] = field(default_factory=dict)
    """Wire cases per class of hostile request (``WireRequest.classes``): [tried, with a finding]."""
    findings: Counter[str] = field(default_factory=Counter)
    """Wire findings by kind (:func:`wire_problem`'s, ``5xx``, non-OpenAI error body, transport error)."""

    def record(self, label: str, status: int, content_type: str, content: bytes) -> None:
        self.cases += 1
        self.statuses[f"{status // 100}xx"] += 1
        problem = answer_problem(status, content_type, content)
        if problem is None:
            return
        self.bad_errors += status < 500
        if len(self.problems) < 50:
            self.problems.append(f"{label}: {problem}")

    def transport_error(self, label: str, exc: Exception) -> None:
        """The connection failed: the server died, hung or dropped the connection."""
        self.cases += 1
        self.transport_errors += 1
        if len(self.problems) < 50:
            self.problems.append(f"{label}: {type(exc).__name__}: {exc}")


def openai_error_problem(payload: Any) -> str | None:
    """What is wrong with an error body (None when it is OpenAI's format with a string or null code)."""
    if not isinstance(payload, dict) or set(payload) != {"error"}:
        return f"not an OpenAI error body: {str(payload)[:200]}"
    error = payload["error"]
    if not isinstance(error, dict) or set(error) != ERROR_KEYS:
        return f"error object has keys {sorted(error) if isinstance(error, dict) else error!r}"
    if not isinstance(error["message"], str) or not error["message"]:
        return "error message is empty"
    if not isinstance(error["type"], str) or not isinstance(error["code"], str | None):
        return f"error type / code not strings: {error['type']!r}, {error['code']!r}"
    return None


def answer_problem(status: int, content_type: str, content: bytes) -> str | None:
    """What is wrong with one answer: a 5xx, an error that is not OpenAI's format, a bad stream event."""
    if status >= 500:
        return f"{status}: {content[:300]!r}"
    if status >= 400:
        try:
            return openai_error_problem(json.loads(content))
        except ValueError:
            return f"{status} with a body that is not JSON: {content[:200]!r}"
    if content_type.startswith("text/event-stream"):
        for line in content.decode("utf-8", "replace").splitlines():
            if line.startswith("data: {") and '"error"' in line:
                return "error event mid-stream: " + (openai_error_problem(json.loads(line[6:])) or line[:300])
    return None


# ---- schemathesis: the surfaces' OpenAPI documents ---------------------------------------------------
def openapi_cases(document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Positive and negative schemathesis cases of every operation of ``document``."""
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_dict(document)
    return st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))


def send_openapi_case(
    session: requests.Session, base_url: str, case: Any, headers: dict[str, str], tally: Tally
) -> None:
    label = f"{case.method} {case.path}"
    try:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
    except requests.RequestException as exc:
        tally.transport_error(label, exc)
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    tally.record(label, response.status_code, content_type, response.content)


# ---- hypothesis: hostile request bodies ---------------------------------------------------------------
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
"""Text with every code point, lone surrogates included (JSON carries them as ``\\ud800`` escapes)."""
edge_ints = st.sampled_from(
    [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30)]
)
numbers = st.one_of(st.integers(), edge_ints, st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, any_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=8,
)
content = st.one_of(
    any_text,
    st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": any_text}), max_size=2),
    json_values,
)
message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["system", "user", "assistant"]), any_text), "content": content}
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_tokens": st.one_of(st.integers(1, 4), numbers, json_values),
    "max_completion_tokens": st.one_of(st.integers(1, 4), json_values),
    "temperature": st.one_of(st.floats(0, 2), numbers, json_values),
    "top_p": st.one_of(st.floats(0.01, 1), json_values),
    "n": st.one_of(st.just(1), json_values),
    "stream": st.one_of(st.booleans(), json_values),
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans()}), json_values),
    "stop": st.one_of(any_text, st.lists(any_text, max_size=3), json_values),
    "seed": st.one_of(numbers, json_values),
    "user": st.one_of(any_text, json_values),
    "echo": json_values,
}


def chat_bodies(model: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "model": st.one_of(st.just(model), any_text, json_values),
            "messages": st.one_of(st.lists(message, min_size=1, max_size=3), json_values),
        },
        optional=OPTIONAL_FIELDS,
    )


def completion_bodies(model: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "model": st.one_of(st.just(model), any_text),
            "prompt": st.one_of(any_text, st.lists(any_text, min_size=1, max_size=2), json_values),
        },
        optional=OPTIONAL_FIELDS,
    )


VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_tokens": st.integers(1, 4),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "stop": st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), max_size=2)),
    "seed": st.integers(-(2**63), 2**64 - 1),
    "user": st.text(max_size=10),
}


def plausible_bodies(model: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Well-formed requests with text of any (encodable) code point: they reach the engine."""
    text = st.text(max_size=60)
    chat = st.fixed_dictionaries(
        {
            "model": st.just(model),
            "messages": st.lists(
                st.fixed_dictionaries({"role": st.just("user"), "content": text}), min_size=1, max_size=2
            ),
        },
        optional=VALID_FIELDS,
    )
    completion = st.fixed_dictionaries({"model": st.just(model), "prompt": text}, optional=VALID_FIELDS)
    return st.one_of(chat.map(lambda body: (CHAT, body)), completion.map(lambda body: (COMPLETIONS, body)))


def _nested(depth: int) -> bytes:
    return b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.integers(50, 20_000).map(_nested),
    st.sampled_from(
        [b'{"temperature": NaN}', b'{"seed": Infinity}', b"", b"null", b"[]", b'"x"', b'{"model": "\\ud800"}']
    ),
)


def requests_to(model: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """(route, raw body) pairs: JSON bodies of both routes with hostile fields, and raw hostile bytes."""
    encoded = st.one_of(
        chat_bodies(model).map(lambda body: (CHAT, json.dumps(body).encode())),
        completion_bodies(model).map(lambda body: (COMPLETIONS, json.dumps(body).encode())),
    )
    plausible = plausible_bodies(model).map(lambda pair: (pair[0], json.dumps(pair[1]).encode()))
    return st.one_of(encoded, plausible, st.tuples(st.sampled_from([CHAT, COMPLETIONS]), raw_bodies))


def send_body(client: httpx.Client, path: str, body: bytes, tally: Tally) -> None:
    headers = {"content-type": "application/json"}
    try:
        response = client.post(path, content=body, headers=headers)
    except httpx.TransportError as exc:
        tally.transport_error(f"POST {path}", exc)
        return
    tally.record(
        f"POST {path} {body[:120]!r}",
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
    )


# ---- running a budget --------------------------------------------------------------------------------
def run_openapi(
    base_url: str, document: dict[str, Any], api_key: str | None, cases: int, seeded: bool
) -> Tally:
    """Send ``cases`` schemathesis cases of ``document`` to ``base_url`` (with the key when given)."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    session = requests.Session()

    @settings(max_examples=cases, derandomize=seeded, **_settings())
    @given(case=openapi_cases(document))
    def run(case: Any) -> None:
        send_openapi_case(session, base_url, case, headers, tally)

    run()
    session.close()
    return tally


def run_bodies(base_url: str, model: str, api_key: str | None, cases: int, seeded: bool) -> Tally:
    """Send ``cases`` hypothesis request bodies to ``base_url``'s generation routes."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:

        @settings(max_examples=cases, derandomize=seeded, **_settings())
        @given(request=requests_to(model))
        def run(request: tuple[str, bytes]) -> None:
            send_body(client, request[0], request[1], tally)

        run()
    return tally


def _settings() -> dict[str, Any]:
    """No example database, no deadline, no shrinking: a fuzz run counts every answer, it does not stop."""
    return {
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "phases": [Phase.explicit, Phase.generate],
    }


# ---- issue 22, item 12: every field honoured or refused, never accepted and ignored -----------------
_tool = st.fixed_dictionaries(
    {
        "type": st.just("function"),
        "function": st.fixed_dictionaries({"name": st.text("abc_", min_size=1, max_size=8)}),
    }
)
_penalty_out = st.one_of(st.floats(2.0001, 1e6), st.floats(-1e6, -2.0001))
FIELD_CASES: dict[str, tuple[str, st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    # field: (route, values the server cannot honour: a 4xx naming the field, values it honours: 200)
    "logprobs": (CHAT, st.just(True), st.sampled_from([False, None])),
    "top_logprobs": (CHAT, st.integers(1, 20), st.sampled_from([0, None])),
    "tools": (CHAT, st.lists(_tool, min_size=1, max_size=2), st.sampled_from([None, []])),
    "tool_choice": (
        CHAT,
        st.one_of(st.just("required"), _tool.map(lambda t: {"type": "function", "function": t["function"]})),
        st.sampled_from(["none", "auto", None]),
    ),
    "response_format": (
        CHAT,
        st.sampled_from(
            [
                {"type": "json_object"},
                {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "strict": True, "schema": {"type": "object"}},
                },
            ]
        ),
        st.sampled_from([{"type": "text"}, None]),
    ),
    "logit_bias": (
        CHAT,
        st.dictionaries(st.integers(0, 300).map(str), st.floats(-100, 100), min_size=1, max_size=3),
        st.sampled_from([{}, None]),
    ),
    "presence_penalty": (CHAT, _penalty_out, st.floats(-2, 2)),
    "frequency_penalty": (COMPLETIONS, _penalty_out, st.floats(-2, 2)),
    "suffix": (COMPLETIONS, st.text(min_size=1, max_size=8), st.sampled_from(["", None])),
    "best_of": (COMPLETIONS, st.integers(2, 5), st.sampled_from([1, None])),
    "echo": (COMPLETIONS, st.nothing(), st.booleans()),
    "top_k": (CHAT, st.integers(1, 100), st.sampled_from([-1, 0, None])),
    "repetition_penalty": (COMPLETIONS, st.floats(1.01, 2), st.sampled_from([1, 1.0, None])),
    "min_p": (CHAT, st.floats(0.01, 1), st.sampled_from([0, None])),
}
FIELD_CASES["completion logprobs"] = (COMPLETIONS, st.integers(0, 5), st.just(None))


@st.composite
def field_cases(draw: st.DrawFn, model: str) -> tuple[str, dict[str, Any], str, bool]:
    """(route, body, field, refused?): a valid request plus one field of :data:`FIELD_CASES` with a value
    the server must refuse (a 4xx naming the field) or honour (a 200)."""
    key = draw(st.sampled_from(sorted(FIELD_CASES)))
    route, bad, good = FIELD_CASES[key]
    field = key.split()[-1]
    refused = draw(st.booleans()) and not bad.is_empty
    value = draw(bad if refused else good)
    base: dict[str, Any] = {"model": model, "max_tokens": 1}
    base |= {"messages": [{"role": "user", "content": "hi"}]} if route == CHAT else {"prompt": "hi"}
    return route, {**base, field: value}, field, refused


def run_field_honesty(base_url: str, model: str, api_key: str | None, cases: int, seeded: bool) -> Tally:
    """Send ``cases`` :func:`field_cases`; a problem is an unsupported value answered 200 (as if
    honoured), a supported one refused, or a refusal that does not name the field."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:

        @settings(max_examples=cases, derandomize=seeded, **_settings())
        @given(case=field_cases(model))
        def run(case: tuple[str, dict[str, Any], str, bool]) -> None:
            route, body, field, refused = case
            label = f"POST {route} {field}={body[field]!r}"
            try:
                response = client.post(route, json=body)
            except httpx.TransportError as exc:
                tally.transport_error(label, exc)
                return
            tally.record(
                label, response.status_code, response.headers.get("content-type", ""), response.content
            )
            try:
                param = response.json()["error"]["param"] if response.status_code >= 400 else None
            except (ValueError, KeyError, TypeError):  # not OpenAI's error format: recorded above
                param = None
            if refused and response.status_code < 400:
                tally.problems.append(f"{label}: answered {response.status_code} as if honoured")
            elif not refused and response.status_code >= 400:
                tally.problems.append(f"{label}: refused a value it honours: {response.text[:200]}")
            elif refused and not str(param).startswith(field):
                tally.problems.append(f"{label}: the refusal names {param!r}, not {field!r}")

        run()
    return tally


# ---- issue 22, item 13: control-token text inside chat messages --------------------------------------
def injected_messages(specials: list[str]) -> st.SearchStrategy[list[dict[str, str]]]:
    """1-3 chat messages whose content mixes text with the tokenizer's added-token strings (``specials``)."""
    piece = st.one_of(st.sampled_from(specials), st.text(max_size=12))
    content = st.lists(piece, max_size=6).map("".join)
    role = st.sampled_from(["system", "user", "assistant"])
    return st.lists(st.fixed_dictionaries({"role": role, "content": content}), min_size=1, max_size=3)


# ---- the HTTP layer: paths, methods, header fields, keys (issue 22) -----------------------------------
ROUTES = (CHAT, COMPLETIONS, "/v1/models", "/healthz", "/metrics")
"""Routes both surfaces serve (``/readyz`` is serve's, ``/_llmfn/status`` the gateway's)."""
TRAVERSALS = (
    "/v1/%2e%2e",
    "/v1/%2E%2E",
    "/v1/.%2e",
    "/v1/%2e.",
    "/v1/..",
    "/v1/chat/%2e%2e/%2e%2e",
    "/v1/x/../..",
)
INTERNAL = ("/metrics", "/readyz", "/healthz", "/_llmfn/status", "/v1/models")


def _encode(ch: int) -> str:
    return f"%{ch:02X}"


hostile_paths = st.one_of(
    # a percent-encoded control character after (or inside) a route: httpx refuses to build it upstream
    st.builds(
        lambda route, ch, at_end: (
            route + _encode(ch) if at_end else route.replace("/c", "/" + _encode(ch) + "c", 1)
        ),
        st.sampled_from([CHAT, COMPLETIONS, "/v1/models"]),
        st.sampled_from([*range(0x20), 0x7F]),
        st.booleans(),
    ),
    # dot segments, percent-encoded or not, aimed at the worker's internal endpoints
    st.builds(lambda prefix, target: prefix + target, st.sampled_from(TRAVERSALS), st.sampled_from(INTERNAL)),
    # near misses of a route: trailing or doubled slashes, parameters, case
    st.builds(
        lambda route, form: form.format(route=route, inner=route[1:]),
        st.sampled_from(ROUTES),
        st.sampled_from(
            ["{route}/", "/{route}", "{route}//", "/v1/{inner}", "{route};x=1", "{route}%2F", "{route}?a=%00"]
        ),
    ),
    st.sampled_from(ROUTES),
)
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
AUTH_FORMS = (
    "key",
    "none",
    "Bearer",
    "Bearer ",
    "Bearer   ",
    "Bearer \t",
    "Basic key",
    "bearer key",
    "Bearer key ",
)
"""How the key is sent: ``key`` correctly; the others carry no usable key (``bearer key`` and ``Bearer key ``
are the right key in a form RFC 6750 allows: case-insensitive scheme, trailing whitespace)."""
KEY_FORMS = {"key", "bearer key", "Bearer key "}


@dataclass(frozen=True)
class WireRequest:
    """One request as bytes on the wire: ``extra`` header fields of ``extra_bytes`` value bytes each,
    plus one field of ``big`` bytes and one with ``odd`` (non-ASCII, ``obs-text``) bytes."""

    method: str
    path: str
    auth: str
    extra: int
    big: int
    odd: bytes | None
    body: bool

    def headers(self, key: str) -> list[tuple[str, bytes]]:
        fields: list[tuple[str, bytes]] = []
        if self.auth != "none":
            fields.append(("Authorization", self.auth.replace("key", key).encode()))
        if self.body:
            fields.append(("Content-Type", b"application/json"))
        fields += [(f"x-fuzz-{i}", b"v") for i in range(self.extra)]
        if self.big:
            fields.append(("x-fuzz-big", b"b" * self.big))
        if self.odd is not None:
            fields.append(("x-fuzz-odd", self.odd))
        return fields

    def wire_headers(self, key: str) -> list[tuple[str, bytes]]:
        """Every header field sent, ``Host`` and ``Content-Length`` included."""
        fields = [("Host", b"127.0.0.1:65535"), *self.headers(key)]
        if self.sends_length:
            fields.append(("Content-Length", str(len(self.content)).encode()))
        return fields

    @property
    def content(self) -> bytes:
        return b'{"model": "m", "prompt": "hi", "max_tokens": 1}' if self.body else b""

    @property
    def sends_length(self) -> bool:
        return self.body or self.method in ("POST", "PUT", "PATCH")

    def head_bytes(self, key: str) -> int:
        """Request line and header fields, bytes (as the parser counts them)."""
        line = len(f"{self.method} {self.path} HTTP/1.1\r\n")
        return line + sum(len(n) + len(v) + 4 for n, v in self.wire_headers(key))

    def classes(self, key: str) -> list[str]:
        """The classes of hostile request this one belongs to (issue 22's items)."""
        from urllib.parse import unquote

        path = unquote(self.path.split("?")[0])
        found = []
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
            found.append("control character in the path (5)")
        elif ".." in path:
            found.append("dot segments to internal endpoints (4)")
        elif path not in CANONICAL:
            found.append("near-miss route: slashes, ';', '%2F' (15)")
        if self.oversized(key):
            found.append("header flood / oversized head (6, 7)")
        if self.auth not in KEY_FORMS:
            found.append("no usable key: empty or malformed Bearer (1)")
        if self.method == "HEAD":
            found.append("HEAD (15)")
        if self.odd is not None:
            found.append("non-ASCII header bytes (5)")
        return found or ["plain request"]

    def oversized(self, key: str) -> bool:
        """More header bytes or fields than the servers accept (``functions.guards.headers``)."""
        return self.head_bytes(key) > HEAD_LIMIT_BYTES or len(self.wire_headers(key)) > HEADER_COUNT_LIMIT


wire_requests = st.builds(
    WireRequest,
    method=methods,
    path=hostile_paths,
    auth=st.sampled_from(AUTH_FORMS),
    extra=st.one_of(st.just(0), st.integers(1, 120), st.sampled_from([99, 100, 101, 500, 3000])),
    big=st.one_of(st.just(0), st.sampled_from([4000, 15_000, 17_000, 100_000])),
    odd=st.one_of(st.none(), st.sampled_from([b"\xe9t\xe9", b"\xff\xfe", b"a\x80"])),
    body=st.booleans(),
)
CANONICAL = {CHAT, COMPLETIONS, "/v1/models", "/healthz", "/metrics", "/readyz", "/_llmfn/status"}
HEAD_LIMIT_BYTES = 16 * 1024
HEADER_COUNT_LIMIT = 100


GET_ROUTES = {"/healthz", "/v1/models", "/metrics", "/readyz", "/_llmfn/status"}


def wire_problem(
    request: WireRequest, key: str, status: int, headers: list[tuple[str, str]]
) -> tuple[str, str] | None:
    """(kind, what) is wrong with the answer to ``request`` beyond :func:`answer_problem`, or None."""
    from urllib.parse import unquote

    path = unquote(request.path.split("?")[0])
    names = [name.lower() for name, _ in headers]
    for repeated in ("date", "server"):
        if names.count(repeated) > 1:
            return "repeated date / server header (15)", f"{names.count(repeated)} '{repeated}' headers"
    if 300 <= status < 400:
        return "redirect to the client's Host (15)", f"{status} redirect to {dict(headers).get('location')!r}"
    if request.oversized(key) and status < 400:
        fields = len(request.wire_headers(key))
        return (
            "head read past the bound (6, 7)",
            f"{status}: {request.head_bytes(key)} bytes in {fields} header fields were read in full",
        )
    if status < 400 and path not in CANONICAL:
        return "a path that is no route answered (4)", f"{status} for a path that is no route ({path!r})"
    if status < 400 and request.auth not in KEY_FORMS and path != "/healthz":
        return "answered without a usable key (1)", f"{status} without a usable key ({request.auth!r})"
    if request.method == "HEAD" and path in GET_ROUTES and status == 405:
        return "HEAD refused on a GET route (15)", "405 for HEAD on a GET route"
    return None


def send_wire(base_url: str, request: WireRequest, key: str, tally: Tally, timeout_s: float = 60) -> None:
    """Send ``request`` on a fresh connection with ``http.client`` (it sends the path as given: no dot
    segment is removed, no escape decoded) and record the answer."""
    label = (
        f"{request.method} {request.path} (auth {request.auth!r}, +{request.extra} fields, big {request.big})"
    )
    classes = request.classes(key)
    for name in classes:
        tally.classes.setdefault(name, [0, 0])[0] += 1
    found_before = tally.bad_errors + tally.transport_errors + tally.statuses["5xx"]
    try:
        _send_wire(base_url, request, key, tally, timeout_s, label)
    finally:
        if tally.bad_errors + tally.transport_errors + tally.statuses["5xx"] > found_before:
            for name in classes:
                tally.classes[name][1] += 1


def _send_wire(
    base_url: str, request: WireRequest, key: str, tally: Tally, timeout_s: float, label: str
) -> None:
    import http.client
    from urllib.parse import urlparse

    host = urlparse(base_url)
    connection = http.client.HTTPConnection(host.hostname or "127.0.0.1", host.port, timeout=timeout_s)
    try:
        connection.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
        for name, value in request.wire_headers(key):
            connection.putheader(name, value)
        connection.endheaders(request.content)
        response = connection.getresponse()
        content = response.read()
    except (OSError, http.client.HTTPException) as exc:
        if request.oversized(key) and isinstance(exc, ConnectionError | http.client.RemoteDisconnected):
            tally.cases += 1  # the parser refused the head and closed the connection as it arrived
            tally.statuses["closed"] += 1
        else:
            tally.transport_error(label, exc)
            tally.findings["transport error"] += 1
        return
    finally:
        connection.close()
    headers = response.getheaders()
    content_type = response.getheader("content-type") or ""
    if response.status == 400 and content_type.startswith("text/plain") and request.oversized(key):
        tally.cases += 1  # uvicorn's h11 protocol refuses an oversized head with a plain-text 400
        tally.statuses["4xx"] += 1
        return
    bad_before = tally.bad_errors
    if request.method == "HEAD" and response.status < 500:  # no body to check
        tally.record(label, response.status, "", b"{}" if response.status < 400 else _HEAD_ERROR)
    else:
        tally.record(label, response.status, content_type, content)
    if response.status >= 500:
        tally.findings["5xx (5)"] += 1
    elif tally.bad_errors > bad_before:
        tally.findings["error body not in OpenAI's format"] += 1
    problem = wire_problem(request, key, response.status, headers)
    if problem is not None:
        tally.findings[problem[0]] += 1
        tally.bad_errors += 1
        if len(tally.problems) < 50:
            tally.problems.append(f"{label}: {problem[1]}")


_HEAD_ERROR = json.dumps({"error": {"message": "HEAD", "type": "t", "param": None, "code": None}}).encode()


def run_wire(base_url: str, api_key: str, cases: int, seeded: bool, timeout_s: float = 60) -> Tally:
    """Send ``cases`` hypothesis :data:`wire_requests` (hostile paths, methods, header floods, keys)."""
    tally = Tally()

    @settings(max_examples=cases, derandomize=seeded, **_settings())
    @given(request=wire_requests)
    def run(request: WireRequest) -> None:
        send_wire(base_url, request, api_key, tally, timeout_s)

    run()
    return tally
