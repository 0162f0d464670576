"""Domain types: money, currencies, identifiers and offline limits."""
