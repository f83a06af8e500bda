//! tally engine
