#!/usr/bin/env python3
"""Lines of generated Rust per channel, read off codegen snapshots (issue 13, item 4).

For each snapshot given: total lines of generated code (the insta header left out), the number
of channels (top-level `pub mod` other than `types` and `schemas`), the `types` + `schemas`
part (the contract's types and JSON Schemas, which grow with the schemas, not with the
channels), and per channel the lines of its module plus its share of `mod endpoints` and the
top-level mount functions. Blank lines count: they are what a reader scrolls past.

    python3 scripts/generated-lines.py codegen/tests/snapshots/generate__reply.snap ...
"""
import re
import sys


def blocks(lines):
    """Top-level items as (header line, first index, last index), by brace depth."""
    items, depth, start = [], 0, None
    for index, line in enumerate(lines):
        if depth == 0 and start is None and line.strip() and not line.startswith((" ", "// ")):
            start = index
        depth += line.count("{") - line.count("}")
        if start is not None and depth == 0 and ("}" in line or line.rstrip().endswith(";")):
            header = next((l for l in lines[start:index + 1] if re.match(r"(pub(\(\w+\))? )?(mod|fn|struct|static) ", l)), "")
            items.append((header, start, index))
            start = None
    return items


def code(lines, items, _what):
    """Non-blank lines of the channel modules and the serving code (blank lines between items
    are for reading, so they are left out of the comparison)."""
    total = 0
    for header, first, last in items:
        name = re.match(r"(?:pub )?mod (\w+)", header)
        if name and name.group(1) in ("types", "schemas"):
            continue
        total += sum(1 for line in lines[first:last + 1] if line.strip())
    return total


def main():
    for path in sys.argv[1:]:
        text = open(path, encoding="utf-8").read()
        if text.startswith("---"):
            text = text.split("---\n", 2)[2]
        lines = text.splitlines()
        items = blocks(lines)
        shared = 0
        channels = {}
        serving = 0
        for header, first, last in items:
            size = last - first + 1
            name = re.match(r"(?:pub )?mod (\w+)", header)
            if name and name.group(1) in ("types", "schemas"):
                shared += size
            elif name and name.group(1) != "endpoints":
                channels[name.group(1)] = size
            else:
                serving += size
        count = max(len(channels), 1)
        print(f"{path}: {len(lines)} lines, {len(channels)} channels, "
              f"{len(lines) / count:.0f} lines per channel in all; types+schemas {shared}, "
              f"channel modules {sum(channels.values())} ({sum(channels.values()) / count:.0f} each: "
              + ", ".join(f"{k} {v}" for k, v in channels.items())
              + f"), serving (endpoints, mount, routes) {serving} ({serving / count:.0f} per channel)")
        print(f"    without blank lines: channel modules + serving "
              f"{code(lines, items, 'channel')} ({code(lines, items, 'channel') / count:.0f} per channel)")


if __name__ == "__main__":
    main()
