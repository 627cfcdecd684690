"""Tables and target checks of an evaluation result (:func:`.protocol.evaluate`)."""

from __future__ import annotations

COLUMNS = ("camera still / moving", "camera still / still", "camera moves / all", "all scenes / all")

# the bundled model's targets (issue 11), in output pixels, headline row (no post-processing)
TARGETS = {
    "camera still / moving": 0.5,
    "camera still / still": 0.98,
    "camera moves / all": 0.72,
    "named_object_share": 0.8,
    "direction_correct": 0.9,
    "still_prompt_drift_p99_px": 1.0,
}


def format_table(result: dict, unit: str = "output") -> str:
    """One row per method; per cell the EPE3D and the within-threshold average."""
    width = 24
    head = f"{'method':22s} " + " ".join(f"{c:>{width}s}" for c in COLUMNS)
    sub = f"{'':22s} " + " ".join(f"{'EPE3D   avg within':>{width}s}" for _ in COLUMNS)
    lines = [f"thresholds in pixels of the {result['units'][unit]} (cells: scene / points)", head, sub, "-" * len(head)]
    for method, cells in result["cells"][unit].items():
        row = []
        for c in COLUMNS:
            v = cells.get(c)
            row.append(f"{v['epe3d']:8.4f}  {v['within_avg']:8.3f}".rjust(width) if v else f"{'-':>{width}s}")
        lines.append(f"{method:22s} " + " ".join(row))
    return "\n".join(lines)


def format_controls(result: dict) -> str:
    c = result.get("controls")
    if not c:
        return "controls: not run"
    lines = ["controls (headline model, output pixels):"]
    share, direction = c.get("named_object_share"), c.get("direction_correct")
    lines.append("  named object: not run" if share is None else
                 f"  named object: share of predicted motion on the named object's pixels {_fmt(share['mean'])} "
                 f"({share['cases']} cases: each object of each still-camera scene with 2+ objects)")
    lines.append("  direction: not run" if direction is None else
                 f"  direction: sign of the named object's mean displacement right in {_fmt(direction['fraction'])} "
                 f"of {direction['cases']} cases (true and swapped left/right, up/down, toward/away)")
    drift = c.get("still_prompt_drift_p99_px")
    if drift is None:
        lines.append("  still prompts: not run")
    for prompt, value in (drift or {}).items():
        lines.append(f"  still prompt {prompt!r}: 99th percentile of each point's largest displacement {_fmt(value, 2)} px")
    return "\n".join(lines)


def format_by_motion(result: dict) -> str:
    """The headline's moving points of still-camera scenes by the movers' motion (:mod:`.by_motion`)."""
    groups = result.get("by_motion")
    if not groups:
        return "by motion: no mover in a still-camera scene"
    lines = ["moving points of still-camera scenes by what the mover does (headline model, output pixels; "
             "gain 1 = the right length the right way; spread: of a rigid translation's speed over its points, "
             "0 = rigid):",
             f"  {'motion':22s} {'movers':>6s} {'model':>7s} {'nothing':>8s} {'gain':>7s} {'length':>7s} {'spread':>7s}"]
    for group, v in groups.items():
        lines.append(f"  {group:22s} {v['movers']:6d} {v['model']:7.3f} {v['nothing moves']:8.3f} "
                     f"{v['gain']:7.3f} {v['length_ratio']:7.3f} {_fmt(v.get('rigid_spread')):>7s}")
    return "\n".join(lines)


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def check_targets(result: dict) -> list[tuple[str, bool, str]]:
    """The bundled model's targets (issue 11) on the headline row, output pixels."""
    cells = result["cells"]["output"]["model"]
    out = []
    for cell in COLUMNS[:3]:
        v = cells.get(cell)
        value = v["within_avg"] if v else float("nan")
        out.append((f"{cell}: within-threshold average >= {TARGETS[cell]}", value >= TARGETS[cell],
                    f"{value:.3f} (nothing moves: {_cell(result, 'nothing moves', cell)})"))
    c = result.get("controls") or {}  # the controls run (all, some or none)
    if "named_object_share" in c:
        share = c["named_object_share"]["mean"]
        out.append((f"named-object share >= {TARGETS['named_object_share']}",
                    share is not None and share >= TARGETS["named_object_share"], _fmt(share)))
    if "direction_correct" in c:
        frac = c["direction_correct"]["fraction"]
        out.append((f"direction sign correct in >= {TARGETS['direction_correct']:.0%} of cases",
                    frac is not None and frac >= TARGETS["direction_correct"], _fmt(frac)))
    if "still_prompt_drift_p99_px" in c:
        worst = max((v for v in c["still_prompt_drift_p99_px"].values() if v is not None), default=None)
        out.append((f"still prompts: 99th-percentile drift < {TARGETS['still_prompt_drift_p99_px']} px",
                    worst is not None and worst < TARGETS["still_prompt_drift_p99_px"], f"worst {_fmt(worst, 2)} px"))
    return out


def _cell(result: dict, method: str, cell: str) -> str:
    v = result["cells"]["output"][method].get(cell)
    return _fmt(v["within_avg"]) if v else "-"
