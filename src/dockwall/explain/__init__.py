"""`dockwall explain`: simulates a connection through the host's live netfilter rules.

`netfilter` is the typed ruleset both front ends parse into (`iptables/` reads
iptables-save and ipset save, `nft/` reads `nft -j`); `live` gathers a `LiveHost`
(its `LiveRuleset`, addresses, routes, containers); `evaluate` decides one condition
against a packet, `traverse` walks one hook's chains, `flow` one packet's trip through
the host, `simulate` the connection (first packet and reply). `output` prints the result.
Its parsers are its own, not the backends': it must read rules of any origin.
"""
