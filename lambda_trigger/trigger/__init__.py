"""The trigger's layers, each a module the handler (``index.py``) walks through:

- :mod:`trigger.config`: the environment, read and validated once into a ``TriggerConfig``, and
  the clients' settings;
- :mod:`trigger.events`: parse and validate: the invocation's event, a queue message's body, one
  S3 notification record and its origin;
- :mod:`trigger.run`: what the messages of one invocation share (clients, settings, clock, logger)
  and what each came to;
- :mod:`trigger.start`: StartExecution under a deterministic name, throttles waited out while the
  invocation has time, duplicates told from failures;
- :mod:`trigger.process`: one record, one event's records, one queue message;
- :mod:`trigger.report`: the summaries, the batch's one alert and the metrics;
- :mod:`trigger.invocation`: the two entry points, a direct S3 event and a queue batch.

No module keeps state of its own: the handler creates the logger, the metrics, the clients, the
batch processor and the clock once per container and passes them in. The packager ships this
folder at the zip root beside ``index.py``.
"""
