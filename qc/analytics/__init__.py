"""Pure numerical library: numpy in, numpy/dataclasses out, time passed in, no Redis."""
