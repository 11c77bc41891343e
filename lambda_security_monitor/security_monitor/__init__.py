"""The security monitor's layers, each a module the handler (``index.py``) walks through:

- :mod:`security_monitor.config`: the environment, read and validated once into a ``MonitorConfig``;
- :mod:`security_monitor.access`: every AWS read, paginated and retried, and the clients;
- :mod:`security_monitor.classify`: pure functions from an AWS answer to a finding, exemptions included;
- :mod:`security_monitor.scan`: every bucket and table checked by a bounded pool of threads;
- :mod:`security_monitor.report`: the returned report, the log lines, the alert and the metrics.

No module keeps state of its own: the handler creates the logger, the metrics and the clients once
per container and passes them in. The packager ships this folder at the zip root beside ``index.py``.
"""
