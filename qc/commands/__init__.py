"""One thin module per verb: parse options, build the objects, run. No logic lives here."""
