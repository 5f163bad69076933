"""What each sent mail actually was: subject, headers, HTML and text, compressed against an
earlier mail of the same template (``codec``), written with the batch's ``sent``
(``store``), read back for the console and the API, and pruned after
``ARCHIVE_RETENTION_DAYS``."""
