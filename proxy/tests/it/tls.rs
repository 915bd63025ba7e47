use crate::support::{client, edge::Edge, free_port, one_route, upstream::Upstream};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;

/// Writes a self-signed certificate for `host` into `dir` and returns its PEM.
fn self_signed(dir: &Path, host: &str) -> String {
    // A distinct subject per certificate: OpenSSL finds trust anchors by subject name.
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, host);
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    std::fs::write(dir.join(format!("{host}.pem")), &pem).unwrap();
    std::fs::write(dir.join(format!("{host}.key")), key.serialize_pem()).unwrap();
    pem
}

struct TlsEdge {
    edge: Edge,
    tls_port: u16,
    redirect_port: u16,
    certs: Vec<String>,
    _upstream: Upstream,
}

fn start() -> TlsEdge {
    let u = Upstream::start("u");
    let (tls_port, redirect_port) = (free_port(), free_port());
    let mut certs = Vec::new();
    let edge = Edge::start_with(&one_route(&[u.addr()], ""), |dir, _| {
        certs.push(self_signed(dir, "a.example"));
        certs.push(self_signed(dir, "b.example"));
        format!(
                "[[listener]]\naddress = \"127.0.0.1:{tls_port}\"\n\
                 [[listener.certificate]]\ncert = \"a.example.pem\"\nkey = \"a.example.key\"\nhosts = [\"a.example\"]\n\
                 [[listener.certificate]]\ncert = \"b.example.pem\"\nkey = \"b.example.key\"\nhosts = [\"b.example\"]\n\
                 [[listener]]\naddress = \"127.0.0.1:{redirect_port}\"\nredirect_https_port = {tls_port}\n"
            )
    });
    assert!(crate::support::wait_for_port(
        tls_port,
        std::time::Duration::from_secs(5)
    ));
    TlsEdge {
        edge,
        tls_port,
        redirect_port,
        certs,
        _upstream: u,
    }
}

/// A client that trusts only our two certificates and resolves both names to the edge.
fn tls_client(t: &TlsEdge, http1_only: bool) -> reqwest::Client {
    let addr: SocketAddr = ([127, 0, 0, 1], t.tls_port).into();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .resolve("a.example", addr)
        .resolve("b.example", addr);
    for pem in &t.certs {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

#[tokio::test]
async fn sni_selects_the_certificate_and_alpn_offers_http2() {
    let t = start();
    for host in ["a.example", "b.example"] {
        // verification fails unless the edge served the certificate for this very name
        let resp = tls_client(&t, false)
            .get(format!("https://{host}:{}/x", t.tls_port))
            .send()
            .await;
        let resp = resp.unwrap_or_else(|e| panic!("{host}: {e:?}\n{}", t.edge.logs()));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), reqwest::Version::HTTP_2, "{host} over h2");
        assert!(resp.headers().contains_key("x-request-id"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["server"], "u");
    }
    let resp = tls_client(&t, true)
        .get(format!("https://a.example:{}/x", t.tls_port))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn plain_listener_redirects_to_https() {
    let t = start();
    let resp = client()
        .get(format!(
            "http://127.0.0.1:{}/movies?page=2",
            t.redirect_port
        ))
        .header("host", "a.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://a.example:{}/movies?page=2", t.tls_port)
    );
    assert!(resp.headers().contains_key("x-request-id"));
    // the main plain listener is not redirected
    assert_eq!(
        client()
            .get(t.edge.url("/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// On a TLS listener a connection holds its slot of `max_connections_per_client` from accept
/// to close, whether or not it ever sends a request (a client dribbling a ClientHello or a
/// header, or an idle HTTP/2 connection, cannot hold more).
#[test]
fn tls_connections_hold_their_slot_from_accept_to_close() {
    use std::io::{ErrorKind, Read};
    use std::net::TcpStream;
    use std::time::Duration;
    let u = Upstream::start("u");
    let tls_port = free_port();
    let edge = Edge::start_full(
        "max_connections_per_client = 2",
        &one_route(&[u.addr()], ""),
        |dir, _| {
            self_signed(dir, "a.example");
            format!(
                "[[listener]]\naddress = \"127.0.0.1:{tls_port}\"\n\
                 [[listener.certificate]]\ncert = \"a.example.pem\"\nkey = \"a.example.key\"\nhosts = [\"a.example\"]\n"
            )
        },
    );
    assert!(crate::support::wait_for_port(
        tls_port,
        Duration::from_secs(5)
    ));
    let open = || {
        let s = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(800)))
            .unwrap();
        s
    };
    // the server closed `s`: EOF or reset
    let closed = |s: &mut TcpStream| {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    };
    // two connections that never say a word keep their slots...
    let mut first = open();
    let mut second = open();
    std::thread::sleep(Duration::from_millis(200));
    // ... so a third is dropped at once
    let mut third = open();
    assert!(closed(&mut third), "a full network is refused");
    assert!(
        !closed(&mut first) && !closed(&mut second),
        "the silent ones stay"
    );
    // closing one gives its slot back
    drop(first);
    let mut ok = false;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let mut s = open();
        if !closed(&mut s) {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "a closed connection's slot is free again\n{}",
        edge.logs()
    );
    drop(second);
}

/// A certificate for `host` with its own subject `cn` (OpenSSL tells trust anchors apart by
/// subject), as (cert PEM, key PEM).
fn issue(host: &str, cn: &str) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

/// Replaces a file the way renewal tools do: write aside, then rename over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn trusting(t: &TlsEdge, pems: &[&str]) -> reqwest::Client {
    let addr: SocketAddr = ([127, 0, 0, 1], t.tls_port).into();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .resolve("a.example", addr)
        .resolve("c.example", addr);
    for pem in pems {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Whether `client` (trusting only some certificates) gets a 200 from `url` within 10 s.
async fn served_within_10s(client: &reqwest::Client, url: &str) -> bool {
    for _ in 0..100 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// A renewal under load (cert-manager, certbot): the files change in place, new handshakes
/// get the new certificate, established connections go on, no request fails; a broken pair
/// is refused and the last good one keeps serving; a certificate added in the conf is served
/// after a reload, without a restart.
#[tokio::test]
async fn a_renewed_certificate_is_served_without_dropping_anything() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let t = start();
    let dir = t.edge.conf_dir();
    let url = |host: &str| format!("https://{host}:{}/x", t.tls_port);
    let (new_pem, new_key) = issue("a.example", "a.example renewed");
    let old_only = trusting(&t, &[&t.certs[0]]);
    let new_only = trusting(&t, &[&new_pem]);
    // one HTTP/2 connection opened before the renewal, trusting only the old certificate
    assert_eq!(
        old_only
            .get(url("a.example"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // load: a fresh connection (a full handshake) per request, from clients trusting both
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (old, new, target) = (t.certs[0].clone(), new_pem.clone(), url("a.example"));
        let addr: SocketAddr = ([127, 0, 0, 1], t.tls_port).into();
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let c = reqwest::Client::builder()
                    .no_proxy()
                    .resolve("a.example", addr)
                    .add_root_certificate(reqwest::Certificate::from_pem(old.as_bytes()).unwrap())
                    .add_root_certificate(reqwest::Certificate::from_pem(new.as_bytes()).unwrap())
                    .build()
                    .unwrap();
                match c.get(&target).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // the renewal: key and certificate replaced one after the other, as two files
    replace(&dir.join("a.example.key"), &new_key);
    replace(&dir.join("a.example.pem"), &new_pem);
    let renewed = served_within_10s(&new_only, &url("a.example")).await;
    assert!(
        renewed,
        "the renewed certificate was never served\n{}",
        t.edge.logs()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(ok.load(Ordering::Relaxed) > 10, "the load ran");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the renewal"
    );
    // the connection opened before is still up (a new handshake would fail: this client
    // trusts only the old certificate) ...
    assert_eq!(
        old_only
            .get(url("a.example"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // ... while a new connection trusting only the old one is refused
    assert!(trusting(&t, &[&t.certs[0]])
        .get(url("a.example"))
        .send()
        .await
        .is_err());
    assert!(t.edge.logged("TLS certificates reloaded").await);

    // a key that does not belong to the certificate: refused, the renewed pair keeps serving
    let (_, stray_key) = issue("a.example", "stray");
    replace(&dir.join("a.example.key"), &stray_key);
    assert!(
        crate::support::eventually(std::time::Duration::from_secs(10), || {
            t.edge
                .logs()
                .contains("a.example.key does not belong to the certificate")
        })
        .await,
        "{}",
        t.edge.logs()
    );
    let fresh = trusting(&t, &[&new_pem]);
    assert_eq!(
        fresh.get(url("a.example")).send().await.unwrap().status(),
        200
    );
    replace(&dir.join("a.example.key"), &new_key);

    // a certificate added to the conf: served after the reload
    let (c_pem, c_key) = issue("c.example", "c.example");
    std::fs::write(dir.join("c.example.pem"), &c_pem).unwrap();
    std::fs::write(dir.join("c.example.key"), &c_key).unwrap();
    let edge_toml = std::fs::read_to_string(dir.join("edge.toml")).unwrap();
    let added = edge_toml.replace(
        "hosts = [\"b.example\"]\n",
        "hosts = [\"b.example\"]\n[[listener.certificate]]\ncert = \"c.example.pem\"\nkey = \"c.example.key\"\nhosts = [\"c.example\"]\n",
    );
    assert_ne!(added, edge_toml);
    replace(&dir.join("edge.toml"), &added);
    let c_client = trusting(&t, &[&c_pem]);
    let served = served_within_10s(&c_client, &url("c.example")).await;
    assert!(
        served,
        "the added certificate was never served\n{}",
        t.edge.logs()
    );
}
