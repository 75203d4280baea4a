"""`nft -j list ruleset` JSON, of any origin, into explain's typed ruleset."""
