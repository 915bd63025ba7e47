//! The harness itself: the real servers start, answer and stop.

use crate::support::{postgres::Postgres, redis::Redis, wait_for_port};
use std::time::Duration;

#[test]
fn redis_starts_answers_and_stops() {
    let redis = Redis::start();
    assert_eq!(redis.cli(&["PING"]), "PONG");
    assert_eq!(
        redis.cli(&[
            "EVAL",
            "return redis.call('TIME')[1] ~= nil and 1 or 0",
            "0"
        ]),
        "1"
    );
    let port = redis.port;
    drop(redis);
    assert!(
        !wait_for_port(port, Duration::from_millis(300)),
        "redis still listening after drop"
    );
}

#[test]
fn postgres_starts_answers_and_stops() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2").unwrap(), "42");
    pg.psql("postgres", "CREATE DATABASE edge_test").unwrap();
    assert_eq!(
        pg.psql("edge_test", "SELECT current_database()").unwrap(),
        "edge_test"
    );
    let port = pg.port;
    drop(pg);
    assert!(
        !wait_for_port(port, Duration::from_millis(300)),
        "postgres still listening after drop"
    );
}
