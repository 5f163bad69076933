"""Enrolling a customer: the signup payload and its signature, storing the customer once and
compiling each journey into schedule rows, and ending an enrollment."""
