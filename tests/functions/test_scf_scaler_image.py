"""With LLMFN_ROLE=scaler the SCF image answers event invocations (POST /event-invoke on port 9000)."""

from __future__ import annotations

from typing import Any

import httpx

from functions.cloud.tencent.entry_web import EVENT_PATH, event_function_app
from tests.functions.helpers import running

TIMER_EVENT = {"Type": "Timer", "TriggerName": "llmfn-scaler", "Time": "2026-11-22T08:00:00Z", "Message": ""}


def test_timer_event_reaches_the_handler_and_its_result_is_returned() -> None:
    seen: list[tuple[dict[str, Any], Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append((event, context))
        return {"desired": 3, "applied": True}

    with running(event_function_app(handler)) as url:
        ok = httpx.post(url + EVENT_PATH, json=TIMER_EVENT, headers={"x-scf-request-id": "req-1"})
        bad = httpx.post(url + EVENT_PATH, content=b"{not json")
        wrong_path = httpx.post(url + "/", json=TIMER_EVENT)
    assert ok.status_code == 200 and ok.json() == {"desired": 3, "applied": True}
    assert seen == [(TIMER_EVENT, {"request_id": "req-1"})]
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
    assert wrong_path.status_code == 404
