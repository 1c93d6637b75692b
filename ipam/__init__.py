"""The ipam domain: the address ledger, its history and its rules.

Every change goes through one function here that validates, writes and audits
in the caller's transaction; callers (web, CLI, probes) commit at their boundary.
"""
