"""Product pictures for the demo catalog, drawn with Pillow.

Each picture is deterministic for its seed: a soft gradient in the category's colour, a few
translucent circles, the category's icon on a white disc and the product name underneath.
No fonts or images are downloaded: the text uses Pillow's built-in default font.
"""

from __future__ import annotations

import io
import math
import random
import textwrap
from functools import cache

from PIL import Image, ImageDraw, ImageFont

SIZE = 480
SCALE = 2  # drawn at twice the size and scaled down, for smooth edges
Colour = tuple[int, int, int]


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


WHITE: Colour = (255, 255, 255)
INK: Colour = (33, 37, 41)


@cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


@cache
def _gradient_mask(size: int) -> Image.Image:
    """A diagonal 0..255 ramp from the top-left to the bottom-right corner."""
    vertical = Image.linear_gradient("L")
    horizontal = vertical.transpose(Image.Transpose.TRANSPOSE)
    return Image.blend(vertical, horizontal, 0.5).resize((size, size), Image.Resampling.BICUBIC)


def _icon(draw: ImageDraw.ImageDraw, icon: str, cx: float, cy: float, r: float, ink: Colour):
    """Draw a simple icon of radius ``r`` centred on (cx, cy)."""
    w = max(2, round(r * 0.09))
    if icon == "tent":
        draw.polygon(
            [(cx - r, cy + r * 0.65), (cx, cy - r * 0.75), (cx + r, cy + r * 0.65)], fill=ink
        )
        draw.polygon(
            [(cx - r * 0.3, cy + r * 0.65), (cx, cy + r * 0.05), (cx + r * 0.3, cy + r * 0.65)],
            fill=WHITE,
        )
        draw.line([(cx - r * 1.1, cy + r * 0.68), (cx + r * 1.1, cy + r * 0.68)], fill=ink, width=w)
        draw.line([(cx, cy - r * 0.75), (cx, cy - r * 0.95)], fill=ink, width=w)
    elif icon == "mountain":
        draw.polygon(
            [(cx - r, cy + r * 0.6), (cx - r * 0.2, cy - r * 0.7), (cx + r * 0.6, cy + r * 0.6)],
            fill=ink,
        )
        draw.polygon(
            [(cx - r * 0.1, cy + r * 0.6), (cx + r * 0.45, cy - r * 0.2), (cx + r, cy + r * 0.6)],
            fill=_mix(ink, WHITE, 0.35),
        )
        draw.polygon(
            [
                (cx - r * 0.2, cy - r * 0.7),
                (cx - r * 0.42, cy - r * 0.35),
                (cx - r * 0.2, cy - r * 0.42),
                (cx + r * 0.02, cy - r * 0.35),
            ],
            fill=WHITE,
        )
    elif icon == "bicycle":
        wheel = r * 0.45
        left, right, base = (cx - r * 0.55, cy + r * 0.2), (cx + r * 0.55, cy + r * 0.2), w * 1.4
        for x, y in (left, right):
            draw.ellipse(
                [x - wheel, y - wheel, x + wheel, y + wheel], outline=ink, width=round(base)
            )
        pedal = (cx - r * 0.05, cy + r * 0.2)
        seat = (cx - r * 0.25, cy - r * 0.35)
        bar = (cx + r * 0.35, cy - r * 0.4)
        for a, b in (
            (left, pedal),
            (pedal, seat),
            (seat, left),
            (pedal, bar),
            (seat, bar),
            (bar, right),
        ):
            draw.line([a, b], fill=ink, width=round(base))
        draw.line(
            [(seat[0] - r * 0.15, seat[1] - r * 0.05), (seat[0] + r * 0.12, seat[1] - r * 0.05)],
            fill=ink,
            width=round(base * 1.5),
        )
    elif icon == "cup":
        draw.rounded_rectangle(
            [cx - r * 0.6, cy - r * 0.3, cx + r * 0.35, cy + r * 0.6], radius=r * 0.2, fill=ink
        )
        draw.ellipse(
            [cx + r * 0.2, cy - r * 0.15, cx + r * 0.7, cy + r * 0.35], outline=ink, width=w * 2
        )
        draw.rounded_rectangle(
            [cx - r * 0.8, cy + r * 0.62, cx + r * 0.6, cy + r * 0.75], radius=r * 0.06, fill=ink
        )
        for dx in (-0.35, -0.1, 0.15):
            x = cx + r * dx
            draw.arc(
                [x - r * 0.1, cy - r * 0.8, x + r * 0.1, cy - r * 0.55], 90, 270, fill=ink, width=w
            )
            draw.arc(
                [x - r * 0.1, cy - r * 0.58, x + r * 0.1, cy - r * 0.38], 270, 90, fill=ink, width=w
            )
    elif icon == "pan":
        draw.ellipse([cx - r * 0.85, cy - r * 0.55, cx + r * 0.35, cy + r * 0.65], fill=ink)
        draw.ellipse(
            [cx - r * 0.7, cy - r * 0.4, cx + r * 0.2, cy + r * 0.5], fill=_mix(ink, WHITE, 0.3)
        )
        draw.line(
            [(cx + r * 0.3, cy - r * 0.05), (cx + r * 1.0, cy - r * 0.45)], fill=ink, width=w * 3
        )
    elif icon == "house":
        draw.polygon(
            [(cx - r * 0.9, cy - r * 0.05), (cx, cy - r * 0.85), (cx + r * 0.9, cy - r * 0.05)],
            fill=ink,
        )
        draw.rectangle([cx - r * 0.65, cy - r * 0.1, cx + r * 0.65, cy + r * 0.75], fill=ink)
        draw.rounded_rectangle(
            [cx - r * 0.18, cy + r * 0.2, cx + r * 0.18, cy + r * 0.75], radius=r * 0.05, fill=WHITE
        )
        draw.rectangle([cx + r * 0.3, cy + r * 0.05, cx + r * 0.52, cy + r * 0.27], fill=WHITE)
        draw.rectangle([cx - r * 0.52, cy + r * 0.05, cx - r * 0.3, cy + r * 0.27], fill=WHITE)
    elif icon == "bolt":
        draw.polygon(
            [
                (cx + r * 0.15, cy - r),
                (cx - r * 0.55, cy + r * 0.1),
                (cx - r * 0.02, cy + r * 0.1),
                (cx - r * 0.2, cy + r),
                (cx + r * 0.55, cy - r * 0.15),
                (cx + r * 0.02, cy - r * 0.15),
            ],
            fill=ink,
        )
    elif icon == "flower":
        draw.line([(cx, cy), (cx, cy + r)], fill=_mix(ink, INK, 0.2), width=w * 2)
        draw.ellipse([cx, cy + r * 0.45, cx + r * 0.45, cy + r * 0.7], fill=ink)
        for k in range(6):
            angle = k * math.pi / 3
            px, py = cx + math.cos(angle) * r * 0.38, cy - r * 0.2 + math.sin(angle) * r * 0.38
            draw.ellipse(
                [px - r * 0.25, py - r * 0.25, px + r * 0.25, py + r * 0.25],
                fill=_mix(ink, WHITE, 0.25),
            )
        draw.ellipse([cx - r * 0.2, cy - r * 0.4, cx + r * 0.2, cy], fill=ink)
    elif icon == "dumbbell":
        draw.rounded_rectangle(
            [cx - r * 0.6, cy - r * 0.08, cx + r * 0.6, cy + r * 0.08], radius=r * 0.04, fill=ink
        )
        for side in (-1, 1):
            for dx, h in ((0.55, 0.55), (0.78, 0.4)):
                x = cx + side * r * dx
                draw.rounded_rectangle(
                    [x - r * 0.1, cy - r * h, x + r * 0.1, cy + r * h], radius=r * 0.05, fill=ink
                )
    elif icon == "book":
        for side in (-1, 1):
            outer, inner = cx + side * r * 0.95, cx + side * r * 0.04
            draw.polygon(
                [
                    (inner, cy - r * 0.45),
                    (outer, cy - r * 0.6),
                    (outer, cy + r * 0.5),
                    (inner, cy + r * 0.65),
                ],
                fill=ink,
            )
            for k in range(3):
                y = cy - r * 0.3 + k * r * 0.22
                draw.line(
                    [(cx + side * r * 0.2, y), (cx + side * r * 0.8, y - r * 0.1)],
                    fill=_mix(ink, WHITE, 0.55),
                    width=w,
                )
    else:
        draw.ellipse([cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6], fill=ink)


def render_product_image(name: str, icon: str, colour: Colour, seed: int) -> bytes:
    """A JPEG picture for one product; the same bytes for the same arguments."""
    rng = random.Random(seed)
    size = SIZE * SCALE
    light = _mix(colour, WHITE, 0.82 + rng.random() * 0.08)
    soft = _mix(colour, WHITE, 0.45 + rng.random() * 0.15)
    start, end = (light, soft) if rng.random() < 0.5 else (soft, light)
    mask = _gradient_mask(size)
    if rng.random() < 0.5:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = Image.composite(
        Image.new("RGB", (size, size), end), Image.new("RGB", (size, size), start), mask
    )

    # A few soft bubbles in the background.
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(3, 6)):
        radius = rng.uniform(0.08, 0.28) * size
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        alpha = rng.randint(28, 70)
        odraw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(*WHITE, alpha))
    image.paste(overlay, (0, 0), overlay)

    draw = ImageDraw.Draw(image)
    ink = _mix(colour, INK, 0.25 + rng.random() * 0.2)
    cx, cy = size / 2, size * 0.42
    disc = size * 0.27
    draw.ellipse([cx - disc, cy - disc, cx + disc, cy + disc], fill=WHITE)
    _icon(draw, icon, cx, cy, disc * 0.62, ink)

    # The product name, centred and wrapped on at most two lines.
    font = _font(30 * SCALE)
    lines = textwrap.wrap(name, width=22)[:2]
    y = size * 0.76
    for line in lines:
        left, top, right, bottom = draw.textbbox((0, 0), line, font=font)
        draw.text(((size - (right - left)) / 2, y), line, font=font, fill=_mix(ink, INK, 0.5))
        y += (bottom - top) + 14 * SCALE

    image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=86, optimize=True)
    return out.getvalue()
