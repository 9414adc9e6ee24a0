"""Encryption benchmark: what AES-GCM costs per stored value, on its own (no database, no network).

Run with `make bench` (or `.venv/bin/python tests/benchmarks/bench_crypto.py`). A webhook message
event costs about four of these (its body encrypted on the way in, read back once by the worker,
emptied; the message text written), a counselor's reply two (the chat entry, the outbox row), so
these figures bound what encryption adds to the webhook and console benchmarks, whose own figures
vary more than that on a shared machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.storage.crypto import EncryptedJSON, EncryptedText, KeyRing, generate_key, use_keys  # noqa: E402

MESSAGE = "今日も学校に行けなかった。親には言えないし、誰にも話せなくて、夜になるとずっと考えてしまう。" * 2
EVENT = {
    "type": "message", "mode": "active", "timestamp": 1765000000000, "webhookEventId": "01JEXAMPLE0000000000000000",
    "source": {"type": "user", "userId": "U" + "0" * 32}, "replyToken": "0" * 32, "deliveryContext": {"isRedelivery": False},
    "message": {"id": "1" * 18, "type": "text", "quoteToken": "q" * 40, "text": MESSAGE},
}


def per_call(work, rounds: int = 20_000) -> float:
    """Microseconds per call, the best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            work()
        best = min(best, time.perf_counter() - started)
    return best / rounds * 1e6


def main() -> None:
    use_keys(KeyRing.parse(generate_key("bench")))
    text, payload = EncryptedText(), EncryptedJSON()
    stored_text = text.process_bind_param(MESSAGE, None)
    stored_event = payload.process_bind_param(EVENT, None)
    print(f"encryption benchmark: a {len(MESSAGE)}-character message, a {len(json.dumps(EVENT, ensure_ascii=False))}-character webhook event")
    print(f"  text encrypt   {per_call(lambda: text.process_bind_param(MESSAGE, None)):7.1f} µs   decrypt {per_call(lambda: text.process_result_value(stored_text, None)):7.1f} µs")
    print(f"  event encrypt  {per_call(lambda: payload.process_bind_param(EVENT, None)):7.1f} µs   decrypt {per_call(lambda: payload.process_result_value(stored_event, None)):7.1f} µs")
    print(f"  plain JSON dumps of the event (what the JSON column did before) {per_call(lambda: json.dumps(EVENT)):7.1f} µs")
    print(f"  stored size: text {len(MESSAGE.encode())} → {len(stored_text)} bytes, event {len(json.dumps(EVENT, ensure_ascii=False).encode())} → {len(stored_event)} bytes")


if __name__ == "__main__":
    main()
