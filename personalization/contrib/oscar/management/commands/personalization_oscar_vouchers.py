"""``manage.py personalization_oscar_vouchers``: make Oscar vouchers of the coupons issued
before personalization.contrib.oscar was installed (new coupons get theirs at once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from personalization.contrib.oscar import vouchers
from personalization.models import Coupon


class Command(BaseCommand):
    help = "Create or update the Oscar voucher of every coupon that can still be used."

    def handle(self, *args: Any, **options: Any) -> None:
        usable = Coupon.objects.filter(redeemed_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        synced = skipped = 0
        for coupon in usable.iterator():
            if vouchers.sync_voucher(coupon) is None:
                skipped += 1
            else:
                synced += 1
        self.stdout.write(f"{synced} coupons are Oscar vouchers; {skipped} codes are taken.")
