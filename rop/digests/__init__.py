"""Scheduled digests: the report comes to the reader (docs/DIGESTS.md).

A subscription (subscriptions.py) says who gets which relative period, when
in their own time zone (schedule.py) and through which channels. content.py
builds the digest from the same report engine in the reader's own scope;
chat.py and mail.py render and send it; sends.py makes each slot go out
once (a store row per slot), with retries and a delivery log; run.py ties
them together as ``send_due_digests`` for the server's scheduler and a
periodic job.
"""
