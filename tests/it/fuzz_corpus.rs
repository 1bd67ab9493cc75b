//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! properties the fuzz targets check (`switchyard::fuzzing`): a short,
//! deterministic fuzz smoke on every test run. The campaigns themselves
//! run with `cargo fuzz` (docs/fuzzing.md).

use std::path::Path;

fn replay(target: &str, property: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| property(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its property",
            path.display()
        );
        inputs += 1;
    }
    assert!(inputs > 0, "{target}: the corpus is empty");
}

#[test]
fn the_inspect_splice_corpus_holds() {
    replay("inspect_splice", switchyard::fuzzing::inspect_and_splice);
}

#[test]
fn the_sse_chunking_corpus_holds() {
    replay("sse_chunking", switchyard::fuzzing::sse_chunking);
}

#[test]
fn the_http_response_corpus_holds() {
    replay("http_response", switchyard::fuzzing::http_response);
}

#[test]
fn the_usage_corpus_holds() {
    replay("usage", switchyard::fuzzing::usage);
}

#[test]
fn the_config_corpus_holds() {
    replay("config", switchyard::fuzzing::config);
}

#[test]
fn the_translate_corpus_holds() {
    replay("translate", switchyard::fuzzing::translate);
}
