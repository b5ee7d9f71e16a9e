"""The app's models, one module per family: visitors, targeting, offers, measurement, email."""

from .email import EmailCampaign, EmailFlow, EmailRecipient, EmailSend
from .jobs import JobRun, SharedState
from .measurement import (
    Conversion,
    Event,
    Exposure,
    ReportCell,
    ReportCellPart,
    ReportRollup,
    ReportVisitorState,
)
from .offers import Coupon, ReferralCode, Signup
from .recommendations import ProductInteraction, RecommendationList
from .targeting import Banner, Placement, PlacementRule, Segment, SegmentRule
from .visitors import SOURCE_CHOICES, Visitor

__all__ = [
    "SOURCE_CHOICES",
    "Banner",
    "Conversion",
    "Coupon",
    "EmailCampaign",
    "EmailFlow",
    "EmailRecipient",
    "EmailSend",
    "Event",
    "Exposure",
    "JobRun",
    "Placement",
    "PlacementRule",
    "ProductInteraction",
    "RecommendationList",
    "ReferralCode",
    "ReportCell",
    "ReportCellPart",
    "ReportRollup",
    "ReportVisitorState",
    "Segment",
    "SegmentRule",
    "SharedState",
    "Signup",
    "Visitor",
]
