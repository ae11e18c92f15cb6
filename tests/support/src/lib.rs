//! What tests and benches need beside the crates they test, kept out of
//! them so that the release binary never links it: the scripted
//! OpenAI-compatible server ([`mock`]).

pub mod mock;
