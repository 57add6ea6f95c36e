"""What the simulated event store knows about event types: stream type, newest schema version,
and the extras a newer producer might send. Kept apart from `jobs.events.catalog` on purpose: the
simulator plays the external producer and must not depend on the project's reading side (nor on Spark).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

# event type -> (stream type, newest schema version of the published contract).
EVENT_TYPES: Mapping[str, tuple[str, int]] = MappingProxyType(
    {
        "CustomerRegistered": ("customer", 2),
        "CustomerEmailChanged": ("customer", 1),
        "MarketingConsentChanged": ("customer", 1),
        "CustomerErasureRequested": ("customer", 1),
        "SessionStarted": ("session", 1),
        "ProductViewed": ("session", 1),
        "ExperimentExposed": ("session", 1),
        "CartItemAdded": ("cart", 2),
        "CartItemRemoved": ("cart", 1),
        "OrderCreated": ("order", 3),
        "PromotionApplied": ("order", 1),
        "OrderConfirmed": ("order", 1),
        "PaymentCaptured": ("order", 1),
        "OrderShipped": ("order", 1),
        "OrderDelivered": ("order", 1),
        "OrderCancelled": ("order", 1),
        "OrderRefunded": ("order", 1),
        "EmailCampaignSent": ("campaign", 1),
        "EmailOpened": ("campaign", 1),
        "EmailClicked": ("campaign", 1),
        "CampaignSpendRecorded": ("campaign", 1),
    }
)


def newest_version(event_type: str) -> int:
    return EVENT_TYPES[event_type][1]


# Types a newer producer already sends in a version the contract does not describe yet:
# newest + 1, with one extra payload field (name, possible values).
FUTURE_VERSION_EXTRAS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        "OrderCreated": ("fulfilment_center", ("DE-BER-1", "DE-HAM-2", "NL-AMS-1", "GB-MAN-1")),
        "CartItemAdded": ("size", ("XS", "S", "M", "L", "XL")),
        "CustomerRegistered": ("preferred_language", ("de", "en", "fr", "nl", "it")),
        "SessionStarted": ("user_agent_family", ("chrome", "safari", "firefox", "edge")),
        "PaymentCaptured": ("psp_reference", ("adyen", "stripe", "mollie")),
    }
)

# Event types of a future release, one per stream type, so that each stream kind carries some.
UNKNOWN_EVENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "customer": "LoyaltyTierChanged",
        "session": "WishlistItemAdded",
        "cart": "CartShared",
        "order": "OrderNoteAdded",
        "campaign": "CampaignBudgetChanged",
    }
)

# Types whose schema version changes during a run, with the versions that get a switch date.
SWITCHABLE_VERSIONS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        event_type: tuple(range(2, newest + 1))
        for event_type, (_, newest) in EVENT_TYPES.items()
        if newest > 1
    }
)
