"""Who a customer is, as pure data: the facts conditions and templates read, the touch tier,
time zones, the fields a customer record accepts and the changes a patch makes. No I/O."""
