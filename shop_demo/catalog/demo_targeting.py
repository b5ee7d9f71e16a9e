"""The demo's segments, placements and banners: what a shop's staff would set up in the admin."""

from __future__ import annotations

SEGMENTS = [
    # slug, name, match, [(kind, value)]
    ("first-time-visitors", "First-time visitors", "all", [("first_visit", "")]),
    ("returning-visitors", "Returning visitors", "all", [("returning", "")]),
    ("frequent-buyers", "Frequent buyers", "all", [("order_count", ">3")]),
    ("camping-fans", "Interested in camping", "all", [("category_interest", "camping >= 2")]),
    ("from-the-uk", "Visitors from the UK", "all", [("country", "GB")]),
    ("from-scandinavia", "Visitors from Scandinavia", "all", [("country", "SE, NO, DK, FI")]),
    ("from-north-america", "Visitors from North America", "all", [("country", "US, CA")]),
    ("referred-visitors", "Referred by a friend", "all", [("referred", "")]),
    ("cart-abandoners", "Left a cart for a day", "all", [("abandoned_cart", "1")]),
]

PLACEMENTS = [
    # Recommendations: each placement's strategy, as staff would choose it in the admin.
    {
        "slug": "home-for-you",
        "name": "Home page: for you",
        "strategy": "auto",
        "recommendation_title": "Picked for you",
    },
    {
        "slug": "home-near-you",
        "name": "Home page: popular near you",
        "strategy": "popular_near_you",
        "recommendation_title": "Popular near you",
    },
    {
        "slug": "category-picks",
        "name": "Category page: top picks",
        "strategy": "auto",
        "recommendation_title": "Top picks for you here",
    },
    {
        "slug": "product-viewed-together",
        "name": "Product page: viewed together",
        "strategy": "viewed_together",
    },
    {
        "slug": "product-bought-together",
        "name": "Product page: bought together",
        "strategy": "bought_together",
    },
    {
        "slug": "cart-complete",
        "name": "Cart: complete your order",
        "strategy": "auto",
        "recommendation_title": "Complete your order",
    },
    {
        "slug": "order-confirmation",
        "name": "Order confirmation",
        "strategy": "auto",
        "recommendation_title": "You may also like",
    },
    {
        "slug": "home-hero",
        "name": "Home page hero",
        "default_title": "Nights under the stars, mornings with great coffee.",
        "default_body": "<p>Tents, trail gear and fresh-roasted beans, picked by people who "
        "actually use them. Free shipping on every order.</p>",
        "default_cta_text": "Shop camping",
        "default_cta_url": "/categories/camping/",
    },
    {
        "slug": "category-top",
        "name": "Top of category pages",
        "default_title": "",
        "default_body": "",
        "default_cta_text": "",
        "default_cta_url": "",
    },
]

BANNERS = [
    # placement, name, priority, segments, title, body, cta_text, cta_url
    ("home-hero", "Referred: a friend's gift", 60, ["referred-visitors"],
     "A friend sent you 10% off.",
     "<p>Welcome! Your friend's discount is waiting at checkout, ready to use on your "
     "first order.</p>", "Start shopping", "/categories/camping/"),
    ("home-hero", "Frequent buyers: thank you", 50, ["frequent-buyers"],
     "Thank you for being a regular.",
     "<p>Express shipping is on us for the rest of the year, no code needed.</p>",
     "See what's new", "/search/?q=new"),
    ("home-hero", "Camping fans: next trip", 40, ["camping-fans"],
     "Ready for your next trip?",
     "<p>Our most-loved tents, stoves and sleeping bags, packed and ready to ship today.</p>",
     "Camping bestsellers", "/categories/camping/?sort=price"),
    ("home-hero", "UK: fast delivery", 30, ["from-the-uk"],
     "Now delivering across the UK in 3 days.",
     "<p>Prices shown in euros, duties included: no surprises at the door.</p>",
     "Shop camping", "/categories/camping/"),
    ("home-hero", "Scandinavia: built for the north", 30, ["from-scandinavia"],
     "Gear for long northern nights.",
     "<p>Four-season tents and down sleeping bags rated to −20 °C, tested in the fjells.</p>",
     "Winter camping", "/categories/camping/"),
    ("home-hero", "North America: free shipping", 30, ["from-north-america"],
     "Free shipping to the US and Canada.",
     "<p>On every order over €75, delivered in about a week.</p>",
     "Browse the shop", "/search/?q=tent"),
    ("home-hero", "Returning: welcome back", 20, ["returning-visitors"],
     "Welcome back!",
     "<p>Good to see you again. Pick up where you left off, or see what came in since.</p>",
     "Continue shopping", "/categories/camping/"),
    ("home-hero", "First visit: welcome", 10, ["first-time-visitors"],
     "First time here? Welcome.",
     "<p>Outdoor gear and fresh-roasted coffee, chosen by people who use them. Sign up and "
     "your first order is 10% off.</p>", "Start with camping", "/categories/camping/"),
    ("category-top", "Camping fans: trip checklist", 40, ["camping-fans"],
     "Planning a trip? Don't forget the stove.",
     "<p>Camping fans also pick a gas cartridge and a headlamp: both ship today.</p>",
     "Camping essentials", "/categories/camping/"),
    ("category-top", "Cart waiting", 50, ["cart-abandoners"],
     "Your cart is still waiting.", "<p>We kept everything for you.</p>",
     "Go to your cart", "/cart/"),
]  # fmt: skip


def setup_targeting() -> tuple[int, int]:
    """Create the demo's segments, placements and banners once; returns (new segments, new
    banners). Staff's later edits are left alone."""
    from personalization.models import Banner, Placement, Segment, SegmentRule

    new_segments = new_banners = 0
    segments = {}
    for slug, name, match, rules in SEGMENTS:
        segment, created = Segment.objects.get_or_create(
            slug=slug, defaults={"name": name, "match": match}
        )
        if created:
            new_segments += 1
            for position, (kind, value) in enumerate(rules):
                SegmentRule.objects.create(
                    segment=segment, kind=kind, value=value, position=position
                )
        segments[slug] = segment
    placements = {}
    for spec in PLACEMENTS:
        placement, _ = Placement.objects.get_or_create(slug=spec["slug"], defaults=spec)
        placements[placement.slug] = placement
    for placement, name, priority, targets, title, body, cta_text, cta_url in BANNERS:
        banner, created = Banner.objects.get_or_create(
            placement=placements[placement],
            name=name,
            defaults={
                "priority": priority,
                "title": title,
                "body": body,
                "cta_text": cta_text,
                "cta_url": cta_url,
            },
        )
        if created:
            new_banners += 1
            banner.segments.set([segments[slug] for slug in targets])
    return new_segments, new_banners
