"""Tools for people writing journeys and trying Stepmail: ``stepmail check`` and ``preview``
(sample renders), sample customers, ``stepmail simulate`` and ``make signup``."""
