use crate::support::{client, edge::Edge, eventually, upstream::Upstream};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn routes(a: &Upstream, b: &Upstream, extra_route: Option<&str>) -> String {
    let extra = extra_route.map_or(String::new(), |p| {
        format!("[[route]]\nname = \"extra\"\npath = \"{p}\"\nupstream = \"b\"\n")
    });
    format!(
        "[[route]]\nname = \"main\"\npath = \"/\"\nupstream = \"a\"\n{extra}\
         [upstream.a]\nservers = [\"{}\"]\n[upstream.b]\nservers = [\"{}\"]\n",
        a.addr(),
        b.addr()
    )
}

async fn server_of(edge: &Edge, path: &str) -> Option<String> {
    let resp = client().get(edge.url(path)).send().await.ok()?;
    let body: Value = resp.json().await.ok()?;
    body["server"].as_str().map(str::to_string)
}

#[tokio::test]
async fn a_changed_file_is_reloaded_under_load_with_no_failed_request() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&routes(&a, &b, None));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), edge.url("/load"));
        workers.push(tokio::spawn(async move {
            let c = client();
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    // flip the extra route on and off repeatedly while the load runs
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        edge.write_routes(&routes(&a, &b, (round % 2 == 0).then_some("/extra")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(
        failed, 0,
        "{failed} requests failed during reloads ({ok} succeeded)"
    );
    assert!(ok > 100, "too little load to mean anything: {ok}");
    let reloads = edge
        .json_logs()
        .iter()
        .filter(|l| l["message"] == "configuration reloaded")
        .count();
    assert!(
        reloads >= 5,
        "expected the edge to reload on each change, saw {reloads}\n{}",
        edge.logs()
    );

    // the last version (round 5: no extra route) is what serves now
    assert_eq!(server_of(&edge, "/extra").await.as_deref(), Some("a"));
    edge.write_routes(&routes(&a, &b, Some("/extra")));
    assert!(
        eventually_async(|| server_of(&edge, "/extra"), "b").await,
        "new route not picked up"
    );
}

async fn eventually_async<F, Fut>(mut f: F, want: &str) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    for _ in 0..100 {
        if f().await.as_deref() == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn sighup_reloads_even_when_watching_is_off() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start_full("watch = false\n", &routes(&a, &b, None), |_, _| {
        String::new()
    });
    edge.write_routes(&routes(&a, &b, Some("/extra")));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        server_of(&edge, "/extra").await.as_deref(),
        Some("a"),
        "with watch = false a file change alone must not reload"
    );
    edge.signal("HUP");
    assert!(
        eventually_async(|| server_of(&edge, "/extra"), "b").await,
        "SIGHUP must reload"
    );
}

#[tokio::test]
async fn a_bad_reload_is_refused_and_the_old_routes_keep_serving() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&routes(&a, &b, Some("/extra")));
    assert_eq!(server_of(&edge, "/extra").await.as_deref(), Some("b"));
    edge.write_routes(
        "[[route]]\nname = \"broken\"\npath = \"/\"\nupstream = \"missing\"\nbogus_key = 1\n",
    );
    let refused = eventually(Duration::from_secs(5), || {
        edge.json_logs().iter().any(|l| {
            l["message"] == "configuration refused; the previous one keeps serving"
                && l["problems"]
                    .as_str()
                    .is_some_and(|p| p.contains("routes.toml") && p.contains("bogus_key"))
        })
    })
    .await;
    assert!(refused, "{}", edge.logs());
    for _ in 0..10 {
        assert_eq!(server_of(&edge, "/extra").await.as_deref(), Some("b"));
    }
    edge.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server_of(&edge, "/extra").await.as_deref(),
        Some("b"),
        "SIGHUP with a bad conf keeps the old one"
    );
}

/// Writes `name` in the edge's conf dir (whole, by rename) and waits for the reload it causes.
async fn reload_with(edge: &Edge, name: &str, text: &str, reloads: &mut usize) {
    let tmp = edge.conf_dir().join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, edge.conf_dir().join(name)).unwrap();
    *reloads += 1;
    let want = *reloads;
    let done = eventually(Duration::from_secs(5), || {
        edge.logs().matches("configuration reloaded").count() >= want
    })
    .await;
    assert!(
        done,
        "reload {want} of {name} did not happen:\n{}",
        edge.logs()
    );
}

/// The last value of `field` in the logs (`pending`: restart sections named by a reload,
/// `applied`: live sections it changed).
fn last_logged(edge: &Edge, field: &str) -> String {
    edge.json_logs()
        .iter()
        .rev()
        .find_map(|l| l[field].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Every section of the conf is live (the reload applies it and names it as applied) or read
/// at start (the reload names it as pending at every reload, and the running value stays).
#[tokio::test]
async fn each_section_is_either_live_or_named_as_waiting_for_a_restart() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let edge = Edge::start(&routes(&a, &b, None));
    let mut reloads = 0;
    // live: a route, a limit, [client_ip], [metrics], [rate_limit], [bot_filter]
    reload_with(
        &edge,
        "routes.toml",
        &routes(&a, &b, Some("/extra")),
        &mut reloads,
    )
    .await;
    assert_eq!(server_of(&edge, "/extra/x").await.as_deref(), Some("b"));
    assert_eq!(last_logged(&edge, "applied"), "[[route]]");
    let live = "[rate_limit]\nreplicas = 2\nbreaker_failures = 7\n\
                [client_ip]\nheader = \"x-real-ip\"\nipv4_prefix = 24\n\
                [metrics]\nallow = [\"10.0.0.0/8\"]\n";
    reload_with(&edge, "live.toml", live, &mut reloads).await;
    let r = client()
        .get(edge.url("/_edge/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "[metrics] allow reloaded: loopback no longer allowed"
    );
    assert_eq!(
        last_logged(&edge, "applied"),
        "[rate_limit]; [client_ip]; [metrics]"
    );
    // the bot filter, added to a running edge, screens the next request; removed, it stops
    let deny_all = "[bot_filter]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
                    [[bot_filter.rule]]\nname = \"all\"\naction = \"deny\"\n";
    reload_with(&edge, "bot.toml", deny_all, &mut reloads).await;
    let r = client().get(edge.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 403, "[bot_filter] added by a reload applies");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "bot_denied"
    );
    reload_with(&edge, "bot.toml", "", &mut reloads).await;
    assert_eq!(server_of(&edge, "/x").await.as_deref(), Some("a"));
    assert_eq!(
        last_logged(&edge, "pending"),
        "",
        "live changes are not pending"
    );

    // read once at start: each is named, and the running value stays
    let cases: [(&str, &str, &str); 5] = [
        ("log.toml", "", "[log]"), // [log] is in edge.toml: edited below
        (
            "redis.toml",
            "[redis]\nurl = \"redis://127.0.0.1:1/\"\n",
            "[redis]",
        ),
        (
            "tracing.toml",
            "[tracing]\nendpoint = \"http://127.0.0.1:1\"\n",
            "[tracing]",
        ),
        // [rate_limit] may appear once across the dir: live.toml's gains a key
        (
            "live.toml",
            "local_capacity = 1000\n",
            "[rate_limit] local_capacity",
        ),
        (
            "listener.toml",
            "[[listener]]\naddress = \"127.0.0.1:1\"\n",
            "[[listener]]",
        ),
    ];
    for (file, text, named) in cases {
        if file == "log.toml" {
            // to "warn": were it applied, the INFO "configuration reloaded" lines that
            // reload_with waits for would stop, and the next cases would time out
            let conf = std::fs::read_to_string(edge.conf_dir().join("edge.toml")).unwrap();
            let warn = conf.replace("level = \"info\"", "level = \"warn\"");
            reload_with(&edge, "edge.toml", &warn, &mut reloads).await;
        } else if file == "live.toml" {
            let text = live.replace("replicas = 2\n", &format!("replicas = 2\n{text}"));
            reload_with(&edge, "live.toml", &text, &mut reloads).await;
        } else {
            reload_with(&edge, file, text, &mut reloads).await;
        }
        let pending = last_logged(&edge, "pending");
        assert!(
            pending.contains(named),
            "{file}: {named} not named in {pending:?}"
        );
    }
    // still served through the listener the edge started with
    assert_eq!(server_of(&edge, "/x").await.as_deref(), Some("a"));
}
