"""One module per `humact` subcommand (see `humact.cli`)."""
