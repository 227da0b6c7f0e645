"""Cloud entry points: ``scf_web`` (SCF web / image function: uvicorn on 0.0.0.0:9000), ``scf_event``
(SCF event function behind API gateway: event dict in, response dict out) and ``aws_lambda`` (API
Gateway HTTP API v2 events through Mangum). All are configured by ``LLMFN_*`` environment variables
(see ``functions.settings``)."""
