//! Native router plugins. Each registers itself with `register_plugin!` and is enabled in
//! `router.yaml` under `plugins:`.

pub mod limits;
pub mod request_id;

/// Referenced by binaries so the linker keeps the plugin registrations of this crate.
pub fn ensure_registered() {
    limits::ensure_linked();
    request_id::ensure_linked();
}
