//! The repository stands on its own: a clone builds and tests without anything beside it, and
//! the files its users look for are there and agree with the version.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the repository worth reading (no build output, no VCS data).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "node_modules") {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_refers_to_files_outside_the_repository() {
    // Spelled in pieces, so this file does not match itself.
    let outside = [
        concat!("..", "/shared"),
        concat!("shared", "/fixtures"),
        concat!("DESIGN", ".md"),
    ];
    let mut all = Vec::new();
    files(&root(), &mut all);
    assert!(all.len() > 50, "walked the repository: {} files", all.len());
    let mut found = Vec::new();
    for path in &all {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue; // binary
        };
        for needle in outside {
            for (n, line) in text.lines().enumerate() {
                if line.contains(needle) {
                    found.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(root()).unwrap_or(path).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to files outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn recorded_api_responses_are_in_the_repository() {
    let dir = root().join("tests/fixtures/k8s-api");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).expect("SOURCES.md");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "SOURCES.md" {
            n += 1;
            // Every file is accounted for in SOURCES.md (some rows name a group of files).
            let stem = name.split('.').take(2).collect::<Vec<_>>().join(".");
            assert!(sources.contains(&stem), "{name} is not in SOURCES.md");
        }
    }
    assert!(n >= 30, "{n} fixtures");
}

#[test]
fn license_and_changelog_agree_with_cargo_toml() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"MIT\""));
    let license = std::fs::read_to_string(root().join("LICENSE")).expect("LICENSE");
    assert!(license.starts_with("MIT License"), "LICENSE is not MIT");
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).expect("CHANGELOG.md");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        changelog.contains(&format!("## {version} ")) || changelog.contains("## Unreleased"),
        "CHANGELOG.md has no section for {version}"
    );
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile.scratch")).unwrap();
    assert!(
        dockerfile.contains("MIT"),
        "the image label declares the license"
    );
}
