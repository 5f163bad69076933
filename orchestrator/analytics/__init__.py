"""Journey analytics: daily rollups per journey, step, tier and language, kept by a periodic
job from the rows that changed (``rollups``, with what each row counts for in ``counters``),
conversion and unsubscribe attribution (``attribution``), and the read models the console and
the read API show: funnels (``funnel``), the overview (``overview``) and a customer's
enrollments and sends (``customers``)."""
