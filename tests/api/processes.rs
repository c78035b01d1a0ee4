//! The `draftr <part>` processes, as production runs them.

use std::time::Duration;

/// A part on its own verifies tokens against the revocation list in Redis: started without
/// Redis it refuses at once, naming the variable, instead of running with a private list that
/// no logout reaches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_refuses_to_start_without_redis_and_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for part in [
        "auth",
        "catalog",
        "reservations",
        "payments",
        "notifications",
    ] {
        let variable = format!("DRAFTR_{}__REDIS__URL", part.to_ascii_uppercase());
        let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftr"))
            .arg(part)
            .current_dir(dir.path())
            .env_remove(&variable)
            .env(
                format!("DRAFTR_{}__LISTEN", part.to_ascii_uppercase()),
                "127.0.0.1:0",
            )
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .unwrap_or_else(|_| panic!("draftr {part} kept running without Redis"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "draftr {part} started without Redis");
        assert!(stderr.contains(&variable), "draftr {part}: {stderr}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing was created before refusing"
    );
}

/// `draftr run` whose router address is taken stops at once and says why. It used to wait in
/// silence with every subgraph up and no router (found when a browser test's two random ports
/// came out the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draftr_run_whose_router_address_is_taken_exits_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let free = || "127.0.0.1:0".to_owned();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftr"))
        .args(["run", "--no-demo", "--data-dir"])
        .arg(dir.path())
        .args(["--listen", &addr])
        .args(["--auth-listen", &free(), "--catalog-listen", &free()])
        .args([
            "--reservations-listen",
            &free(),
            "--payments-listen",
            &free(),
        ])
        .args(["--notifications-listen", &free()])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("draftr run kept waiting for a router that cannot start")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("the router could not start") && stderr.contains("in use"),
        "{stderr}"
    );
    drop(taken);
}
