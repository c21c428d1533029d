"""Model-test results and champion/challenger comparisons as text and GitHub Markdown.

Renderers take the JSON form (``to_dict()``, also what is recorded as ``model_tests.json`` and
``compare.json``), so a live result and one read back from the registry render the same way.
"""

from __future__ import annotations


def num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text


def md(value: object) -> str:
    """A table cell: pipes escaped, one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _slice(check: dict) -> str:
    return check["slice"] or "overall"


# --- model tests ---------------------------------------------------------------------------------

def _tests_headline(run: dict) -> str:
    tests = run["tests"]
    failed = len(run["failed"])
    return (f"{run['registered_name']}/{run['version']} on {run['rows']} test rows (split "
            f"{run['split_hash'][:12]}): {len(tests) - failed} passed, {failed} failed")


def tests_text(runs: list[dict]) -> str:
    lines = []
    for run in runs:
        lines.append(f"{run['model']}: {_tests_headline(run)}")
        width = max([len(t["name"]) for t in run["tests"]] + [4])
        for test in run["tests"]:
            mark = "PASS" if test["result"] == "pass" else "FAIL"
            lines.append(f"  {mark} {test['name']:<{width}}  {test['type']:<11} "
                         f"{num(test['value']):>8}  {test['threshold']:<24} {test['detail']}")
            for part in test["slices"]:
                state = "ok  " if part["passed"] else "FAIL"
                lines.append(f"         {state} {part['label']:<28} {part['rows']:>6} rows  "
                             f"{num(part['value']):>8}  {part['note']}".rstrip())
        lines += [f"  note: {note}" for note in run["notes"]]
    return "\n".join(lines)


def tests_markdown(runs: list[dict], heading: str = "###") -> str:
    lines = []
    for run in runs:
        status = "✅ passed" if run["passed"] else "❌ failed"
        lines += [f"{heading} {run['model']}: {status}", "", _tests_headline(run), ""]
        if run["tests"]:
            lines += ["| test | type | result | value | threshold | detail |",
                      "|---|---|---|---:|---|---|"]
            for test in run["tests"]:
                mark = "✅ pass" if test["result"] == "pass" else "❌ fail"
                lines.append(f"| {md(test['name'])} | {test['type']} | {mark} | "
                             f"{num(test['value'])} | {md(test['threshold'])} | "
                             f"{md(test['detail'])} |")
            sliced = [t for t in run["tests"] if t["slices"]]
            for test in sliced:
                lines += ["", f"<details><summary>{md(test['name'])}: per slice</summary>", "",
                          "| slice | rows | value | result | note |", "|---|---:|---:|---|---|"]
                lines += [f"| {md(p['label'])} | {p['rows']} | {num(p['value'])} | "
                          f"{'✅' if p['passed'] else '❌'} | {md(p['note'])} |"
                          for p in test["slices"]]
                lines += ["", "</details>"]
        lines += [""] + [f"> {md(note)}" for note in run["notes"]]
    return "\n".join(lines).rstrip() + "\n"


# --- champion vs challenger ----------------------------------------------------------------------

def _versions_line(c: dict) -> str:
    challenger = f"challenger {c['registered_name']}/{c['challenger']['version']}"
    if c["champion"] is None:
        return f"{challenger}; no champion ({c['champion_note']})"
    return (f"{challenger} vs champion {c['registered_name']}/{c['champion']['version']} "
            f"(alias '{c['alias']}'), {c['rows']} test rows")


def _delta(check: dict) -> str:
    if check["delta"] is None:
        return "–"
    text = num(check["delta"], signed=True)
    if check["kind"] == "change.relative" and check["relative_delta"] is not None:
        text += f" ({check['relative_delta'] * 100:+.3g}%)"
    return text


def compare_text(comparisons: list[dict]) -> str:
    lines = []
    for c in comparisons:
        judgement = c["judgement"]
        if judgement is None:
            lines.append(f"{c['model']}: no verdict ({'; '.join(c['notes'])})")
            continue
        state = "BLESSED" if judgement["blessed"] else "NOT BLESSED"
        lines += [f"{c['model']}: {state} under policy '{c['policy']}' ({judgement['summary']})",
                  f"  {_versions_line(c)}"]
        rows = [("metric", "slice", "champion", "challenger", "delta", "threshold", "result")]
        for check in judgement["checks"]:
            result = check["status"] + (f" ({check['note']})" if check["note"] else "")
            rows.append((check["metric"], _slice(check), num(check["champion"]),
                         num(check["challenger"]), _delta(check), check["description"], result))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for row in rows:
            lines.append("  " + "  ".join(f"{v:<{widths[i]}}" for i, v in enumerate(row[:6]))
                         + "  " + row[6])
        if c["interval"]:
            lines.append(f"  {c['interval']['description']}")
        lines += [f"  note: {note}" for note in [*judgement["notes"], *c["notes"]]]
    return "\n".join(lines)


def compare_markdown(comparisons: list[dict], heading: str = "###",
                     images: dict[str, list[tuple[str, str]]] | None = None) -> str:
    lines = []
    for c in comparisons:
        judgement = c["judgement"]
        if judgement is None:
            lines += [f"{heading} {c['model']}: no verdict", "",
                      *[f"> {md(n)}" for n in c["notes"]], ""]
            continue
        state = "✅ blessed" if judgement["blessed"] else "❌ not blessed"
        lines += [f"{heading} {c['model']}: {state}", "",
                  f"Policy `{c['policy']}` ({judgement['summary']}); {md(_versions_line(c))}.",
                  "", "| metric | slice | champion | challenger | delta | threshold | result |",
                  "|---|---|---:|---:|---:|---|---|"]
        for check in judgement["checks"]:
            mark = {"pass": "✅ pass", "fail": "❌ fail", "skipped": "⏭️ skipped"}[check["status"]]
            note = f" ({md(check['note'])})" if check["note"] else ""
            lines.append(f"| {check['metric']} | {md(_slice(check))} | {num(check['champion'])} "
                         f"| {num(check['challenger'])} | {_delta(check)} | "
                         f"{md(check['description'])} | {mark}{note} |")
        if not judgement["checks"]:
            lines.append("| – | – | – | – | – | – | no thresholds |")
        if c["interval"]:
            lines += ["", f"**{c['primary']}**: {md(c['interval']['description'])}."]
        lines += [""] + [f"> {md(n)}" for n in [*judgement["notes"], *c["notes"]]]
        for alt, link in (images or {}).get(c["model"], []):
            lines += ["", f"![{md(alt)}]({link})"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
