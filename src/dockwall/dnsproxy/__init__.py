"""dockwall's DNS forwarder: containers' DNS in, learned addresses into the firewall.

`answers` reads a DNS answer (pure), `learned` remembers what was learned and until
when (persisted under the run dir), `kernelsets` writes it into the backend's sets,
`forwarder` is the asyncio UDP/TCP server the agent hosts (`service`).
"""
