"""Signed webhooks fed from the journal: registration, delivery with retries, dead letters."""
