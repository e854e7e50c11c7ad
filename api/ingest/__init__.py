"""The webhook receiver's logic: envelope checks, instance authentication, metrics, landing in bronze.

``api/routes/webhooks.py`` is the thin HTTP layer over :class:`api.ingest.receiver.Receiver`.
"""
