"""dcsim: a simulation model of the DCS."""
