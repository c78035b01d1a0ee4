//! The committed schema files are what the code produces, and a hand edit is caught.

use std::path::PathBuf;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema")
}

#[test]
fn the_committed_schema_files_match_the_code_and_compose() {
    draftr::schema::check(&schema_dir()).expect("run `draftr schema export` and commit");
}

#[test]
fn a_hand_edited_subgraph_sdl_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    draftr::schema::check(dir.path()).expect("an unedited copy passes");

    let auth = dir.path().join("auth.graphql");
    let edited = std::fs::read_to_string(&auth)
        .unwrap()
        .replace("displayName: String!", "displayName: String");
    std::fs::write(&auth, edited).unwrap();
    let err = draftr::schema::check(dir.path()).unwrap_err().to_string();
    assert!(err.contains("auth.graphql"), "{err}");
    assert!(
        !err.contains("supergraph.graphql"),
        "only the edited file is named: {err}"
    );
}
