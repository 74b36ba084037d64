"""Where the numbers come from: version, scenario, seeds, rule-file hashes (from the run
manifests), and the assumption-labelled rule values each section depends on (read from the
run's own rule files, and only when their hashes still match the manifest)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .labels import Labels
from .source import Source


def provenance(src: Source) -> dict[str, Any]:
    """One dict for the provenance section."""
    first = src.run_manifests[src.baseline][0]
    scen = first.get("scenario") or {}
    files: dict[str, dict[str, str]] = {}  # file -> {arm or 'all arms': hash}
    for arm in src.arms:
        for m in src.run_manifests[arm]:
            for name, h in (m.get("rule_files") or {}).items():
                files.setdefault(name, {})[arm] = h
    rule_files = []
    for name in sorted(files):
        hashes = set(files[name].values())
        arms = sorted(files[name]) if len(files[name]) < len(src.arms) else ["all"]
        rule_files.append({"file": name, "sha256": ", ".join(sorted(hashes)),
                           "arms": ", ".join(arms)})
    return {
        "version": src.manifest.get("dcsim_version") or first.get("dcsim_version", "unknown"),
        "scenario": scen.get("name") if isinstance(scen, dict) else str(scen),
        "scenario_name": src.manifest.get("scenario") if src.kind != "run" else scen.get("name"),
        "period": f"{scen.get('start', '?')} to {scen.get('end', '?')}",
        "scale": src.scale, "seeds": src.seeds, "kind": src.kind,
        "persons": sorted({m.get("persons_simulated") for ms in src.run_manifests.values()
                           for m in ms if m.get("persons_simulated") is not None}),
        "rules_hash": sorted({m.get("rules_hash", "") for ms in src.run_manifests.values()
                              for m in ms}),
        "rule_files": rule_files,
        "tables": src.manifest.get("tables", {}),
        "folder": src.folder.name,
        "arms": [{"arm": a, "description": src.arm_descriptions.get(a, ""),
                  "source": src.arm_sources.get(a, ""), "runs": len(src.run_manifests[a])}
                 for a in src.arms],
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rule_assumptions(src: Source, labels: Labels) -> dict[str, Any]:
    """{section: [rule rows]} of the assumption-labelled values in force in the baseline's
    national-rules area, and a note saying whether the rule files could be checked."""
    from ..rules import listing
    from ..scenario import Scenario

    first = src.run_manifests[src.baseline][0]
    try:
        sc = Scenario.model_validate_json(json.dumps(first["scenario"]))
        if first.get("scenario_file"):
            sc = sc.model_copy(update={"source": Path(first["scenario_file"])})
        stacks = dict(zip([j.id for j in sc.jurisdictions], sc.stacks(), strict=True))
        paths = {p.name: p for p in sc.rule_files()}
    except Exception as e:  # noqa: BLE001 - any failure: the section says why, no listing
        return {"note": f"the run's rule files could not be read here ({type(e).__name__})",
                "by_section": {}}
    changed = [n for n, h in (first.get("rule_files") or {}).items()
               if n not in paths or _sha256(paths[n]) != h]
    if changed:
        return {"note": "the rule files changed since the run (" + ", ".join(changed)
                + "): values not listed", "by_section": {}}
    area = sc.jurisdictions[0].id
    rows = [r for r in listing({area: stacks[area]}) if r["is_assumption"]]
    by_section: dict[str, list[dict[str, Any]]] = {}
    for sec, spec in labels.sections.items():
        prefixes = spec.get("rules") or []
        by_section[sec] = [
            {"name": r["name"], "value": r["value"], "unit": r["unit"],
             "window": f"{r['from']} to {r['to'] or 'end'}", "reference": r["reference"],
             "where": Path(r["source"]).name}
            for r in rows if any(r["name"].startswith(p) for p in prefixes)]
    return {"note": f"rule files checked against the run's manifest; values in force in "
                    f"{labels.jurisdiction(area)}", "by_section": by_section}
