"""Campaigns: an inventory of phones, a runner, a crash-safe store, a report."""
