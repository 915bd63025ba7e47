//! The committed contract (`docs/openapi.json`) against the running edge and core:
//! schemathesis (PyPI, installed by `make test`) generates requests from the document —
//! valid, invalid and edge-case ones — with a signed-in account for the protected
//! operations, and checks every answer (status declared, content type, body schema, no
//! server error). The rate limits are on, as shipped: their 429s are part of the contract.

use crate::support::auth::{AuthStack, Options, PASSWORD};
use crate::support::smtp::SmtpSink;
use std::path::Path;
use std::process::Command;

/// The auth routes and limits of `conf/auth.toml` and `conf/limits.toml`.
const ROUTES: &str = r#"
[[route]]
name = "activate"
path = "/activate"
upstream = "auth"
limits = ["auth-activate"]
[[route]]
name = "device-code"
path = "/auth/device/code"
upstream = "auth"
limits = ["auth-oauth"]
[[route]]
name = "auth-login"
path = "/auth/login"
upstream = "auth"
limits = ["auth-login"]
[[route]]
name = "auth-register"
path = "/auth/register"
upstream = "auth"
limits = ["auth-register"]
[[route]]
name = "auth-refresh"
path = "/auth/refresh"
upstream = "auth"
limits = ["auth-refresh"]
[[route]]
name = "auth-password"
path = "/auth/password"
upstream = "auth"
limits = ["auth-mail"]
[[route]]
name = "auth-email"
path = "/auth/email/confirm"
upstream = "auth"
limits = ["auth-mail"]
[limit.auth-login]
key = "ip"
rate = "10/m"
burst = 5
[limit.auth-oauth]
key = "ip"
rate = "30/m"
burst = 10
[limit.auth-activate]
key = "ip"
rate = "30/m"
burst = 10
[limit.auth-register]
key = "ip"
rate = "5/m"
burst = 3
[limit.auth-refresh]
key = "ip"
rate = "30/m"
burst = 10
[limit.auth-mail]
key = "ip"
rate = "10/m"
burst = 5
"#;

const DEVICE: &str = "[auth.device]\nverification_uri = \"http://127.0.0.1/activate\"\n\
    clients = [{ id = \"cinema-tv\", name = \"Cinema for Smart TV\" }]\n";

const SOCIAL: &str = "[social]\npublic_url = \"{edge}\"\n\
    [social.provider.yandex]\nclient_id = \"contract-yandex\"\n\
    [social.provider.google]\nclient_id = \"contract-google\"\n";

#[tokio::test]
async fn the_running_edge_and_core_answer_as_the_committed_contract_says() {
    let sink = SmtpSink::start();
    let routes = format!("{ROUTES}{DEVICE}{}", sink.conf(""));
    let s = AuthStack::start_with(Options {
        auth_extra: "token_cookie = \"access_token\"",
        routes_extra: &routes,
        social: SOCIAL,
        ..Default::default()
    });
    let r = s.register("contract@example.com", PASSWORD).await;
    assert_eq!(r.status(), 201);
    // every sign-in first: schemathesis spends the login route's limit (10/min) fuzzing it
    s.create_user("root@example.com", &["admin"]);
    let admin = s.login("root@example.com", PASSWORD).await;
    let admin = admin["access_token"].as_str().unwrap();
    let first = s.login("contract@example.com", PASSWORD).await;
    let access = first["access_token"].as_str().unwrap();
    let second = s.login("contract@example.com", PASSWORD).await;
    let access_to_end = second["access_token"].as_str().unwrap();
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    // what ends the session runs last, with its own sign-in: the rest keeps a live token
    let ending = [
        "--include-path",
        "/auth/logout",
        "--include-path",
        "/auth/logout-all",
    ];
    let ending_too = ["--include-path-regex", "^/auth/sessions/"];
    let mut args: Vec<&str> = vec![
        "--exclude-path",
        "/auth/logout",
        "--exclude-path",
        "/auth/logout-all",
    ];
    args.extend(["--exclude-path-regex", "^/auth/sessions/"]);
    schemathesis(&doc, &s.url(""), access, &args);
    let mut args = ending.to_vec();
    args.extend(ending_too);
    schemathesis(&doc, &s.url(""), access_to_end, &args);
    // the admin operations with an admin's token (a viewer's only ever gets 403)
    let only_admin = ["--include-path-regex", "^/auth/(roles|users/)"];
    schemathesis(&doc, &s.url(""), admin, &only_admin);
}

/// One schemathesis run with every check; fails the test on any finding.
fn schemathesis(doc: &Path, base: &str, access: &str, filter: &[&str]) {
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let report = tempfile::tempdir().unwrap();
    // through python3, not the console script: pip may put that off PATH (~/.local/bin)
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        ])
        .arg("--config-file")
        .arg(peers.join("schemathesis.toml"))
        .arg("run")
        .arg(doc)
        .args(["--url", base])
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {access}")])
        .args([
            "--max-examples",
            "40",
            "--seed",
            "20261201",
            "--workers",
            "2",
        ])
        .args(["--request-timeout", "10"])
        .args(filter)
        // schemathesis keeps a cache in its working directory: not in the source tree
        .current_dir(report.path())
        .arg("--report-dir")
        .arg(report.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis: run `make test`, which installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "schemathesis found answers the contract does not declare (above)"
    );
    assert!(
        text.contains(" passed"),
        "the run reached the operations: {text}"
    );
}
