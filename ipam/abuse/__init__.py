"""The abuse desk (clauses 7-14, 19 and the closing paragraph).

formats.py  complaint formats (ARF, X-ARF, CSV, Spamhaus DROP) into plain records
ingest.py   store each record with its bytes, attribute it at the time of the
            event, and open or join a case; unreadable input to the rejected store
"""
