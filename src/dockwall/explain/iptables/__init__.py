"""iptables-save and ipset save text, of any origin, into explain's typed ruleset."""
