"""Code shared by the pipeline's Lambda functions, shipped whole in every function zip.

- :mod:`lambda_common.key_validation`: the one S3 object key validator (trigger, writer) and the
  folder-marker rule (trigger, reconcile tool);
- :mod:`lambda_common.contract`: the trigger -> state machine -> writer input, declared once;
- :mod:`lambda_common.naming`: the deterministic execution name of an object version (trigger,
  reconcile tool);
- :mod:`lambda_common.alerts`: alert formatting (trigger, security monitor);
- :mod:`lambda_common.errors`: ``ConfigurationError``, the one error every function raises at load
  when its environment lacks a setting it cannot run without.

Every module depends on the standard library only; the packager copies this directory into each
zip as ``lambda_common/``, so the handlers import ``lambda_common.<module>`` in a zip exactly as
in the repository.
"""
