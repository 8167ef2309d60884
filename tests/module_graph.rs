//! The house has no cycles: every reference from one top-level module of `src/` to another
//! (`crate::x` in code, `use` lines, paths and doc links alike, tests included) points down
//! the pipeline's order, which ARCHITECTURE.md documents:
//!
//! prefetch ← capture ← decode ← analyze, telemetry ← output ← pipeline ← replay, daemon, aggregate ← config ← main
//!
//! A module may name only modules below it; modules side by side (`analyze` and `telemetry`,
//! `replay` and `daemon`) name neither each other. A new arrow up (say `analyze` reading `config`) fails here with the
//! file and line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Rank of each top-level module: a module may refer only to modules of a lower rank.
const ORDER: &[(&str, u32)] = &[
    ("prefetch", 0),
    ("capture", 1),
    ("decode", 2),
    ("analyze", 3),
    ("telemetry", 3),
    ("output", 4),
    ("pipeline", 5),
    ("replay", 6),
    ("daemon", 6),
    ("aggregate", 6),
    ("config", 7),
];

fn rank(module: &str) -> Option<u32> {
    ORDER.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

/// The top-level modules `text` refers to through `crate::` (or, in a file directly under
/// `src/`, through `super::`), each with its line number.
fn references(text: &str, top_level_file: bool) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut prefixes = vec!["crate::"];
        if top_level_file {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                // `mycrate::` is not `crate::`.
                let before = rest[..at].chars().next_back();
                rest = &rest[at + prefix.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                if let Some(group) = rest.strip_prefix('{') {
                    found.extend(group_heads(group).into_iter().map(|m| (m, n + 1)));
                } else {
                    let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    found.push((head, n + 1));
                }
            }
        }
    }
    found
}

/// The first name of each item of a `{a::b, c, d::{e, f}}` group (`group` starts after `{`;
/// a group left open at the end of the line gives the items on that line).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    let mut current = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && (c.is_alphanumeric() || c == '_') => current.push(c),
            _ if at_item_start && !current.is_empty() => {
                heads.push(std::mem::take(&mut current));
                at_item_start = false;
            }
            _ => {}
        }
    }
    if !current.is_empty() {
        heads.push(current);
    }
    heads
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every reference that does not point down, as `file:line: from -> to`.
fn upward_references(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let first = parts.next().expect("a file name");
        let module = first.trim_end_matches(".rs").to_string();
        // lib.rs declares the modules; main.rs and other binaries sit above them all.
        let Some(own) = rank(&module) else { continue };
        let top_level_file = relative.components().count() == 1 || relative.ends_with(format!("{module}/mod.rs"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (target, line) in references(&text, top_level_file) {
            if target == module {
                continue;
            }
            match rank(&target) {
                Some(r) if r < own => {}
                Some(_) => wrong.push(format!("{}:{line}: {module} -> {target}", file.display())),
                None => {} // an item of the crate root (a macro, a re-export)
            }
        }
    }
    wrong
}

#[test]
fn every_reference_between_top_level_modules_points_down_the_pipeline() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = upward_references(&src);
    assert!(wrong.is_empty(), "references against the module order:\n{}", wrong.join("\n"));
    // The modules this test ranks are the crate's modules: a new one must be placed.
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let ranked: BTreeSet<&str> = ORDER.iter().map(|&(m, _)| m).collect();
    assert_eq!(declared, ranked, "src/lib.rs's modules and this test's order differ");
}

#[test]
fn the_check_sees_each_form_of_reference() {
    let text = "use crate::config::Prefix;\n\
                use crate::{decode::IpKey, output::{alert, sink}};\n\
                let p = crate::daemon::run();\n\
                /// See [`crate::replay`].\n\
                use mycrate::config;\n";
    let found: Vec<(String, usize)> = references(text, false);
    let names: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["config", "decode", "output", "daemon", "replay"]);
    assert_eq!(found[3].1, 3);
    assert_eq!(references("use super::config;", true)[0].0, "config");
    assert!(references("use super::config;", false).is_empty());
}
