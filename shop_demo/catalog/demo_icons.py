"""Lucide icons (https://lucide.dev, ISC licence) drawn with Pillow, for the demo's pictures.

The icons come from the ``lucide`` package on PyPI, which ships them as one zip file. Each
icon is a 24×24 SVG of stroked outlines (paths, circles, rectangles, lines); this module reads
that small subset of SVG, flattens curves and arcs into polylines and draws them with round
caps and joins, optionally filling the closed shapes with a second colour (a duotone look).
No SVG renderer or system library is needed.
"""

from __future__ import annotations

import importlib.resources
import io
import math
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from xml.etree import ElementTree

from PIL import ImageDraw

Point = tuple[float, float]
Colour = tuple[int, int, int]

VIEWBOX = 24.0
LICENCE = "Lucide icons, ISC licence (portions from Feather, MIT)"


class IconMissing(LookupError):
    """The installed Lucide icon set has no icon of that name."""


@dataclass(frozen=True)
class Shape:
    points: tuple[Point, ...]
    closed: bool
    filled: bool = False  # drawn solid in the ink colour (fill="currentColor")


@cache
def _archive() -> zipfile.ZipFile:
    """The icon set, read into memory once (about 650 kB): no file stays open."""
    try:
        data = importlib.resources.files("lucide").joinpath("lucide.zip").read_bytes()
    except ModuleNotFoundError as error:
        raise IconMissing(
            "the demo's product pictures use the Lucide icons: pip install -e '.[demo]'"
        ) from error
    return zipfile.ZipFile(io.BytesIO(data))


def exists(name: str) -> bool:
    return f"{name}.svg" in _archive().namelist()


@cache
def shapes(name: str) -> tuple[Shape, ...]:
    """The icon's outlines in its 24×24 coordinates."""
    try:
        source = _archive().read(f"{name}.svg")
    except KeyError:
        raise IconMissing(f"no Lucide icon named {name!r}") from None
    result: list[Shape] = []
    for element in ElementTree.fromstring(source).iter():
        tag = element.tag.rsplit("}", 1)[-1]
        attr = element.attrib
        filled = attr.get("fill", "none") not in ("none", "")
        number = _number_reader(attr)
        if tag == "path":
            result.extend(_path(attr.get("d", ""), filled))
        elif tag == "circle":
            r = number("r")
            result.append(_ellipse(number("cx"), number("cy"), r, r, filled))
        elif tag == "ellipse":
            result.append(_ellipse(number("cx"), number("cy"), number("rx"), number("ry"), filled))
        elif tag == "rect":
            result.append(_rect(attr, filled))
        elif tag == "line":
            line = ((number("x1"), number("y1")), (number("x2"), number("y2")))
            result.append(Shape(line, closed=False, filled=filled))
        elif tag in ("polyline", "polygon"):
            values = [float(v) for v in _NUMBER.findall(attr.get("points", ""))]
            points = tuple(zip(values[::2], values[1::2], strict=False))
            result.append(Shape(points, closed=tag == "polygon", filled=filled))
    return tuple(result)


def draw(
    canvas: ImageDraw.ImageDraw,
    name: str,
    box: tuple[float, float, float],
    ink: Colour,
    *,
    fill: Colour | None = None,
    stroke: float = 2.0,
) -> None:
    """Draw icon ``name`` with its top-left corner at ``box[:2]`` and ``box[2]`` pixels wide.

    ``stroke`` is the line width in the icon's own units (Lucide draws with 2); ``fill``, when
    given, colours the inside of every closed outline under the lines.
    """
    left, top, size = box
    scale = size / VIEWBOX
    width = max(1, round(stroke * scale))
    radius = width / 2

    def place(points: tuple[Point, ...]) -> list[Point]:
        return [(left + x * scale, top + y * scale) for x, y in points]

    icon = shapes(name)
    if fill is not None:
        for shape in icon:
            if shape.closed and len(shape.points) > 2 and not shape.filled:
                canvas.polygon(place(shape.points), fill=fill)
    for shape in icon:
        points = place(shape.points)
        if shape.filled and len(points) > 2:
            canvas.polygon(points, fill=ink)
        if shape.closed and points:
            points.append(points[0])
        if len(points) > 1:
            canvas.line(points, fill=ink, width=width, joint="curve")
        for x, y in points if len(points) < 4 else (points[0], points[-1]):
            canvas.ellipse([x - radius, y - radius, x + radius, y + radius], fill=ink)


# SVG parsing --------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TOKEN = re.compile(r"[MmLlHhVvCcSsQqTtAaZz]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_FLAG = re.compile(r"\s*,?\s*([01])")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7, "Z": 0}
CURVE_STEPS = 12


def _number_reader(attr: dict[str, str]):
    def number(key: str) -> float:
        match = _NUMBER.match(attr.get(key, "0"))
        return float(match.group()) if match else 0.0

    return number


def _ellipse(cx: float, cy: float, rx: float, ry: float, filled: bool) -> Shape:
    steps = max(16, round(max(rx, ry) * 8))
    points = tuple(
        (cx + rx * math.cos(2 * math.pi * k / steps), cy + ry * math.sin(2 * math.pi * k / steps))
        for k in range(steps)
    )
    return Shape(points, closed=True, filled=filled)


def _rect(attr: dict[str, str], filled: bool) -> Shape:
    number = _number_reader(attr)
    x, y, w, h = number("x"), number("y"), number("width"), number("height")
    rx = number("rx") if "rx" in attr else number("ry")
    ry = number("ry") if "ry" in attr else rx
    rx, ry = min(rx, w / 2), min(ry, h / 2)
    if not rx or not ry:
        return Shape(((x, y), (x + w, y), (x + w, y + h), (x, y + h)), closed=True, filled=filled)
    points: list[Point] = []
    corners = ((x + w - rx, y + ry, -90), (x + w - rx, y + h - ry, 0), (x + rx, y + h - ry, 90))
    for cx, cy, start in ((x + rx, y + ry, 180), *corners):
        for k in range(7):
            angle = math.radians(start + 90 * k / 6)
            points.append((cx + rx * math.cos(angle), cy + ry * math.sin(angle)))
    return Shape(tuple(points), closed=True, filled=filled)


def _tokens(d: str) -> list[str | float]:
    """Commands as letters, arguments as floats; arc flags may be written without spaces."""
    out: list[str | float] = []
    pos, command, count = 0, "", 0
    while pos < len(d):
        if d[pos] in " ,\t\n\r":
            pos += 1
            continue
        if command in "Aa" and count % 7 in (3, 4) and not d[pos].isalpha():
            match = _FLAG.match(d, pos)
            if match:
                out.append(float(match.group(1)))
                pos, count = match.end(), count + 1
                continue
        match = _TOKEN.match(d, pos)
        if not match:
            pos += 1
            continue
        token = match.group()
        pos = match.end()
        if token.isalpha():
            command, count = token, 0
            out.append(token)
        else:
            out.append(float(token))
            count += 1
    return out


def _path(d: str, filled: bool) -> list[Shape]:
    tokens = _tokens(d)
    shapes_: list[Shape] = []
    current: list[Point] = []
    x = y = start_x = start_y = 0.0
    last_control: Point | None = None
    last_command = ""
    i = 0

    def finish(closed: bool) -> None:
        nonlocal current
        if len(current) > 1:
            shapes_.append(Shape(tuple(current), closed=closed, filled=filled))
        current = []

    command = ""
    while i < len(tokens):
        if isinstance(tokens[i], str):
            command = str(tokens[i])
            i += 1
            if command in "Zz":
                finish(closed=True)
                x, y = start_x, start_y
                last_command, last_control = "Z", None
                continue
        elif not command:
            break
        n = _ARGS[command.upper()]
        args = [float(t) for t in tokens[i : i + n]]
        if len(args) < n:
            break
        i += n
        relative = command.islower()
        ox, oy = (x, y) if relative else (0.0, 0.0)
        kind = command.upper()
        if kind != "M" and not current:
            current = [(x, y)]
        if kind == "M":
            finish(closed=False)
            x, y = args[0] + ox, args[1] + oy
            start_x, start_y = x, y
            current = [(x, y)]
            command = "l" if relative else "L"  # further pairs are line-tos
            last_control = None
        elif kind in "LHV":
            if kind == "L":
                x, y = args[0] + ox, args[1] + oy
            elif kind == "H":
                x = args[0] + (ox if relative else 0.0)
            else:
                y = args[0] + (oy if relative else 0.0)
            current.append((x, y))
            last_control = None
        elif kind in "CS":
            if kind == "C":
                c1 = (args[0] + ox, args[1] + oy)
                c2, end = (args[2] + ox, args[3] + oy), (args[4] + ox, args[5] + oy)
            else:
                c1 = _reflect(last_control, (x, y)) if last_command in "CS" else (x, y)
                c2, end = (args[0] + ox, args[1] + oy), (args[2] + ox, args[3] + oy)
            current.extend(_cubic((x, y), c1, c2, end))
            last_control, (x, y) = c2, end
        elif kind in "QT":
            if kind == "Q":
                c, end = (args[0] + ox, args[1] + oy), (args[2] + ox, args[3] + oy)
            else:
                c = _reflect(last_control, (x, y)) if last_command in "QT" else (x, y)
                end = (args[0] + ox, args[1] + oy)
            current.extend(_quadratic((x, y), c, end))
            last_control, (x, y) = c, end
        else:  # A
            end = (args[5] + ox, args[6] + oy)
            current.extend(_arc((x, y), args[0], args[1], args[2], args[3], args[4], end))
            x, y = end
            last_control = None
        last_command = kind
    finish(closed=False)
    return shapes_


def _reflect(control: Point | None, about: Point) -> Point:
    if control is None:
        return about
    return (2 * about[0] - control[0], 2 * about[1] - control[1])


def _cubic(p0: Point, p1: Point, p2: Point, p3: Point) -> list[Point]:
    out = []
    for k in range(1, CURVE_STEPS + 1):
        t = k / CURVE_STEPS
        u = 1 - t
        out.append(
            (
                u**3 * p0[0] + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
                u**3 * p0[1] + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
            )
        )
    return out


def _quadratic(p0: Point, p1: Point, p2: Point) -> list[Point]:
    out = []
    for k in range(1, CURVE_STEPS + 1):
        t = k / CURVE_STEPS
        u = 1 - t
        out.append(
            (
                u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
            )
        )
    return out


def _arc(
    start: Point, rx: float, ry: float, rotation: float, large: float, sweep: float, end: Point
) -> list[Point]:
    """Points along an SVG elliptical arc (endpoint to centre form, SVG 1.1 appendix F.6.5)."""
    (x1, y1), (x2, y2) = start, end
    if (x1, y1) == (x2, y2):
        return []
    rx, ry = abs(rx), abs(ry)
    if not rx or not ry:
        return [end]
    phi = math.radians(rotation)
    cos_phi, sin_phi = math.cos(phi), math.sin(phi)
    dx, dy = (x1 - x2) / 2, (y1 - y2) / 2
    x1p, y1p = cos_phi * dx + sin_phi * dy, -sin_phi * dx + cos_phi * dy
    scale = (x1p / rx) ** 2 + (y1p / ry) ** 2
    if scale > 1:
        rx, ry = rx * math.sqrt(scale), ry * math.sqrt(scale)
    numerator = rx * rx * ry * ry - rx * rx * y1p * y1p - ry * ry * x1p * x1p
    denominator = rx * rx * y1p * y1p + ry * ry * x1p * x1p
    factor = math.sqrt(max(0.0, numerator / denominator)) if denominator else 0.0
    if large == sweep:
        factor = -factor
    cxp, cyp = factor * rx * y1p / ry, -factor * ry * x1p / rx
    cx = cos_phi * cxp - sin_phi * cyp + (x1 + x2) / 2
    cy = sin_phi * cxp + cos_phi * cyp + (y1 + y2) / 2

    def angle(ux: float, uy: float, vx: float, vy: float) -> float:
        return math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)

    theta = angle(1, 0, (x1p - cxp) / rx, (y1p - cyp) / ry)
    delta = angle((x1p - cxp) / rx, (y1p - cyp) / ry, (-x1p - cxp) / rx, (-y1p - cyp) / ry)
    if not sweep and delta > 0:
        delta -= 2 * math.pi
    elif sweep and delta < 0:
        delta += 2 * math.pi
    steps = max(4, math.ceil(abs(delta) / (math.pi / 12) * max(1.0, max(rx, ry) / 4)))
    out = []
    for k in range(1, steps + 1):
        t = theta + delta * k / steps
        ex, ey = rx * math.cos(t), ry * math.sin(t)
        out.append((cos_phi * ex - sin_phi * ey + cx, sin_phi * ex + cos_phi * ey + cy))
    out[-1] = end
    return out
