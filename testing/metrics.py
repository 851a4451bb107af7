"""Reading `/metrics` the way Prometheus does."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One parsed page of `/metrics`: `page.value("name_total", label="x")` (absent: 0)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        self.names: set[str] = set()
        for family in text_string_to_metric_families(text):
            self.names.add(family.name)
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """Sum over the series whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, lbl), v in self.samples.items() if n == name and wanted <= lbl)


def scrape(client: Any, **extra: Any) -> Scrape:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return Scrape(response.content.decode())
