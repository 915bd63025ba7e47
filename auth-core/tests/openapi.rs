//! The committed contract (`docs/openapi.json`) must be what the code generates, so a change
//! to an endpoint cannot land without its contract. Regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p auth-core --test openapi`.

use std::path::PathBuf;

#[test]
fn committed_openapi_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let generated = auth_core::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the code; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p auth-core --test openapi` and review the diff"
    );
    // and it is the document it claims to be
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/auth/login",
        "/auth/refresh",
        "/auth/me/history",
        "/auth/users/{id}/roles/{name}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}
