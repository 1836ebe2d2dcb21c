"""The journey as a picture (DESIGN §3, §9): an SVG drawn by the server from the journey table.

States are boxes laid out left to right in the journey's order (the open path on the middle row,
the consultation branch above it, the clock stop and the endings other than completion below),
transitions are arrows. What never changes (the boxes, the arrows) is built once per process;
each case only chooses which box is highlighted as its current state.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape

from statemachines.journey import FINAL_STATES, STATE_LABELS, STATES, TRANSITIONS

BOX_W, BOX_H = 150, 56
GAP_X = 34
# Between the rows: the top one and the path, and the path and the endings below (room for the
# group brackets: "from any open state").
ROW_GAPS = (34, 64)
MARGIN = 10
# A transition from (or to) this many states or more is drawn once, from a bracket under them.
FAN = 4
BRACKET_STEP = 13

# Column and row of each state: the main path left to right, its branches above and below.
LAYOUT: dict[str, tuple[int, int]] = {
    "referred": (0, 1),
    "need_determination": (1, 1),
    "consultation": (2, 0),
    "ipr_development": (2, 1),
    "ipr_implementation": (3, 1),
    "ipr_assessment": (4, 1),
    "transition": (5, 1),
    "adaptation": (6, 1),
    "completed": (7, 1),
    "rejected": (0, 2),
    "no_need": (1, 2),
    "suspended": (3, 2),
    "declined": (4, 2),
    "lost_contact": (5, 2),
}


def _cells() -> dict[str, tuple[int, int]]:
    """Every state's column and row; a state the table gains later goes to the end of the bottom row."""
    cells = dict(LAYOUT)
    spare = max(col for col, _ in cells.values()) + 1
    for name, _ in STATES:
        if name not in cells:
            cells[name] = (spare, 2)
            spare += 1
    return cells


def _row_top(row: int) -> int:
    return MARGIN + row * BOX_H + sum(ROW_GAPS[:row])


def _positions() -> dict[str, tuple[int, int]]:
    return {name: (MARGIN + col * (BOX_W + GAP_X), _row_top(row)) for name, (col, row) in _cells().items()}


def _lines(label: str, width: int = 16) -> list[str]:
    """The label wrapped into lines of about `width` characters (at most three)."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines[:3]


def _edge_point(box: tuple[int, int], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box's centre toward a point leaves the box."""
    cx, cy = box[0] + BOX_W / 2, box[1] + BOX_H / 2
    dx, dy = toward[0] - cx, toward[1] - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else float("inf"),
        (BOX_H / 2) / abs(dy) if dy else float("inf"),
    )
    return cx + dx * scale, cy + dy * scale


@dataclass(frozen=True)
class Fan:
    """Transitions between one state and a group of states, drawn once through the group's bracket:
    `inward` from every member to `state` (decline, suspend), else from `state` to the members (resume)."""

    members: frozenset[str]
    state: str
    inward: bool


def _fans() -> list[Fan]:
    fans: dict[Fan, None] = {}
    by_event: dict[tuple[str, str], set[str]] = {}
    for row in TRANSITIONS:
        sources = [row.source] if isinstance(row.source, str) else list(row.source)
        if len(sources) >= FAN:
            fans.setdefault(Fan(frozenset(sources), row.dest, True), None)
        elif len(sources) == 1:
            by_event.setdefault((row.event, sources[0]), set()).add(row.dest)
    for (_, source), dests in by_event.items():
        if len(dests) >= FAN:
            fans.setdefault(Fan(frozenset(dests), source, False), None)
    return list(fans)


def _pairs() -> list[tuple[str, str]]:
    """Each (source, destination) of the journey table once, in the table's order, less the fans'."""
    covered = {
        (member, fan.state) if fan.inward else (fan.state, member)
        for fan in _fans()
        for member in fan.members
    }
    seen: dict[tuple[str, str], None] = {}
    for row in TRANSITIONS:
        sources = [row.source] if isinstance(row.source, str) else list(row.source)
        for source in sources:
            if (source, row.dest) not in covered:
                seen.setdefault((source, row.dest), None)
    return list(seen)


@lru_cache(maxsize=1)
def _size() -> tuple[int, int]:
    boxes = _positions().values()
    return (
        max(x for x, _ in boxes) + BOX_W + MARGIN,
        max(y for _, y in boxes) + BOX_H + MARGIN,
    )


def _line(x1: float, y1: float, x2: float, y2: float, kind: str, arrow: bool = True) -> str:
    head = ' marker-end="url(#journey-arrow)"' if arrow else ""
    return f'<line class="jt jt-{kind}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"{head}/>'


def _fan_lines() -> list[str]:
    """Each group's bracket under the path, a tick from each member to it, and one arrow per fan."""
    cells, boxes = _cells(), _positions()
    groups = sorted({fan.members for fan in _fans()}, key=lambda members: (-len(members), sorted(members)))
    path_bottom = _row_top(1) + BOX_H
    parts: list[str] = []
    for level, members in enumerate(groups):
        y = path_bottom + BRACKET_STEP * (level + 1)
        above = [m for m in members if cells[m][1] <= 1]
        left = min(boxes[m][0] for m in above) + 12
        right = max(boxes[m][0] for m in above) + BOX_W - 12
        parts.append(_line(left, y, right, y, "group", arrow=False))
        tick = 14 + 10 * level
        for member in members:
            x, top = boxes[member]
            if cells[member][1] == 1:
                parts.append(_line(x + tick, top + BOX_H, x + tick, y, "group", arrow=False))
            elif cells[member][1] > 1:
                parts.append(_line(x + BOX_W - tick, top, x + BOX_W - tick, y, "group", arrow=False))
            else:  # above the path: round its left side, through the gap between the columns
                side = x - 6 - 6 * level
                mid = top + BOX_H / 2 + 8 * level
                parts.append(f'<polyline class="jt jt-group" points="{x},{mid} {side},{mid} {side},{y}"/>')
        for fan in _fans():
            if fan.members != members:
                continue
            x, top = boxes[fan.state]
            cx = x + BOX_W / 2 + (-12 if fan.inward else 12) * (fan.state in members or _two_way(fan))
            if fan.inward:
                parts.append(_line(cx, y, cx, top, "side"))
            else:
                parts.append(_line(cx, top, cx, y, "side"))
    return parts


def _two_way(fan: Fan) -> bool:
    return Fan(fan.members, fan.state, not fan.inward) in _fans()


@lru_cache(maxsize=1)
def _edges() -> str:
    """The arrows: straight lines between box edges (a pair both ways as two offset lines), and the
    fans through their brackets."""
    boxes = _positions()
    pairs = _pairs()
    both_ways = {(a, b) for a, b in pairs if (b, a) in pairs}
    parts = _fan_lines()
    cells = _cells()
    for source, dest in pairs:
        a, b = boxes[source], boxes[dest]
        if cells[source][1] == cells[dest][1] and abs(cells[source][0] - cells[dest][0]) > 1:
            # Along a row past another box: an arc over the boxes between them.
            x1, x2 = a[0] + BOX_W / 2 + 20, b[0] + BOX_W / 2 - 20
            top = a[1]
            parts.append(
                f'<path class="jt jt-main" d="M{x1:.1f},{top} Q{(x1 + x2) / 2:.1f},{top - 44} {x2:.1f},{top}"'
                ' marker-end="url(#journey-arrow)"/>'
            )
            continue
        ca = (a[0] + BOX_W / 2, a[1] + BOX_H / 2)
        cb = (b[0] + BOX_W / 2, b[1] + BOX_H / 2)
        (x1, y1), (x2, y2) = _edge_point(a, cb), _edge_point(b, ca)
        if (source, dest) in both_ways:
            # Shift each direction to its own side of the straight line.
            shift = 7 if source < dest else -7
            if abs(x2 - x1) >= abs(y2 - y1):
                y1, y2 = y1 + shift, y2 + shift
            else:
                x1, x2 = x1 + shift, x2 + shift
        side = dest in FINAL_STATES - {"completed"}
        parts.append(_line(x1, y1, x2, y2, "side" if side else "main"))
    return "".join(parts)


@lru_cache(maxsize=64)
def _box(state: str, current: bool) -> str:
    x, y = _positions()[state]
    classes = ["js"]
    if state in FINAL_STATES:
        classes.append("js-final")
    if current:
        classes.append("js-current")
    lines = _lines(STATE_LABELS[state])
    first = y + BOX_H / 2 - (len(lines) - 1) * 8 + 5
    text = "".join(
        f'<tspan x="{x + BOX_W / 2:.0f}" y="{first + i * 16:.0f}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    rx = 14 if state in FINAL_STATES else 4
    mark = ' aria-current="step"' if current else ""
    return (
        f'<g class="{" ".join(classes)}" data-state="{state}"{mark}>'
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{rx}"/>'
        f'<text text-anchor="middle">{text}</text></g>'
    )


@lru_cache(maxsize=1)
def _head() -> str:
    width, height = _size()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey" viewBox="0 0 {width} {height}"'
        ' role="img" focusable="false"'
    )


@lru_cache(maxsize=1)
def _defs() -> str:
    return (
        '<defs><marker id="journey-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="jt-head"/>'
        "</marker></defs>"
    )


def journey_svg(current: str) -> str:
    """The journey with `current` highlighted (a distinct fill and aria-current), as inline SVG."""
    label = f"Маршрут ребёнка: текущее состояние — «{STATE_LABELS.get(current, current)}»"
    boxes = "".join(_box(name, name == current) for name, _ in STATES)
    return (
        f'{_head()} aria-label="{escape(label)}"><title id="journey-title">{escape(label)}</title>'
        f"{_defs()}<g>{_edges()}</g><g>{boxes}</g></svg>"
    )
