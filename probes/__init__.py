"""Probes: how addresses are really used (clause 19).

netns.py    enter a network namespace for the network phase of a probe
scope.py    PROBE_SCOPE: the only addresses a probe may send to
sweep.py    ICMP echo and TCP SYN sweeps on raw sockets (scapy-built templates)
dnscheck.py PTR, forward-confirmation and blocklist checks, many queries in flight
runner.py   one probe run: targets from ipam/, network phase, results back to ipam/
scheduler.py APScheduler jobs, one scheduler at a time (a lease in the database)
lab.py      the network-namespace lab the tests, benchmarks and demo probe
"""
