//! Draftr as one program: the embedded default (every part in one process), and the tools
//! around it (schema export and check, migrations, admin bootstrap).
#![forbid(unsafe_code)]

pub mod demo;
pub mod embedded;
pub mod schema;
