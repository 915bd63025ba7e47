//! The partitioned schema: every hot query touches one partition, with a plan made for the
//! literal values and with the generic plan a prepared statement ends up using.

use crate::support::auth::AuthStack;

/// Partitions of `parent` named in an EXPLAIN of `query`.
fn scanned(s: &AuthStack, query: &str, parent: &str) -> Vec<String> {
    let plan = s.sql(&format!("EXPLAIN (COSTS OFF) {query}"));
    let mut found: Vec<String> = plan
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(&format!("{parent}_")) && !w.ends_with("_pkey"))
        .filter(|w| !w.starts_with(&format!("{parent}_user")))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// With the generic plan of a prepared statement, pruning happens at execution: the plan
/// says how many partitions were removed.
fn generic_plan(s: &AuthStack, prepare: &str, execute: &str) -> String {
    s.sql(&format!(
        "SET plan_cache_mode = force_generic_plan; {prepare}; EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {execute}"
    ))
}

#[tokio::test]
async fn hot_queries_touch_one_partition() {
    let s = AuthStack::start();
    let id = s.create_user("ann@example.com", &["subscriber"]);

    // login: email -> id, then the user
    let p = scanned(
        &s,
        "SELECT user_id FROM credentials WHERE email = 'ann@example.com'",
        "credentials",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    let p = scanned(
        &s,
        &format!("SELECT * FROM users WHERE id = '{id}'"),
        "users",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    let p = scanned(
        &s,
        &format!("SELECT role FROM user_roles WHERE user_id = '{id}'"),
        "user_roles",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    let p = scanned(
        &s,
        "SELECT user_id FROM social_accounts WHERE provider = 'vk' AND subject = '42'",
        "social_accounts",
    );
    assert_eq!(p, ["social_accounts_vk"]);

    // and with generic plans: 15 of 16 hash partitions removed at run time
    let plan = generic_plan(
        &s,
        "PREPARE by_email(text) AS SELECT user_id FROM credentials WHERE email = $1",
        "EXECUTE by_email('ann@example.com')",
    );
    assert!(plan.contains("Subplans Removed: 15"), "{plan}");
    let plan = generic_plan(
        &s,
        "PREPARE by_id(uuid) AS SELECT * FROM users WHERE id = $1",
        &format!("EXECUTE by_id('{id}')"),
    );
    assert!(plan.contains("Subplans Removed: 15"), "{plan}");
    // the login lookup finds the row in the one partition it reads
    assert_eq!(
        s.sql("SELECT count(*) FROM credentials WHERE email = 'ann@example.com'"),
        "1"
    );
}

#[tokio::test]
async fn login_history_is_monthly_and_pages_prune_newer_months() {
    let s = AuthStack::start();
    // this month and three ahead exist, plus the default; creating them again is a no-op
    let months = s.sql(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'login_history'::regclass \
         AND inhrelid::regclass::text <> 'login_history_default'",
    );
    assert_eq!(months, "4");
    assert_eq!(s.sql("SELECT ensure_login_history_partitions(3)"), "0");
    // a month created from the past for a backfill
    let made =
        s.sql("SELECT ensure_login_history_partitions(3, (now() - interval '2 months')::date)");
    assert_eq!(made, "2");

    let this_month = s.sql("SELECT 'login_history_' || to_char(now(), 'YYYY_MM')");
    let next_month =
        s.sql("SELECT 'login_history_' || to_char(now() + interval '1 month', 'YYYY_MM')");
    let now = s.sql("SELECT now()::text");
    let page = format!(
        "SELECT * FROM login_history WHERE user_id = '01890000-0000-7000-8000-000000000000' \
         AND occurred_at <= '{now}' AND (occurred_at, id) < ('{now}', 'ffffffff-ffff-ffff-ffff-ffffffffffff') \
         ORDER BY occurred_at DESC, id DESC LIMIT 21"
    );
    let p = scanned(&s, &page, "login_history");
    assert!(p.contains(&this_month), "{p:?}");
    assert!(!p.contains(&next_month), "a future month is scanned: {p:?}");

    // rows land in their month's partition
    s.sql(
        "INSERT INTO login_history (id, occurred_at, success, method, device) \
         VALUES ('01890000-0000-7000-8000-000000000001', now(), true, 'password', 'web')",
    );
    assert_eq!(s.sql(&format!("SELECT count(*) FROM {this_month}")), "1");
    assert_eq!(s.sql("SELECT count(*) FROM login_history_default"), "0");
}

#[tokio::test]
async fn unique_rules_hold_across_partitions() {
    let s = AuthStack::start();
    let a = s.create_user("ann@example.com", &[]);
    let b = s.create_user("bob@example.com", &[]);
    // the same (provider, subject) for two users, and one email for two users: refused
    s.sql(&format!(
        "INSERT INTO social_accounts (provider, subject, user_id) VALUES ('google', 's1', '{a}')"
    ));
    let dup = s.pg.psql(
        "edge",
        &format!("INSERT INTO social_accounts (provider, subject, user_id) VALUES ('google', 's1', '{b}')"),
    );
    assert!(dup.unwrap_err().contains("duplicate key"));
    let dup = s.pg.psql(
        "edge",
        &format!("INSERT INTO credentials (email, user_id) VALUES ('ann@example.com', '{b}')"),
    );
    assert!(dup.unwrap_err().contains("duplicate key"));
    // an unknown provider lands in the default partition
    s.sql(&format!(
        "INSERT INTO social_accounts (provider, subject, user_id) VALUES ('keycloak', 'k1', '{a}')"
    ));
    assert_eq!(
        s.sql("SELECT provider FROM social_accounts_default"),
        "keycloak"
    );
}
