"""Alert rules: the ``alerts:`` section of config.yaml (``config``), their checks (``rules``) and the
e-mails and webhook calls that tell people (``notifiers``)."""
