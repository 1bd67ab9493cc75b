//! The inbound translation tests, one file per concern.
