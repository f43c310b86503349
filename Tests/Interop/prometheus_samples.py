"""Parses a Prometheus text exposition from stdin with prometheus_client's
parser (an independent peer) and prints every sample as one JSON line:
{"name": ..., "labels": {...}, "value": ...}. Exits non-zero on a parse error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            print(json.dumps({"name": sample.name, "labels": sample.labels, "value": sample.value}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
