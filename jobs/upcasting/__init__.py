"""Upcasting: one-step payload migrations (`steps`) applied on read by one generic loop (`chain`)."""
