"""Word lists the ``demo_setup`` command builds the demo catalog from.

Everything derived from them is deterministic: the same product names, prices, stock and
images come out on every machine and every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.text import slugify

PRODUCTS_PER_CATEGORY = 16


# How each kind of product is pictured: the Lucide icon(s) that show it (products of one kind
# take turns through them) and what carries the icon: the object itself ("object"), or a
# pouch, box or bottle with the icon on its label. Books are drawn as book covers.
ART: dict[str, tuple[str, tuple[str, ...]]] = {
    # Camping
    "2-Person Tent": ("object", ("tent", "tent-tree")),
    "Sleeping Bag": ("object", ("bed-single", "moon-star")),
    "Sleeping Mat": ("object", ("bed",)),
    "Camping Stove": ("object", ("flame", "cooking-pot")),
    "Gas Cartridge": ("bottle", ("fuel",)),
    "Headlamp": ("object", ("flashlight",)),
    "Camping Lantern": ("object", ("lamp", "lightbulb")),
    "Firestarter Cubes": ("box", ("flame-kindling",)),
    # Hiking & Trekking
    "Hiking Boots": ("object", ("sport-shoe",)),
    "Trekking Poles": ("object", ("mountain", "signpost-big")),
    "Daypack 25L": ("object", ("backpack",)),
    "Rain Jacket": ("object", ("cloud-rain", "umbrella")),
    "Merino Socks": ("box", ("footprints",)),
    "Water Bottle": ("object", ("milk", "glass-water")),
    "Energy Bars 12-Pack": ("box", ("wheat", "cookie")),
    "Blister Plasters": ("box", ("bandage",)),
    # Cycling
    "Bike Helmet": ("object", ("hard-hat",)),
    "Bike Light Set": ("object", ("lightbulb", "flashlight")),
    "Saddle Bag": ("object", ("handbag", "briefcase")),
    "Floor Pump": ("object", ("gauge",)),
    "Inner Tube": ("box", ("life-buoy",)),
    "Chain Lube": ("bottle", ("droplets",)),
    "Folding Lock": ("object", ("lock", "lock-keyhole")),
    "Cycling Gloves": ("object", ("hand",)),
    # Coffee & Tea
    "Espresso Beans 1kg": ("pouch", ("bean",)),
    "Filter Coffee 500g": ("pouch", ("coffee",)),
    "Green Tea 100g": ("pouch", ("leaf",)),
    "Black Tea 250g": ("pouch", ("sunrise",)),
    "Herbal Tea 20 Bags": ("box", ("flower-2",)),
    "Pour-Over Dripper": ("object", ("funnel",)),
    "Milk Frother": ("object", ("milk",)),
    "Travel Mug": ("object", ("cup-soda",)),
    # Kitchen
    "Chef's Knife": ("object", ("slice", "utensils")),
    "Cast Iron Pan": ("object", ("egg-fried",)),
    "Cutting Board": ("object", ("carrot",)),
    "Dutch Oven": ("object", ("cooking-pot",)),
    "Spice Grinder": ("object", ("chef-hat",)),
    "Mixing Bowl Set": ("object", ("soup", "salad")),
    "Dish Soap 1L": ("bottle", ("soap-dispenser-droplet",)),
    "Baking Paper Roll": ("box", ("scroll", "croissant")),
    # Home & Living
    "Throw Blanket": ("object", ("bed-double",)),
    "Scented Candle": ("object", ("flame",)),
    "Linen Cushion": ("object", ("sofa", "armchair")),
    "Table Lamp": ("object", ("lamp", "lamp-desk")),
    "Ceramic Vase": ("object", ("amphora", "flower")),
    "Wall Clock": ("object", ("clock",)),
    "Plant Pot": ("object", ("sprout", "shrub")),
    "Bath Towel Set": ("object", ("bath", "towel-rack")),
    # Electronics
    "AA Batteries 8-Pack": ("box", ("battery-full",)),
    "AAA Batteries 8-Pack": ("box", ("battery-medium",)),
    "Power Bank 20000": ("object", ("battery-charging", "smartphone-charging")),
    "Bluetooth Speaker": ("object", ("speaker",)),
    "Wireless Earbuds": ("object", ("headphones",)),
    "USB-C Charger 65W": ("object", ("plug", "cable")),
    "Solar Charger": ("object", ("solar-panel", "sun")),
    "Smart Plug": ("object", ("house-plug", "plug-zap")),
    # Garden
    "Pruning Shears": ("object", ("scissors",)),
    "Garden Hose 25m": ("object", ("droplets",)),
    "Vegetable Seeds": ("pouch", ("carrot", "sprout")),
    "Organic Fertilizer": ("pouch", ("leafy-green",)),
    "Watering Can": ("object", ("shower-head",)),
    "Raised Bed": ("object", ("fence", "land-plot")),
    "Potting Soil 20L": ("pouch", ("shovel",)),
    "Bird Feeder": ("object", ("birdhouse", "bird")),
    # Fitness
    "Yoga Mat": ("object", ("person-standing",)),
    "Dumbbell Pair": ("object", ("dumbbell",)),
    "Resistance Bands": ("object", ("biceps-flexed",)),
    "Kettlebell": ("object", ("weight",)),
    "Jump Rope": ("object", ("line-squiggle",)),
    "Foam Roller": ("object", ("cylinder",)),
    "Protein Powder 1kg": ("pouch", ("milk",)),
    "Electrolyte Tablets": ("box", ("tablets", "pill")),
    # Books & Maps
    "Wild Camping Guide": ("book", ("tent-tree",)),
    "Trail Cookbook": ("book", ("cooking-pot", "chef-hat")),
    "Star Atlas": ("book", ("telescope", "star")),
    "Bird Field Guide": ("book", ("bird",)),
    "Knot Handbook": ("book", ("anchor", "lasso")),
    "Travel Journal": ("book", ("notebook-pen",)),
    "Hiking Map Set": ("book", ("map", "compass")),
    "Wildflower Guide": ("book", ("flower",)),
}


@dataclass(frozen=True)
class Item:
    noun: str
    low: int  # whole euros
    high: int
    blurb: str
    replenishable: bool = False

    @property
    def art(self) -> str:
        return ART[self.noun][0]

    @property
    def icons(self) -> tuple[str, ...]:
        return ART[self.noun][1]


@dataclass(frozen=True)
class CategorySpec:
    name: str
    slug: str
    description: str
    colour: tuple[int, int, int]  # the category's main colour
    modifiers: tuple[str, ...]
    items: tuple[Item, ...]
    features: tuple[str, ...] = field(default=())


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


def _items(table: str) -> tuple[Item, ...]:
    """Parse ``noun | low | high | R | blurb`` rows (R marks a replenishable consumable)."""
    items = []
    for row in table.strip().splitlines():
        noun, low, high, flag, blurb = (cell.strip() for cell in row.split("|"))
        if noun not in ART:
            raise KeyError(f"ART has no picture for {noun!r}")
        items.append(Item(noun, int(low), int(high), blurb, replenishable=flag == "R"))
    return tuple(items)


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        name="Camping",
        slug="camping",
        description="Tents, sleeping bags, stoves and everything else for nights under the stars.",
        colour=(46, 139, 87),
        modifiers=_words(
            "Trailhead, Nordkap, Basecamp, Ridgeline, Pinewood, Summit, Lakeside, Aurora"
        ),
        items=_items(
            """
    2-Person Tent     | 149 | 389 |   | A light, quick-pitch dome tent with a roomy vestibule.
    Sleeping Bag      |  39 | 249 |   | A warm mummy bag rated for cold spring nights.
    Sleeping Mat      |  24 | 119 |   | A self-inflating mat that packs down to bottle size.
    Camping Stove     |  29 | 139 |   | A compact gas stove that boils a litre in four minutes.
    Gas Cartridge     |   4 |  11 | R | A 230 g butane/propane cartridge for cold-weather cooking.
    Headlamp          |  14 |  69 |   | A bright, rechargeable headlamp with a red night mode.
    Camping Lantern   |  19 |  79 |   | A dimmable LED lantern that lights a whole tent.
    Firestarter Cubes |   3 |   9 | R | Odourless cubes that light damp wood in any weather.
            """
        ),
        features=(
            "Tested on a week-long trip through the Scandinavian fjells.",
            "Packs small and weighs next to nothing.",
            "Comes with a two-year no-questions warranty.",
            "Made with recycled materials wherever possible.",
        ),
    ),
    CategorySpec(
        name="Hiking & Trekking",
        slug="hiking",
        description="Boots, packs and layers for day hikes and long-distance trails.",
        colour=(180, 98, 52),
        modifiers=_words("Alpine, Trailblazer, Highland, Scout, Pathfinder, Ranger, Fjell, Cairn"),
        items=_items(
            """
    Hiking Boots        |  79 | 249 |   | Waterproof boots with a grippy, cushioned sole.
    Trekking Poles      |  29 | 129 |   | Adjustable aluminium poles with cork grips.
    Daypack 25L         |  39 | 149 |   | A ventilated daypack with a hip belt and rain cover.
    Rain Jacket         |  59 | 299 |   | A breathable three-layer shell that keeps the storm out.
    Merino Socks        |  12 |  29 | R | Soft merino hiking socks that stay fresh for days.
    Water Bottle        |   9 |  39 |   | An insulated bottle that keeps drinks cold for 24 hours.
    Energy Bars 12-Pack |   9 |  19 | R | Oat and nut bars for long days on the trail.
    Blister Plasters    |   3 |   8 | R | Hydrocolloid plasters that stop blisters in their tracks.
            """
        ),
        features=(
            "Loved by thru-hikers on the Pacific Crest Trail.",
            "Ergonomic fit for all-day comfort.",
            "Built to shrug off rain, mud and rocks.",
        ),
    ),
    CategorySpec(
        name="Cycling",
        slug="cycling",
        description="Helmets, lights, locks and spares for commuting and touring.",
        colour=(41, 110, 181),
        modifiers=_words("Velo, Sprint, Urban, Gravel, Tempo, Cadence, Roadster, Commuter"),
        items=_items(
            """
    Bike Helmet    |  39 | 179 |   | A vented in-mould helmet with a magnetic buckle.
    Bike Light Set |  19 |  89 |   | USB-rechargeable front and rear lights, road legal.
    Saddle Bag     |  14 |  49 |   | A waterproof seat bag for tube, tools and snacks.
    Floor Pump     |  24 |  79 |   | A sturdy track pump with a precise pressure gauge.
    Inner Tube     |   5 |  12 | R | A butyl inner tube with a 48 mm Presta valve.
    Chain Lube     |   6 |  15 | R | A wet-weather lube that keeps your drivetrain silent.
    Folding Lock   |  34 | 119 |   | A hardened-steel folding lock with a frame mount.
    Cycling Gloves |  14 |  45 |   | Padded gloves with touchscreen-friendly fingertips.
            """
        ),
        features=(
            "Ridden through a wet Dutch winter without complaint.",
            "Fits almost every bike on the road.",
            "Reflective details for better visibility at night.",
        ),
    ),
    CategorySpec(
        name="Coffee & Tea",
        slug="coffee-tea",
        description="Freshly roasted beans, loose-leaf teas and the tools to brew them.",
        colour=(120, 72, 48),
        modifiers=_words("Ember, Alba, Sunrise, Old Harbour, Monsoon, Copper Hill, Velvet, Nordic"),
        items=_items(
            """
    Espresso Beans 1kg |  14 |  39 | R | A chocolatey espresso roast with a hazelnut finish.
    Filter Coffee 500g |   7 |  19 | R | A bright, fruity filter roast from small farms.
    Green Tea 100g     |   5 |  15 | R | A delicate, grassy sencha for slow afternoons.
    Black Tea 250g     |   5 |  16 | R | A robust breakfast blend that loves a splash of milk.
    Herbal Tea 20 Bags |   3 |   7 | R | A caffeine-free blend of mint, fennel and camomile.
    Pour-Over Dripper  |  14 |  39 |   | A ceramic dripper for a clean, sweet cup.
    Milk Frother       |  19 |  89 |   | A handheld frother for silky cappuccino foam.
    Travel Mug         |  14 |  35 |   | A leak-proof, double-walled mug for the commute.
            """
        ),
        features=(
            "Roasted in small batches every Tuesday.",
            "Fairly traded and fully traceable.",
            "Our baristas' favourite for a reason.",
        ),
    ),
    CategorySpec(
        name="Kitchen",
        slug="kitchen",
        description="Knives, pans and tools that make cooking at home a joy.",
        colour=(197, 74, 64),
        modifiers=_words("Copperleaf, Maison, Oakline, Fenwick, Savory, Brasserie, Solace, Kobe"),
        items=_items(
            """
    Chef's Knife      |  29 | 149 |   | A razor-sharp 20 cm blade forged from one piece of steel.
    Cast Iron Pan     |  34 | 119 |   | A pre-seasoned skillet that lasts a lifetime.
    Cutting Board     |  14 |  59 |   | A thick end-grain board that is kind to your knives.
    Dutch Oven        |  69 | 249 |   | An enamelled casserole for stews, bread and braises.
    Spice Grinder     |  12 |  39 |   | A ceramic burr grinder for pepper, salt and spices.
    Mixing Bowl Set   |  19 |  49 |   | Three nesting stainless-steel bowls with lids.
    Dish Soap 1L      |   3 |   7 | R | A plant-based dish soap that cuts grease gently.
    Baking Paper Roll |   3 |   6 | R | Unbleached, compostable baking paper, 25 m.
            """
        ),
        features=(
            "Dishwasher-safe and easy to care for.",
            "Chosen by professional chefs for home kitchens.",
            "Designed in Copenhagen, built to last.",
        ),
    ),
    CategorySpec(
        name="Home & Living",
        slug="home",
        description="Blankets, lamps and little things that make a house a home.",
        colour=(156, 104, 170),
        modifiers=_words("Hygge, Linden, Terra, Fjord, Sable, Willow, Marlow, Juniper"),
        items=_items(
            """
    Throw Blanket  |  29 | 129 |   | A chunky knit throw for long sofa evenings.
    Scented Candle |   9 |  29 | R | A soy candle with notes of cedar and amber.
    Linen Cushion  |  19 |  59 |   | A stonewashed linen cushion with a feather insert.
    Table Lamp     |  39 | 189 |   | A warm, dimmable lamp with a fabric shade.
    Ceramic Vase   |  19 |  79 |   | A hand-thrown stoneware vase in a matte glaze.
    Wall Clock     |  24 |  99 |   | A silent-sweep wall clock with a wooden face.
    Plant Pot      |   9 |  49 |   | A glazed pot with a drainage saucer.
    Bath Towel Set |  29 |  89 |   | Four thick, quick-drying organic cotton towels.
            """
        ),
        features=(
            "Made by a family workshop in Portugal.",
            "Goes with almost any interior.",
            "Natural materials, no plastic packaging.",
        ),
    ),
    CategorySpec(
        name="Electronics",
        slug="electronics",
        description="Batteries, chargers, speakers and gadgets for home and away.",
        colour=(52, 73, 94),
        modifiers=_words("Voltix, Pulse, Nova, Ampere, Helio, Zenith, Flux, Orbit"),
        items=_items(
            """
    AA Batteries 8-Pack  |   5 |  14 | R | Long-lasting alkaline AA batteries.
    AAA Batteries 8-Pack |   5 |  13 | R | Long-lasting alkaline AAA batteries.
    Power Bank 20000     |  24 |  89 |   | A 20,000 mAh power bank that charges a laptop.
    Bluetooth Speaker    |  29 | 199 |   | A rugged, waterproof speaker with 20 h of play.
    Wireless Earbuds     |  39 | 249 |   | Noise-cancelling earbuds with a pocket-sized case.
    USB-C Charger 65W    |  19 |  59 |   | A compact GaN charger for phone, tablet and laptop.
    Solar Charger        |  39 | 149 |   | A foldable solar panel that tops up devices outdoors.
    Smart Plug           |  12 |  34 |   | A Wi-Fi plug that measures energy use.
            """
        ),
        features=(
            "Certified safe and energy efficient.",
            "Two-year warranty and free repairs.",
            "Works with every USB-C device.",
        ),
    ),
    CategorySpec(
        name="Garden",
        slug="garden",
        description="Seeds, tools and soil for balconies, allotments and backyards.",
        colour=(106, 153, 58),
        modifiers=_words(
            "Greenthumb, Meadow, Bramble, Orchard, Fernhill, Rosewood, Sprout, Hedgerow"
        ),
        items=_items(
            """
    Pruning Shears     |  14 |  59 |   | Bypass shears with a sharp, non-stick blade.
    Garden Hose 25m    |  24 |  79 |   | A kink-free hose with a seven-pattern spray gun.
    Vegetable Seeds    |   3 |   6 | R | Organic, open-pollinated seeds for the kitchen garden.
    Organic Fertilizer |   7 |  24 | R | A slow-release fertilizer for vegetables and flowers.
    Watering Can       |  14 |  49 |   | A galvanised 10-litre can with a brass rose.
    Raised Bed         |  59 | 229 |   | A larch-wood raised bed that assembles in minutes.
    Potting Soil 20L   |   5 |  12 | R | A peat-free potting mix for containers.
    Bird Feeder        |  12 |  45 |   | A squirrel-proof feeder for balcony and garden.
            """
        ),
        features=(
            "Peat-free and kind to the planet.",
            "Recommended by our gardening club.",
            "Built for many seasons outdoors.",
        ),
    ),
    CategorySpec(
        name="Fitness",
        slug="fitness",
        description="Mats, weights and bands for training at home or in the park.",
        colour=(214, 132, 38),
        modifiers=_words("Core, Flex, Iron, Zen, Momentum, Apex, Balance, Stride"),
        items=_items(
            """
    Yoga Mat            |  19 |  89 |   | A grippy, cushioned mat made of natural rubber.
    Dumbbell Pair       |  24 | 149 |   | Hex dumbbells with knurled, balanced handles.
    Resistance Bands    |   9 |  34 |   | Five fabric bands from light to extra heavy.
    Kettlebell          |  19 |  99 |   | A powder-coated cast iron kettlebell.
    Jump Rope           |   7 |  29 |   | A ball-bearing speed rope with adjustable length.
    Foam Roller         |  14 |  44 |   | A firm roller for recovery after hard sessions.
    Protein Powder 1kg  |  19 |  44 | R | A vanilla whey protein with nothing artificial.
    Electrolyte Tablets |   5 |  12 | R | Sugar-free tablets that fizz into a sports drink.
            """
        ),
        features=(
            "Approved by our in-house personal trainers.",
            "Sweat-proof and easy to clean.",
            "Compact enough for a small flat.",
        ),
    ),
    CategorySpec(
        name="Books & Maps",
        slug="books",
        description="Guidebooks, field guides, maps and journals for curious minds.",
        colour=(70, 120, 140),
        modifiers=_words(
            "Pocket, Illustrated, Complete, Essential, Field Edition, Compact, Deluxe, Explorer's"
        ),
        items=_items(
            """
    Wild Camping Guide |  12 |  29 |   | Where, how and when to pitch a tent responsibly.
    Trail Cookbook     |  14 |  34 |   | One-pot recipes for stoves and campfires.
    Star Atlas         |  19 |  49 |   | Every constellation you can see with the naked eye.
    Bird Field Guide   |  14 |  39 |   | Six hundred species, illustrated and mapped.
    Knot Handbook      |   7 |  19 |   | Forty essential knots, step by step.
    Travel Journal     |   9 |  29 |   | A dotted notebook with a lay-flat binding.
    Hiking Map Set     |   9 |  24 | R | Waterproof 1:25,000 maps of the Alps.
    Wildflower Guide   |  12 |  29 |   | Identify flowers by colour, shape and season.
            """
        ),
        features=(
            "Written by authors who have walked every mile.",
            "Printed on FSC-certified paper.",
            "Small enough for a jacket pocket.",
        ),
    ),
)


@dataclass(frozen=True)
class ProductSpec:
    name: str
    slug: str
    category_slug: str
    price: Decimal
    description: str
    stock: int
    is_available: bool
    replenishable: bool
    seed: int  # drives the product image
    # What the picture shows (demo_images.render_product_image).
    brand: str = ""
    kind: str = ""
    icon: str = ""
    art: str = "object"
    colour: tuple[int, int, int] = (90, 110, 100)
    variant: int = 0  # the product's place in its category: neighbours get other layouts


def _price(rng: random.Random, item: Item) -> Decimal:
    whole = rng.randint(item.low, item.high)
    cents = rng.choice(("99", "99", "50"))
    return min(Decimal(f"{whole}.{cents}"), Decimal("399.99"))


def product_specs(category: CategorySpec) -> list[ProductSpec]:
    """The category's products; the same list on every run."""
    rng = random.Random(f"demo-catalog:{category.slug}")
    per_item, extra = divmod(PRODUCTS_PER_CATEGORY, len(category.items))
    specs = []
    for index, item in enumerate(category.items):
        count = per_item + (1 if index < extra else 0)
        for turn, modifier in enumerate(rng.sample(category.modifiers, count)):
            name = f"{modifier} {item.noun}"
            features = rng.sample(category.features, k=min(2, len(category.features)))
            description = " ".join([item.blurb, *features])
            roll = rng.random()
            stock = 0 if roll < 0.06 else rng.randint(3, 140)
            specs.append(
                ProductSpec(
                    name=name,
                    slug=slugify(name),
                    category_slug=category.slug,
                    price=_price(rng, item),
                    description=description,
                    stock=stock,
                    is_available=rng.random() >= 0.05,
                    replenishable=item.replenishable,
                    seed=rng.randrange(2**32),
                    brand=modifier,
                    kind=item.noun,
                    icon=item.icons[turn % len(item.icons)],
                    art=item.art,
                    colour=category.colour,
                    variant=len(specs),
                )
            )
    return specs
