//! The attack suite: each test is a way through the edge's promises that once worked, tried
//! as an attacker would, against the real binary and real upstreams.
//!
//! - `paths`: encodings and path tricks against a required route, with an axum and a FastAPI
//!   (Starlette) upstream;
//! - `limits`: the order of checks (junk tokens, TV floods), per-user keys, IPv6 networks;
//! - `lockout`: failing on purpose must not lock the owner out; revocation outlives tokens.

mod limits;
mod lockout;
mod paths;
