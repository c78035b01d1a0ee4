//! Draftr as one program: the embedded default (every part in one process), the stack builder
//! it, the end-to-end tests and the benches share ([`stack`]), and the tools around it (schema
//! export and check, migrations, admin bootstrap).
#![forbid(unsafe_code)]

pub mod demo;
pub mod embedded;
pub mod schema;
pub mod stack;
