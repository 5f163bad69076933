"""What a value must be to be safe where it goes, checked where it comes in: JSON both databases
store (``strict_json``), numbers and moments that fit (``bounds``), links a mail may carry
(``links``), text a mail header can hold and the header lines written from it
(``mail_headers``). Pure: no I/O."""
