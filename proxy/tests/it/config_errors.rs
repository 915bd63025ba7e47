use crate::support::edge::{base_conf, check};
use std::process::Command;

fn conf_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn check_lists_every_problem_with_file_and_key() {
    let dir = conf_dir(&[
        (
            "edge.toml",
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[log]\nformat = \"xml\"\n",
        ),
        (
            "movies.toml",
            "[upstream.movies]\nservers = [\"127.0.0.1:2\"]\nread_timeout = \"soon\"\n",
        ),
        (
            "routes.toml",
            "[[route]]\nname = \"m\"\npath = \"/m\"\nupstream = \"moviez\"\n",
        ),
    ]);
    let (code, out) = check(dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("3 problem(s)"), "{out}");
    assert!(
        out.contains("edge.toml: log.format: \"xml\" is not one of"),
        "{out}"
    );
    assert!(
        out.contains("movies.toml: upstream.movies.read_timeout: \"soon\" is not a duration"),
        "{out}"
    );
    assert!(
        out.contains(
            "routes.toml: route[0].upstream: unknown upstream \"moviez\" (defined: movies)"
        ),
        "{out}"
    );
}

#[test]
fn check_reports_syntax_errors_and_unknown_keys_of_every_file() {
    let dir = conf_dir(&[
        ("edge.toml", "[[listener]]\naddress = \"127.0.0.1:1\"\n"),
        (
            "movies.toml",
            "[upstream.movies]\nservers = [\"127.0.0.1:2\"]\nread_timout = \"1s\"\n",
        ),
        ("broken.toml", "[[route]\n"),
    ]);
    let (code, out) = check(dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("2 problem(s)"), "{out}");
    assert!(
        out.contains("movies.toml: upstream.movies.read_timout: unknown field `read_timout`")
            && out.contains("(line 3)"),
        "{out}"
    );
    assert!(
        out.contains("broken.toml: ") && out.contains("(line 1)"),
        "{out}"
    );
}

#[test]
fn check_accepts_the_shipped_conf() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let (code, out) = check(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": ok ("), "{out}");
}

#[test]
fn run_refuses_to_start_on_a_bad_conf() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_conf(dir.path());
    std::fs::write(dir.path().join("edge.toml"), format!("{base}\n[[listener]]\naddress = \"127.0.0.1:1\"\n[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"none\"\n")).unwrap();
    let out = Command::new(crate::support::edge::binary())
        .args(["run", "--conf"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to start") && stderr.contains("route[0].upstream"),
        "{stderr}"
    );
}

#[test]
fn version_and_help() {
    let out = Command::new(crate::support::edge::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("edge "),
        "{out:?}"
    );
    let out = Command::new(crate::support::edge::binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}
