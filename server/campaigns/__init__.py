"""Campaigns: visits planned for the accounts of an area and filters (docs/campaigns.md)."""
