"""One module per `sswp <stage>` subcommand: read inputs, run the engine, write outputs."""
