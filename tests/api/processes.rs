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
