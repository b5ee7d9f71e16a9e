"""Product pictures for the demo catalog, drawn with Pillow from Lucide icons.

Every product gets its own picture: the icon of its kind of product (a tent for a tent, a mug
for a travel mug, see ``demo_data.ART``), drawn as the object itself, on the label of a pouch,
box or bottle, or on a book cover; in a colour near its department's but its own; on one of
several backdrops that neighbouring products take turns through; with its brand on a tag.
The same product always gets the same bytes. Nothing is downloaded: the icons come with the
``lucide`` package and the text uses Pillow's built-in font.
"""

from __future__ import annotations

import colorsys
import io
import random
import re
import textwrap
from functools import cache

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import demo_icons
from .demo_data import ProductSpec

SIZE = 480
SCALE = 2  # drawn at twice the size and scaled down, for smooth edges
CANVAS = SIZE * SCALE
Colour = tuple[int, int, int]
WHITE: Colour = (255, 255, 255)
INK: Colour = (29, 42, 38)
BACKDROPS = ("disc", "arch", "card", "spot")


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shift(colour: Colour, hue: float, saturation: float = 1.0, value: float = 1.0) -> Colour:
    """``colour`` with its hue turned by ``hue`` (0..1 is a full turn) and scaled S and V."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    r, g, b = colorsys.hsv_to_rgb((h + hue) % 1.0, min(1.0, s * saturation), min(1.0, v * value))
    return round(r * 255), round(g * 255), round(b * 255)


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


# Hue turns of the backdrop from the product's own colour; neighbours take different ones.
BACKDROP_HUES = (0.0, 0.5, 0.14, -0.14, 0.3)


class Palette:
    """The product's colours: its department's hue, turned a little its own way, on a
    backdrop of that hue or of a harmonising one."""

    def __init__(self, base: Colour, variant: int, rng: random.Random) -> None:
        main = _shift(base, rng.uniform(-0.06, 0.06), rng.uniform(0.9, 1.15))
        self.main = main
        self.ink = _mix(main, INK, 0.55)
        self.tint = _mix(main, WHITE, 0.72)
        self.soft = _mix(main, WHITE, 0.5)
        turn = BACKDROP_HUES[(variant + variant // len(BACKDROPS)) % len(BACKDROP_HUES)]
        ground = _shift(main, turn, 0.8)
        self.pale = _mix(ground, WHITE, rng.uniform(0.84, 0.9))
        self.ground = _mix(ground, WHITE, 0.66)
        self.accent = _mix(_shift(ground, rng.choice((0.08, -0.08))), WHITE, 0.35)
        # Packs and book covers: the product's colour or a sibling of it, in turns.
        turn, value = (0.0, 0.1, -0.1, 0.5)[variant % 4], (1.0, 0.85)[variant % 2]
        self.cover = _shift(main, turn, value=value)


def _text(draw: ImageDraw.ImageDraw, xy, text: str, size: int, fill: Colour, *, bold=False):
    stroke = 1 if bold else 0
    draw.text(xy, text, font=_font(size), fill=fill, stroke_width=stroke, stroke_fill=fill)


def _text_width(text: str, size: int, bold: bool = False) -> float:
    left, _, right, _ = _font(size).getbbox(text, stroke_width=1 if bold else 0)
    return right - left


def _shadow(image: Image.Image, shape, colour: Colour = INK, blur: int = 28, alpha: int = 70):
    """A soft shadow of ``shape`` (a callable that draws on an L mask) under what comes next."""
    small = CANVAS // 4
    mask = Image.new("L", (small, small), 0)
    shape(ImageDraw.Draw(mask), 0.25)
    mask = mask.filter(ImageFilter.GaussianBlur(blur / 4)).resize((CANVAS, CANVAS))
    mask = mask.point(lambda v: v * alpha // 255)
    image.paste(Image.new("RGB", image.size, colour), (0, 0), mask)


def _backdrop(image: Image.Image, palette: Palette, rng: random.Random) -> None:
    """A soft diagonal gradient with a few translucent bubbles."""
    start, end = palette.pale, _mix(palette.ground, palette.pale, rng.uniform(0, 0.4))
    if rng.random() < 0.5:
        start, end = end, start
    mask = _gradient_mask(CANVAS)
    if rng.random() < 0.5:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image.paste(Image.composite(Image.new("RGB", image.size, end), image, mask))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    for _ in range(rng.randint(2, 4)):
        radius = rng.uniform(0.06, 0.2) * CANVAS
        x, y = rng.uniform(0, CANVAS), rng.uniform(0, CANVAS)
        colour = WHITE if rng.random() < 0.6 else palette.accent
        odraw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(*colour, 70))
    image.paste(overlay, (0, 0), overlay)


def _brand_tag(draw: ImageDraw.ImageDraw, brand: str, palette: Palette, corner: str) -> None:
    text = brand.upper()
    size = 34
    width = _text_width(text, size, bold=True)
    pad_x, height = 26, 64
    x = 48 if corner.endswith("left") else CANVAS - 48 - width - 2 * pad_x
    y = 48 if corner.startswith("top") else CANVAS - 48 - height
    draw.rounded_rectangle([x, y, x + width + 2 * pad_x, y + height], radius=height / 2, fill=WHITE)
    _text(draw, (x + pad_x, y + 13), text, size, palette.ink, bold=True)


def _object(image: Image.Image, spec: ProductSpec, palette: Palette, rng: random.Random):
    """The product's icon large, on one of the backdrops."""
    draw = ImageDraw.Draw(image)
    backdrop = BACKDROPS[spec.variant % len(BACKDROPS)]
    c = CANVAS / 2
    icon = CANVAS * 0.44
    stroke = 1.75
    if backdrop == "disc":
        r = CANVAS * 0.32
        _shadow(image, lambda d, k: d.ellipse([k * (c - r), k * (c - r + 24), k * (c + r),
                                               k * (c + r + 24)], fill=255))  # fmt: skip
        draw.ellipse([c - r, c - r, c + r, c + r], fill=WHITE)
        box = (c - icon / 2, c - icon / 2, icon)
        tag = "bottom-left"  # the shop's badges ("Only 5 left") sit top left
    elif backdrop == "arch":
        floor = CANVAS * 0.76
        draw.rectangle([0, floor, CANVAS, CANVAS], fill=palette.ground)
        w = CANVAS * 0.5
        left, top = c - w / 2, CANVAS * 0.1
        draw.rounded_rectangle([left, top, left + w, floor + 2], radius=w / 2, fill=WHITE)
        draw.rectangle([left, floor - 20, left + w, floor + 2], fill=WHITE)
        draw.ellipse([c - icon * 0.42, floor - 16, c + icon * 0.42, floor + 22], fill=palette.tint)
        box = (c - icon / 2, floor - icon - 6, icon)
        tag = "bottom-left"
    elif backdrop == "card":
        angle = rng.choice((-6, -4, 4, 6))
        w = round(CANVAS * 0.6)
        card = Image.new("L", (w, w), 0)
        ImageDraw.Draw(card).rounded_rectangle([0, 0, w - 1, w - 1], radius=56, fill=255)
        card = card.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        _shadow(image, lambda d, k: d.rounded_rectangle(
            [k * (c - w / 2), k * (c - w / 2 + 28), k * (c + w / 2), k * (c + w / 2 + 28)],
            radius=k * 56, fill=255))  # fmt: skip
        corner = (round(c - card.width / 2), round(c - card.height / 2))
        image.paste(Image.new("RGB", card.size, WHITE), corner, card)
        box = (c - icon / 2, c - icon / 2, icon)
        tag = "bottom-right"
    else:  # "spot": the icon on a blob of the product's colour
        r = CANVAS * 0.3
        for dx, dy, k in ((-0.08, 0.04, 1.0), (0.1, -0.06, 0.8), (0.04, 0.1, 0.75)):
            x, y, rr = c + dx * CANVAS, c + dy * CANVAS, r * k
            draw.ellipse([x - rr, y - rr, x + rr, y + rr], fill=_mix(palette.tint, WHITE, 0.3))
        icon = CANVAS * 0.48
        box = (c - icon / 2, c - icon / 2, icon)
        tag = "top-right"
    demo_icons.draw(draw, spec.icon, box, palette.ink, fill=palette.soft, stroke=stroke)
    _brand_tag(draw, spec.brand, palette, tag)


def _label(draw, spec: ProductSpec, palette: Palette, x0: float, y0: float, x1: float, y1: float):
    """A white label with the icon, the brand and the pack size."""
    draw.rounded_rectangle([x0, y0, x1, y1], radius=28, fill=WHITE)
    w = x1 - x0
    icon = min(w * 0.55, (y1 - y0) * 0.5)
    cx = (x0 + x1) / 2
    demo_icons.draw(draw, spec.icon, (cx - icon / 2, y0 + 26, icon), palette.ink,
                    fill=palette.tint, stroke=1.9)  # fmt: skip
    brand = spec.brand.upper()
    size = 36 if _text_width(brand, 36, bold=True) < w - 40 else 28
    y = y0 + 26 + icon + 18
    _text(draw, (cx - _text_width(brand, size, True) / 2, y), brand, size, palette.ink, bold=True)
    amount = _amount(spec.kind)
    if amount:
        y += size + 14
        _text(draw, (cx - _text_width(amount, 28) / 2, y), amount, 28, palette.main)


def _amount(kind: str) -> str:
    """The pack size in a product name: ``1kg``, ``20 Bags``, ``8-Pack``, ``1L``..."""
    match = re.search(r"\b(\d[\d,]*\s?(?:kg|g|L|ml|m|W)|\d+-Pack|\d+ Bags)\b", kind)
    return match.group(1) if match else ""


def _package(image: Image.Image, spec: ProductSpec, palette: Palette, rng: random.Random):
    """A pouch, box or bottle in the product's colour with a label."""
    draw = ImageDraw.Draw(image)
    c = CANVAS / 2
    body = palette.cover
    dark = _mix(body, INK, 0.3)
    if spec.art == "pouch":
        w, top, bottom = CANVAS * 0.5, CANVAS * 0.14, CANVAS * 0.86
        _shadow(
            image,
            lambda d, k: d.ellipse(
                [k * (c - w * 0.55), k * (bottom - 30), k * (c + w * 0.55), k * (bottom + 30)],
                fill=255,
            ),
        )
        draw.rounded_rectangle([c - w / 2, top + 40, c + w / 2, bottom], radius=48, fill=body)
        draw.polygon([(c - w / 2 + 12, top + 80), (c - w / 2 + 30, top), (c + w / 2 - 30, top),
                      (c + w / 2 - 12, top + 80)], fill=body)  # fmt: skip
        teeth = 14
        step = (w - 60) / teeth
        for k in range(teeth):  # the crimped seal
            x = c - w / 2 + 30 + k * step
            draw.polygon([(x, top), (x + step / 2, top - 14), (x + step, top)], fill=body)
        draw.rectangle([c - w / 2 + 30, top + 34, c + w / 2 - 30, top + 44], fill=dark)
        _label(draw, spec, palette, c - w / 2 + 44, top + 110, c + w / 2 - 44, bottom - 60)
    elif spec.art == "box":
        w, h, depth = CANVAS * 0.5, CANVAS * 0.56, CANVAS * 0.1
        x0, y0 = c - w / 2 - depth / 2, CANVAS * 0.22
        _shadow(image, lambda d, k: d.rectangle([k * (x0 + 10), k * (y0 + h - 10),
                                                 k * (x0 + w + depth + 20), k * (y0 + h + 40)],
                                                fill=255))  # fmt: skip
        draw.polygon([(x0, y0), (x0 + depth, y0 - depth), (x0 + w + depth, y0 - depth),
                      (x0 + w, y0)], fill=_mix(body, WHITE, 0.25))  # fmt: skip
        draw.polygon([(x0 + w, y0), (x0 + w + depth, y0 - depth), (x0 + w + depth, y0 + h - depth),
                      (x0 + w, y0 + h)], fill=dark)  # fmt: skip
        draw.rectangle([x0, y0, x0 + w, y0 + h], fill=body)
        _label(draw, spec, palette, x0 + 36, y0 + 40, x0 + w - 36, y0 + h - 40)
    else:  # "bottle"
        w, top, bottom = CANVAS * 0.4, CANVAS * 0.26, CANVAS * 0.88
        _shadow(
            image,
            lambda d, k: d.ellipse(
                [k * (c - w * 0.6), k * (bottom - 26), k * (c + w * 0.6), k * (bottom + 26)],
                fill=255,
            ),
        )
        neck = w * 0.34
        draw.rounded_rectangle([c - neck / 2, top - 120, c + neck / 2, top + 20], radius=14,
                               fill=dark)  # fmt: skip
        draw.rounded_rectangle([c - w / 2, top, c + w / 2, bottom], radius=w * 0.22, fill=body)
        _label(draw, spec, palette, c - w / 2 + 28, top + 90, c + w / 2 - 28, bottom - 70)


def _book(image: Image.Image, spec: ProductSpec, palette: Palette, rng: random.Random):
    """A book cover: the title, the icon of its subject and the publisher's series name."""
    draw = ImageDraw.Draw(image)
    w, h = CANVAS * 0.56, CANVAS * 0.76
    x0, y0 = (CANVAS - w) / 2 + 10, (CANVAS - h) / 2
    _shadow(image, lambda d, k: d.rectangle([k * (x0 + 14), k * (y0 + 26), k * (x0 + w + 20),
                                             k * (y0 + h + 22)], fill=255))  # fmt: skip
    draw.rectangle([x0 + 10, y0 + 8, x0 + w + 10, y0 + h + 8], fill=palette.pale)  # pages
    cover = palette.cover
    draw.rounded_rectangle([x0, y0, x0 + w, y0 + h], radius=10, fill=cover)
    draw.rectangle([x0, y0, x0 + 26, y0 + h], fill=_mix(cover, INK, 0.3))  # spine
    light = _mix(cover, WHITE, 0.85)
    title = spec.kind
    lines = textwrap.wrap(title, width=12)[:3]
    y = y0 + 60
    for line in lines:
        _text(draw, (x0 + 26 + (w - 26 - _text_width(line, 50, True)) / 2, y), line, 50, light,
              bold=True)  # fmt: skip
        y += 64
    icon = w * 0.5
    cx = x0 + 13 + w / 2
    iy = y0 + h * 0.62 - icon / 2 + 20
    draw.ellipse([cx - icon * 0.7, iy + icon / 2 - icon * 0.7, cx + icon * 0.7,
                  iy + icon / 2 + icon * 0.7], fill=_mix(cover, WHITE, 0.2))  # fmt: skip
    demo_icons.draw(draw, spec.icon, (cx - icon / 2, iy, icon), light, stroke=1.6)
    series = spec.brand.upper()
    size = 28 if _text_width(series, 30) < w - 60 else 24
    _text(draw, (cx - _text_width(series, size) / 2, y0 + h - 60), series, size, light)


PICTURE_MARK = "demo picture v2"


def is_current_picture(name: str) -> bool:
    """Whether the stored file ``name`` was drawn by this version of the demo's pictures."""
    from django.core.files.storage import default_storage

    try:
        with default_storage.open(name) as file, Image.open(file) as image:
            comment = image.info.get("comment", b"")
    except (OSError, ValueError):
        return False
    return PICTURE_MARK.encode() in comment


def render_product_image(spec: ProductSpec) -> bytes:
    """A JPEG picture of one product; the same bytes for the same product."""
    rng = random.Random(spec.seed)
    palette = Palette(spec.colour, spec.variant, rng)
    image = Image.new("RGB", (CANVAS, CANVAS), palette.pale)
    _backdrop(image, palette, rng)
    if spec.art == "book":
        _book(image, spec, palette, rng)
    elif spec.art in ("pouch", "box", "bottle"):
        _package(image, spec, palette, rng)
    else:
        _object(image, spec, palette, rng)
    image = image.reduce(SCALE)
    out = io.BytesIO()
    # The comment names what the picture shows, for people and tools reading the file.
    comment = f"{PICTURE_MARK}: {spec.name}; {spec.art}, icon {spec.icon} ({demo_icons.LICENCE})"
    image.save(out, format="JPEG", quality=86, optimize=True, comment=comment.encode())
    return out.getvalue()
