"""Risk model benchmark: CPU latency per message one at a time, and batched throughput.

Run with `.venv/bin/python tests/benchmarks/bench_risk.py [--model DIR]` after `tsunagi risk train`.
Targets: p95 under 30 ms for a short message alone; at least 300 messages/s in batches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from moderation.classifier import RiskClassifier  # noqa: E402
from moderation.dataset import RISK_DIR, read_jsonl  # noqa: E402
from moderation.defaults import default_model_dir  # noqa: E402

SHORT = ["死にたい", "テスト死んだw", "今から飛び降りる", "おはよう", "消えたい…", "推しが尊すぎて死ねる", "親に殴られた", "話聞いてほしい"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_model_dir())
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    classifier = RiskClassifier(args.model, batch_size=args.batch_size)
    texts = [e["text"] for e in read_jsonl(RISK_DIR / "heldout.jsonl")]
    classifier.predict(SHORT + texts[:64])  # warm-up

    latencies = []
    for i in range(args.singles):
        started = time.perf_counter()
        classifier.predict([SHORT[i % len(SHORT)]])
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]

    started = time.perf_counter()
    classifier.predict(texts)
    rate = len(texts) / (time.perf_counter() - started)

    print(f"model: {args.model}")
    print(f"one short message at a time ({args.singles}): p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 < 30 ms) {'ok' if p95 < 30 else 'MISSED'}")
    mean_chars = statistics.mean(len(t) for t in texts)
    print(f"batched ({len(texts)} held-out messages, {mean_chars:.0f} chars on average, batches of {args.batch_size}): "
          f"{rate:.0f} messages/s (target >= 300) {'ok' if rate >= 300 else 'MISSED'}")


if __name__ == "__main__":
    main()
