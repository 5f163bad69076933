"""Sending one mail: the mail model and its RFC 5322 form (``mail``), the protocol every
transport follows (``base``), one module per transport (``outbox``, ``smtp``, ``sendgrid``),
the factory ``STEPMAIL_MAIL_TRANSPORT`` picks from (``factory``) and the send-rate limit
(``rate_limit``). Transports know nothing of the store or the schedule."""
