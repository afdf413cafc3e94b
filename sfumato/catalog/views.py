"""A catalog entry as the CLI's --json and the API show it."""

from __future__ import annotations

from dataclasses import asdict

from sfumato.catalog.scan import Entry


def entry_view(entry: Entry, versions: list[Entry], with_path: bool = True) -> dict:
    """``with_path``: the file's location, for the CLI; the API never shows the server's disk."""
    card = entry.card
    row = {
        "name": entry.name,
        "kind": entry.kind,
        "family": entry.family,
        "category": card.category,
        "lineage": entry.lineage,
        "version": entry.version,
        "versions": [e.version for e in versions if e.version],
        "description": card.description.strip(),
        "defaults": defaults_of(entry),
        "trigger_words": card.trigger_words,
        "keywords": dict(list(card.keywords.items())[:30]),
        "source_url": card.source_url,
        "license": card.license,
        "deprecated": card.deprecated,
        "hidden": card.hidden,
        "card_inferred": card.inferred,
        "bundled": entry.bundled,
        "broken": entry.broken,
    }
    if with_path:
        row["path"] = str(entry.path)
    if entry.kind == "checkpoint" and entry.source:
        row["inpainting"] = entry.source.inpainting
    return row


def defaults_of(entry: Entry) -> dict:
    if entry.source is None:
        return dict(entry.card.defaults)
    return asdict(entry.source.effective_defaults)
