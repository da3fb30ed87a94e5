"""Point-in-time fundamentals: alignment to the daily panel, TTM, QoQ and YoY views."""

from quantdask.fundamentals.pit import AS_OF_CHOICES, align, pit_views, views_panel
from quantdask.fundamentals.ttm import change, latest, ttm, yoy

__all__ = ["AS_OF_CHOICES", "align", "change", "latest", "pit_views", "ttm", "views_panel", "yoy"]
