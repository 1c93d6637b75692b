"""Probes: scheduled reachability, reverse-DNS and blocklist checks (issue 4).

They will read targets from and write observations through ipam/, and only
ever send packets inside the configured probe scope (DESIGN.md, invariant 7).
"""
