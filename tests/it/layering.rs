//! The modules of `src/` are layers: each may import only the layers below
//! it, so the graph of `crate::` imports is a DAG. `ARCHITECTURE.md` draws
//! the layers and says what each owns; [`LAYERS`] is that order, and this
//! test fails on any import that points sideways or up, naming the file and
//! line. A new top-level module must be placed in [`LAYERS`] before the
//! build is green again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, lowest first. A module may import only
/// modules that come before it.
const LAYERS: &[&str] = &[
    // Leaves: they know nothing of routing.
    "text",
    "units",
    "secret",
    "json",
    "sse",
    "openai",
    "cache",
    "h1",
    "quota",
    // The layers of the request path, from the wire up.
    "telemetry",
    "shared",
    "upstream",
    "providers",
    "routing",
    "forward",
    "gateway",
    "config",
    "server",
    // The fuzzing harness (doc-hidden) reaches into any layer.
    "fuzzing",
];

/// One import that breaks the order.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` imports `{}`, which is not below it",
            self.file, self.line, self.from, self.to
        )
    }
}

/// The module path of a file under `src/`: `a/b.rs` is `[a, b]`,
/// `a/mod.rs` is `[a]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_owned());
        }
    }
    parts
}

/// Source text with comments and string literals blanked (same length, so
/// line numbers hold): a path in a doc comment or an error message is not
/// an import.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, b: u8| out.push(if b == b'\n' { b'\n' } else { b' ' });
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let end = text[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |e| i + 2 + e + 2);
            while i < end {
                blank(&mut out, bytes[i]);
                i += 1;
            }
        } else if rest.starts_with(b"r#\"") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&b| b == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            let end = text[start..]
                .find(&close)
                .map_or(bytes.len(), |e| start + e + close.len());
            while i < end {
                blank(&mut out, bytes[i]);
                i += 1;
            }
        } else if bytes[i] == b'"' && !(i > 0 && bytes[i - 1] == b'\'') {
            out.push(b' ');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                let step = if bytes[i] == b'\\' { 2 } else { 1 };
                for _ in 0..step {
                    if i < bytes.len() {
                        blank(&mut out, bytes[i]);
                        i += 1;
                    }
                }
            }
            if i < bytes.len() {
                out.push(b' ');
                i += 1;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first segments of the items in a `{...}` group starting at `open`.
fn group_heads(code: &str, open: usize) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item = true;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                depth += 1;
                at_item = depth == 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            b',' if depth == 1 => at_item = true,
            b if at_item && (b.is_ascii_alphabetic() || b == b'_') => {
                let end = code[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(code.len(), |e| i + e);
                heads.push((i, code[i..end].to_owned()));
                at_item = false;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// Byte ranges of the inline `mod name { … }` blocks in `code`: a
/// `super::` inside one climbs out of it before it climbs out of the file.
fn inline_modules(code: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = code.as_bytes();
    let mut ranges = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &code[at + 4..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let after = rest[name_len..].trim_start();
        if name_len == 0 || !after.starts_with('{') {
            continue;
        }
        let open = code.len() - after.len();
        let mut depth = 0;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        ranges.push(open..i);
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    ranges
}

/// Every top-level module `file` (at `module`) names through `crate::` or
/// through enough `super::` to reach the crate root, with its byte offset.
fn imports(module: &[String], code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let ident_end = |from: usize| {
        code[from..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(code.len(), |e| from + e)
    };
    let preceded_by_ident = |at: usize| {
        code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for (at, _) in code.match_indices("crate::") {
        if preceded_by_ident(at) {
            continue;
        }
        let after = at + "crate::".len();
        if code[after..].starts_with('{') {
            found.extend(group_heads(code, after));
        } else {
            found.push((at, code[after..ident_end(after)].to_owned()));
        }
    }
    let inline = inline_modules(code);
    for (at, _) in code.match_indices("super::") {
        if preceded_by_ident(at) {
            continue;
        }
        let mut climbs = 0;
        let mut i = at;
        while code[i..].starts_with("super::") {
            climbs += 1;
            i += "super::".len();
        }
        let depth = module.len() + inline.iter().filter(|r| r.contains(&at)).count();
        if climbs == depth {
            if code[i..].starts_with('{') {
                found.extend(group_heads(code, i));
            } else {
                found.push((at, code[i..ident_end(i)].to_owned()));
            }
        }
    }
    found.retain(|(_, name)| !name.is_empty());
    found
}

/// Every import in `files` (path under `src/`, text) that breaks [`LAYERS`],
/// and every module [`LAYERS`] does not place.
fn violations(files: &[(PathBuf, String)]) -> (Vec<Violation>, BTreeSet<String>) {
    let mut wrong = Vec::new();
    let mut unplaced = BTreeSet::new();
    for (path, text) in files {
        let module = module_path(path);
        let Some(top) = module.first() else { continue };
        if top == "main" || top == "lib" {
            continue;
        }
        let Some(rank) = LAYERS.iter().position(|l| l == top) else {
            unplaced.insert(top.clone());
            continue;
        };
        let code = code_only(text);
        for (at, target) in imports(&module, &code) {
            if target == *top || target == "self" {
                continue;
            }
            let allowed = LAYERS
                .iter()
                .position(|l| *l == target)
                .is_some_and(|r| r < rank);
            if !allowed {
                wrong.push(Violation {
                    file: path.display().to_string(),
                    line: code[..at].matches('\n').count() + 1,
                    from: top.clone(),
                    to: target,
                });
            }
        }
    }
    (wrong, unplaced)
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push((relative, text));
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let mut files = Vec::new();
    rust_files(&src(), &src(), &mut files);
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let (wrong, unplaced) = violations(&files);
    assert!(
        unplaced.is_empty(),
        "top-level modules missing from LAYERS (place them in the order, and in ARCHITECTURE.md): {unplaced:?}"
    );
    let report: Vec<String> = wrong.iter().map(ToString::to_string).collect();
    assert!(
        report.is_empty(),
        "imports that point up or sideways (see ARCHITECTURE.md for the layers):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_checker_sees_upward_and_sideways_imports() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_owned());
    let files = [
        file("json/mod.rs", "use crate::text;\n// crate::gateway in a comment\n"),
        file("sse/mod.rs", "let s = \"crate::server\";\nuse crate::{text, routing::Table};\n"),
        file("routing/plan.rs", "use super::super::forward::Outcome;\nuse super::table::Table;\n"),
        file("gateway/error.rs", "fn f() -> crate::config::Loaded { todo!() }\n"),
        file("newthing.rs", "use crate::text;\n"),
        file("units.rs", "fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::config::X;\n}\n"),
    ];
    let (wrong, unplaced) = violations(&files);
    let seen: Vec<(String, usize, String)> =
        wrong.into_iter().map(|v| (v.file, v.line, v.to)).collect();
    assert_eq!(
        seen,
        [
            ("sse/mod.rs".to_owned(), 2, "routing".to_owned()),
            ("routing/plan.rs".to_owned(), 1, "forward".to_owned()),
            ("gateway/error.rs".to_owned(), 1, "config".to_owned()),
            ("units.rs".to_owned(), 5, "config".to_owned()),
        ]
    );
    assert_eq!(unplaced, BTreeSet::from(["newthing".to_owned()]));
}
