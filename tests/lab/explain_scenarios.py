"""Rulesets and policies the explain differential test runs, and the ports it probes.

Kept apart from the test so each file stays one concern: this is the data, the test
is the comparison with real traffic.
"""

from __future__ import annotations

from dockwall.lab import topology as t

# Published by `quiet`, a container that runs no listener: Docker DNATs them, nothing answers.
QUIET_PORTS = {"7072/tcp": 7072, "7073/udp": 7073}
LOOPBACK_ONLY = 7074  # a host listener bound to 127.0.0.1: refused from outside
DUAL_STACK = 7075  # a host listener on [::] without IPV6_V6ONLY: takes IPv4 too
INBOUND = (
    ("8080", "tcp"), ("8053", "udp"), ("5432", "tcp"), (str(t.HOST_SERVICE_PORT), "tcp"),
    (str(t.HOST_SERVICE_PORT), "udp"), ("7070", "tcp"), ("7071", "udp"), ("7072", "tcp"),
    ("7073", "udp"), (str(LOOPBACK_ONLY), "tcp"), (str(DUAL_STACK), "tcp"),
    (str(DUAL_STACK), "udp"),
)  # fmt: skip
CONTAINERS = ("web", "db", "worker")

ARTICLE_INPUT = """*filter
-A INPUT -s 192.0.2.100/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8080 -j DROP
-A INPUT -i docker0 -p tcp -m tcp --dport 2222 -j DROP
COMMIT
"""
ARTICLE_INPUT6 = """*filter
-A INPUT -s 2001:db8:100::100/128 -p tcp -m tcp --dport 2222 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 2222 -j DROP
COMMIT
"""
DOCKER_USER_DROP = """*filter
-I DOCKER-USER -d 0.0.0.0/0 -j DROP
COMMIT
"""
UFW_LIKE = """*filter
:ufw-user-forward - [0:0]
-I DOCKER-USER -j ufw-user-forward
-A ufw-user-forward -s 192.0.2.100/32 -p tcp -m tcp --dport 80 -j RETURN
-A ufw-user-forward -i br-+ -j RETURN
-A ufw-user-forward -p udp -m udp --dport 53 -j RETURN
-A ufw-user-forward -i uplink -j DROP
COMMIT
"""
ORIG_8080 = "-m conntrack --ctorigdstport 8080 --ctdir ORIGINAL"
DOCKWALL_LIKE = f"""*filter
:DOCKWALL-INGRESS - [0:0]
:DOCKWALL-EGRESS - [0:0]
-I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -i uplink -m comment --comment dockwall -g DOCKWALL-INGRESS
-A DOCKER-USER ! -i uplink -o uplink -m comment --comment dockwall -j DOCKWALL-EGRESS
-A DOCKWALL-INGRESS -s 192.0.2.0/24 -p tcp {ORIG_8080} -j RETURN
-A DOCKWALL-INGRESS -p udp -m conntrack --ctorigdstport 8000:8100 --ctdir ORIGINAL -j RETURN
-A DOCKWALL-INGRESS -m comment --comment dockwall -j DROP
-A DOCKWALL-EGRESS -d 203.0.113.0/24 -p tcp -m tcp --dport 400:500 -j RETURN
-A DOCKWALL-EGRESS -p udp -m udp --dport 53 -j RETURN
-A DOCKWALL-EGRESS -j DROP
COMMIT
"""
DOCKWALL_LIKE6 = f"""*filter
:DOCKER-USER - [0:0]
:DOCKWALL-INGRESS - [0:0]
-I FORWARD -j DOCKER-USER
-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A DOCKER-USER -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j RETURN
-A DOCKER-USER -i uplink -j DOCKWALL-INGRESS
-A DOCKER-USER ! -i uplink -o uplink -p tcp -m tcp --dport 80 -j DROP
-A DOCKWALL-INGRESS -s 2001:db8:200::/48 -p tcp {ORIG_8080} -j RETURN
-A DOCKWALL-INGRESS -j DROP
COMMIT
"""
# REJECT rules of every kind the issue names, on the host (INPUT), on published ports
# (DOCKER-USER sees them DNATed, so the original port is matched by conntrack) and on
# egress; sources are picked so that some probes hit them and others do not.
REJECT_V4 = f"""*filter
-I INPUT -s 192.0.2.7/32 -p tcp -m tcp --dport 2222 -j REJECT --reject-with tcp-reset
-I INPUT -s 198.51.100.7/32 -p udp -m udp --dport 2222 -j REJECT --reject-with icmp-port-unreachable
-I INPUT -s 203.0.113.20/32 -p tcp -m tcp --dport {DUAL_STACK} -j REJECT --reject-with icmp-host-prohibited
-I INPUT -s 203.0.113.20/32 -p udp -m udp --dport {DUAL_STACK} -j REJECT --reject-with icmp-host-unreachable
-I INPUT -s 203.0.113.10/32 -p udp -m udp --dport {DUAL_STACK} -j REJECT --reject-with icmp-admin-prohibited
-I DOCKER-USER -s 203.0.113.10/32 -p tcp {ORIG_8080} -j REJECT --reject-with tcp-reset
-I DOCKER-USER -s 198.51.100.7/32 -p udp -m conntrack --ctorigdstport 8053 --ctdir ORIGINAL -j REJECT --reject-with icmp-port-unreachable
-I DOCKER-USER -s 192.0.2.100/32 -p tcp -m conntrack --ctorigdstport 5432 --ctdir ORIGINAL -j REJECT
-I DOCKER-USER -i br-+ -o uplink -p tcp -m tcp --dport 443 -j REJECT --reject-with tcp-reset
-I DOCKER-USER -i docker0 -o uplink -p udp -m udp --dport 53 -j REJECT
COMMIT
"""
REJECT_V6 = """*filter
-I INPUT -s 2001:db8:200::7/128 -p tcp -m tcp --dport 2222 -j REJECT --reject-with tcp-reset
-I INPUT -s 2001:db8:100::100/128 -p udp -m udp --dport 2222 -j REJECT
-I FORWARD -s 2001:db8:203::10/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset
-I FORWARD -o uplink -p tcp -m tcp --dport 443 -j REJECT --reject-with icmp6-port-unreachable
-I INPUT -s 2001:db8:203::20/128 -p tcp -m tcp --dport 7075 -j REJECT --reject-with icmp6-adm-prohibited
-I INPUT -s 2001:db8:203::20/128 -p udp -m udp --dport 7075 -j REJECT --reject-with icmp6-addr-unreachable
COMMIT
"""
# The same in a native nftables table that runs before the iptables chains (priority -10);
# forward sees the DNATed container port, so it matches 80 and 53, not 8080 and 8053.
NFT_REJECT = f"""table inet dwreject {{
  chain input {{
    type filter hook input priority -10; policy accept;
    ip saddr 192.0.2.7 tcp dport 2222 reject with tcp reset
    ip6 saddr 2001:db8:200::7 tcp dport 2222 reject with tcp reset
    ip saddr 198.51.100.7 udp dport 2222 reject
    ip6 saddr 2001:db8:100::100 udp dport 2222 reject with icmpv6 type port-unreachable
    ip saddr 203.0.113.20 tcp dport {DUAL_STACK} reject with icmp type port-unreachable
    ip6 saddr 2001:db8:203::20 tcp dport 7075 reject with icmpv6 type admin-prohibited
    ip6 saddr 2001:db8:203::20 udp dport 7075 reject with icmpx type no-route
    ip saddr 203.0.113.20 udp dport 7075 reject with icmp type net-unreachable
    ip saddr 203.0.113.10 udp dport 7075 reject with icmpx type admin-prohibited
    ip saddr 203.0.113.10 udp dport 7071 drop
  }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip saddr 203.0.113.10 tcp dport 80 reject with tcp reset
    ip6 saddr 2001:db8:203::10 tcp dport 80 reject with icmpx type port-unreachable
    ip saddr 198.51.100.7 udp dport 53 reject
    oifname "uplink" tcp dport 443 reject with tcp reset
    iifname "docker0" oifname "uplink" udp dport 53 reject with icmpx type port-unreachable
  }}
}}
"""
SCENARIOS = {
    "docker": ("", ""),
    "article-input": (ARTICLE_INPUT, ARTICLE_INPUT6),
    "docker-user-drop": (DOCKER_USER_DROP, ""),
    "ufw-like": (UFW_LIKE, ""),
    "dockwall-like": (DOCKWALL_LIKE, DOCKWALL_LIKE6),
    "reject-iptables": (REJECT_V4, REJECT_V6),
}
NFT_SCENARIOS = {"reject-nftables": NFT_REJECT}
# Random probes seldom hit one source and one port, so the REJECT scenarios also send
# one probe at each rule (source, destination, family) and a few near misses.
AIMED = (
    ("192.0.2.7", "host:2222/tcp", 4), ("198.51.100.7", "host:2222/udp", 4),
    ("203.0.113.20", "host:7075/tcp", 4), ("203.0.113.10", "host:8080/tcp", 4),
    ("198.51.100.7", "host:8053/udp", 4), ("192.0.2.100", "host:5432/tcp", 4),
    ("container:worker", "203.0.113.10:443/tcp", 4), ("container:web", "192.0.2.100:53/udp", 4),
    ("container:db", "[2001:db8:203::10]:443/tcp", 6), ("2001:db8:200::7", "host:2222/tcp", 6),
    ("2001:db8:100::100", "host:2222/udp", 6), ("2001:db8:203::10", "host:8080/tcp", 6),
    ("2001:db8:203::20", "host:7075/tcp", 6), ("203.0.113.10", "host:7071/udp", 4),
    ("192.0.2.100", "host:2222/tcp", 4), ("192.0.2.7", "host:2222/udp", 4),
    ("2001:db8:203::20", "host:7075/udp", 6), ("203.0.113.20", "host:7075/udp", 4),
    ("203.0.113.10", "host:7075/udp", 4), ("192.0.2.7", "host:7075/udp", 4),
)  # fmt: skip
AIMED_AT = {"reject-iptables": AIMED, "reject-nftables": AIMED}

INGRESS_ALLOWLIST = """\
version: 1
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        from: [192.0.2.0/24, "2001:db8:100::/48"]
  - name: db
    ingress:
      - {port: 5432/tcp, from: [203.0.113.10, "2001:db8:203::10"]}
"""
DEFAULT_DENY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress:
      - {port: 8053/udp, from: [any]}
"""
EGRESS_ALLOWLIST = """\
version: 1
containers:
  - compose: {project: shop, service: worker}
    egress:
      - {to: [203.0.113.0/24, "2001:db8:203::/48"], port: 443/tcp}
      - {to: [203.0.113.20/32, "2001:db8:203::20"], port: 53/udp}
  - name: web
    egress:
      - {to: [192.0.2.0/24, "2001:db8:100::/48"], port: 80/tcp}
"""
EGRESS_DENY = """\
version: 1
defaults: {egress: deny}
containers:
  - name: db
    egress:
      - {to: [198.51.100.0/24, "2001:db8:ffff::/64"], port: 2222/tcp}
"""
# Long allowlists: more than ipsets.THRESHOLD networks of each family, so the iptables
# backend matches them with `-m set --match-set`. They hold some of the lab's internet
# addresses (192.0.2.100, .7, 203.0.113.10, 2001:db8:100::100, 2001:db8:203::10) and
# leave out the others, some by a near miss (198.51.100.128/25, 2001:db8:200:8000::/49).
SET_V4 = (
    "192.0.2.0/25", "203.0.113.10", "10.0.0.0/8", "100.64.0.0/10", "198.18.0.0/15",
    "203.0.113.64/26", "198.51.100.128/25", "192.168.100.0/24", "233.252.0.0/24",
    "11.0.0.0/8", "1.1.1.1", "8.8.8.0/24",
)  # fmt: skip
SET_V6 = (
    "2001:db8:100::/48", "2001:db8:203::10", "fd00::/8", "2001:db8:aaaa::/48",
    "2001:db8:bbbb::/48", "2001:db8:cccc::/64", "2001:db8:200:8000::/49", "2001:db8:dddd::1",
    "2001:db8:eeee::/56", "2001:db8:1234::/48", "2002::/16", "64:ff9b::/96",
)  # fmt: skip
SET_LIST = ", ".join(f'"{cidr}"' for cidr in SET_V4 + SET_V6)
IPSET_ALLOWLISTS = f"""\
version: 1
containers:
  - name: web
    ingress:
      - {{port: 8080/tcp, from: [{SET_LIST}]}}
    egress:
      - {{to: [{SET_LIST}]}}
  - name: db
    ingress:
      - {{port: 5432/tcp, from: [{SET_LIST}]}}
  - compose: {{project: shop, service: worker}}
    egress:
      - {{to: [{SET_LIST}], ports: [443/tcp, 53/udp, 80/tcp]}}
"""
POLICIES = {
    "ingress-allowlist": INGRESS_ALLOWLIST,
    "default-deny-ingress": DEFAULT_DENY,
    "egress-allowlist": EGRESS_ALLOWLIST,
    "egress-deny": EGRESS_DENY,
    "ipset-allowlists": IPSET_ALLOWLISTS,
}
